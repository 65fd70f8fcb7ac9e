"""FileTailer: whole lines only, rotation by rename and copy-truncate, files that appear later, restarts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from margay.agent.tail import Chunk, FileTailer, Position


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make(path: Path, resume: Position | None = None, batch_bytes: int = 1 << 20) -> tuple[FileTailer, Clock, list]:
    clock = Clock()
    drops: list[tuple[str, int]] = []
    t = FileTailer(path, resume, batch_bytes=batch_bytes, batch_age=1.0, rotate_wait=0.5,
                   on_drop=lambda r, n: drops.append((r, n)), clock=clock)
    return t, clock, drops


def drain(t: FileTailer, clock: Clock, rounds: int = 6) -> list[Chunk]:
    out: list[Chunk] = []
    for _ in range(rounds):
        clock.t += 1.0
        out += t.poll()
    return out


def text(chunks: list[Chunk]) -> bytes:
    return b"".join(c.data for c in chunks)


def test_partial_lines_wait_for_their_newline(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    t, clock, _ = make(p)
    assert t.poll() == []  # the file appears later
    p.write_bytes(b'{"a":1}\n{"a":')
    got = drain(t, clock)
    assert text(got) == b'{"a":1}\n'
    with p.open("ab") as f:
        f.write(b'2}\n')
    assert text(drain(t, clock)) == b'{"a":2}\n'


def test_batches_by_size_then_by_age(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(b"".join(b'{"n":%05d}\n' % i for i in range(100)))  # 12 bytes a line
    t, clock, _ = make(p, batch_bytes=240)
    first = t.poll()  # full batches go at once; the rest waits for its age
    assert [len(c.data) for c in first] == [240] * 5 and first[0].start == 0 and first[1].start == 240
    clock.t += 2
    rest = drain(t, clock)
    assert text(first + rest) == p.read_bytes()
    assert [c.end for c in first + rest] == sorted(c.end for c in first + rest)


def test_rotation_by_rename_reads_the_old_file_to_its_end(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(b"1\n2\n")
    t, clock, drops = make(p)
    a = drain(t, clock)
    os.rename(p, tmp_path / "flows.log.1")
    with (tmp_path / "flows.log.1").open("ab") as f:
        f.write(b"3\n")  # the writer still had the old file open
    p.write_bytes(b"4\n")
    b = drain(t, clock)
    assert text(a + b) == b"1\n2\n3\n4\n"
    assert b[-1].gen == a[0].gen + 1 and b[-1].start == 0 and not drops


def test_copytruncate_reads_the_unread_rest_from_the_copy(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(b"line-1\nline-2\n")
    t, clock, drops = make(p)
    a = drain(t, clock)
    with p.open("ab") as f:
        f.write(b"line-3\n")  # written, not read yet, when logrotate copies and truncates
    shutil.copyfile(p, tmp_path / "flows.log.1")
    with p.open("r+b") as f:
        f.truncate(0)
        f.write(b"line-4\n")
    b = drain(t, clock)
    assert text(a + b) == b"line-1\nline-2\nline-3\nline-4\n"
    assert b[0].gen == a[0].gen and b[-1].gen == a[0].gen + 1 and not drops


def test_truncated_and_rewritten_past_the_offset_is_noticed(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(b"old-1\nold-2\n")
    t, clock, _ = make(p)
    a = drain(t, clock)
    with p.open("r+b") as f:
        f.truncate(0)
        f.write(b"new-1\nnew-2\nnew-3\n")  # longer than what we had read: only the fingerprint tells
    b = drain(t, clock)
    assert text(b) == b"new-1\nnew-2\nnew-3\n" and b[0].gen == a[0].gen + 1


def test_resume_after_restart_even_when_the_file_was_rotated_meanwhile(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(b"a\nb\n")
    t, clock, _ = make(p)
    a = drain(t, clock)
    t.close()
    resume = Position.from_dict(a[-1].position)
    with p.open("ab") as f:
        f.write(b"c\n")
    os.rename(p, tmp_path / "flows.log.1")
    p.write_bytes(b"d\n")
    t2, clock2, drops = make(p, resume)
    b = drain(t2, clock2)
    assert text(b) == b"c\nd\n" and not drops
    assert b[0].start == a[-1].end and b[0].gen == a[-1].gen


def test_resume_when_the_old_file_is_gone_counts_a_drop(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(b"a\nb\n")
    t, clock, _ = make(p)
    resume = Position.from_dict(drain(t, clock)[-1].position)
    t.close()
    p.unlink()
    p.write_bytes(b"fresh\n")
    t2, clock2, drops = make(p, resume)
    assert text(drain(t2, clock2)) == b"fresh\n"
    assert drops == [("rotated_away", 1)]
