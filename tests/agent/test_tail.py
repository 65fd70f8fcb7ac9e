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


def lines(tag: str, n: int, same_second: bool = False) -> bytes:
    """Felix-like lines; with same_second their first 100 bytes are identical (only the id differs, late)."""
    pad = '"start_time":1764979200,"end_time":1764979200,"source_ip":null,"source_name":"-","dest_ip":null'
    return b"".join(f'{{{pad},"id":"{tag}-{i}"}}\n'.encode() if same_second else f"{tag}-{i}\n".encode()
                    for i in range(n))


def rotate_numbered(p: Path, keep: int = 9) -> None:
    """logrotate/Felix style: flows.log.N-1 -> flows.log.N ..., flows.log -> flows.log.1, a new flows.log."""
    for i in range(keep - 1, 0, -1):
        src = p.with_name(f"{p.name}.{i}")
        if src.exists():
            os.rename(src, p.with_name(f"{p.name}.{i + 1}"))
    os.rename(p, p.with_name(p.name + ".1"))
    p.touch()


def test_three_rotations_within_rotate_wait_lose_nothing(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(lines("a", 3))
    t, clock, drops = make(p)
    got = t.poll()  # starts on a; the reader is a little behind the writer from here on
    expected = lines("a", 3)
    for k, tag in enumerate("bcd"):
        with p.open("ab") as f:
            f.write(lines(tag + "-late", 2))  # the writer still appends to the file it had open
        expected += lines(tag + "-late", 2)
        rotate_numbered(p)
        p.write_bytes(lines(tag, 4))
        expected += lines(tag, 4)
        if k != 1:  # once, two rotations happen between two looks
            clock.t += 0.1  # all three within rotate_wait (0.5 s)
            got += t.poll()
    got += drain(t, clock)
    assert text(got) == expected and not drops
    gens = [c.gen for c in got]
    assert gens == sorted(gens) and len(set(gens)) == 4  # four files, four generations, in order


def test_five_rotations_while_down_are_all_read_in_order(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(lines("0", 5))
    t, clock, _ = make(p)
    resume = Position.from_dict(drain(t, clock)[-1].position)
    t.close()
    expected = b""
    with p.open("ab") as f:
        f.write(lines("0-unread", 3))
    expected += lines("0-unread", 3)
    for r in range(1, 6):
        rotate_numbered(p, keep=6)
        p.write_bytes(lines(str(r), 4))
        expected += lines(str(r), 4)
    assert resume is not None
    gen, offset = resume.gen, resume.offset
    t2, clock2, drops = make(p, resume)
    got = drain(t2, clock2, rounds=12)
    assert text(got) == expected and not drops
    assert got[0].gen == gen and got[0].start == offset


def test_timestamped_rotation_names_live_and_after_a_restart(tmp_path: Path) -> None:
    """lumberjack (flows-2026-12-05T10-00-00.000.log) and logrotate dateext (flows.log-20261205) names."""
    p = tmp_path / "flows.log"
    p.write_bytes(lines("a", 2))
    t, clock, _ = make(p)
    got = drain(t, clock)
    os.rename(p, tmp_path / "flows-2026-12-05T10-00-00.000.log")
    p.write_bytes(lines("b", 2))
    clock.t += 0.1
    got += t.poll()
    os.rename(p, tmp_path / "flows-2026-12-05T10-00-01.500.log")
    p.write_bytes(lines("c", 2))
    got += drain(t, clock)
    assert text(got) == lines("a", 2) + lines("b", 2) + lines("c", 2)
    resume = Position.from_dict(got[-1].position)
    t.close()
    with p.open("ab") as f:
        f.write(lines("c-unread", 1))
    for i, stamp in enumerate(("2026-12-05T10-00-02.000", "2026-12-05T10-00-02.250", "2026-12-05T11-00-00.000")):
        os.rename(p, tmp_path / f"flows-{stamp}.log")
        p.write_bytes(lines(f"d{i}", 2))
    t2, clock2, drops = make(p, resume)
    assert text(drain(t2, clock2, rounds=10)) == lines("c-unread", 1) + lines("d0", 2) + lines("d1", 2) + \
        lines("d2", 2) and not drops


def test_copytruncate_with_lines_of_the_same_second_is_told_by_the_fingerprint(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(lines("old", 2, same_second=True))
    t, clock, drops = make(p)
    a = drain(t, clock)
    with p.open("ab") as f:
        f.write(lines("unread", 1, same_second=True))
    shutil.copyfile(p, tmp_path / "flows.log.1")
    with p.open("r+b") as f:  # truncated and, before the next look, rewritten past our offset
        f.truncate(0)
        f.write(lines("new", 5, same_second=True))
    assert os.path.getsize(p) > a[-1].end and p.read_bytes()[:100] == (tmp_path / "flows.log.1").read_bytes()[:100]
    b = drain(t, clock)
    assert text(a + b) == lines("old", 2, True) + lines("unread", 1, True) + lines("new", 5, True) and not drops


def test_restart_with_the_file_deleted_reads_the_newer_files_and_counts_the_loss(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_bytes(lines("a", 2))
    t, clock, _ = make(p)
    resume = Position.from_dict(drain(t, clock)[-1].position)
    t.close()
    rotate_numbered(p)
    p.write_bytes(lines("b", 2))
    rotate_numbered(p)
    p.write_bytes(lines("c", 2))
    (tmp_path / "flows.log.2").unlink()  # the file we were reading is gone for good
    t2, clock2, drops = make(p, resume)
    assert text(drain(t2, clock2, rounds=8)) == lines("b", 2) + lines("c", 2)
    assert drops == [("rotated_away", 1)]


def test_a_position_saved_by_an_older_agent_still_resumes(tmp_path: Path) -> None:
    """Older agents saved the first 64 bytes themselves (hex) as the fingerprint, and no fpn or mtime."""
    p = tmp_path / "flows.log"
    p.write_bytes(b"a-1\na-2\n")
    st = p.stat()
    old = {"gen": 3, "dev": st.st_dev, "ino": st.st_ino, "offset": 4, "fp": b"a-1\n".hex()}
    resume = Position.from_dict(old)
    assert resume is not None and resume.fpn == 4 and resume.fp == "raw:" + b"a-1\n".hex()
    t, clock, drops = make(p, resume)
    got = drain(t, clock)
    assert text(got) == b"a-2\n" and got[0].gen == 3 and got[0].start == 4 and not drops
    assert got[-1].position["fpn"] == 8 and not got[-1].position["fp"].startswith("raw:")
