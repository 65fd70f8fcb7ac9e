"""The spool: sealing before the first send, coalescing a backlog (and what a crash in between leaves)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from margay.agent.spool import Batch, Spool


def put(spool: Spool, source: str, i: int, n: int = 100) -> Batch:
    raw = b"".join(b"%s-%d-%d\n" % (source.encode(), i, k) for k in range(n))
    b = Batch(source, "flows", f"key-{source}-{i}", gzip.compress(raw), n, {"offset": i}, raw_bytes=len(raw))
    assert spool.put(b)
    return b


def test_a_backlog_is_coalesced_per_source_up_to_the_limit_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    for i in range(10):
        put(spool, "flows", i)
        put(spool, "dns", i)
    size = len(gzip.decompress(spool.body(spool.take([], 0))))  # one batch's raw bytes
    first = spool.take([], 0)
    assert first is not None
    merged = spool.prepare(first, 4 * size)
    assert merged.members == [first.seq + 2 * k for k in range(4)] and merged.sealed and merged.lines == 400
    assert gzip.decompress(spool.body(merged)) == b"".join(b"flows-%d-%d\n" % (i, k) for i in range(4)
                                                           for k in range(100))
    assert merged.position == {"offset": 3} and merged.seq == first.seq
    assert len(spool) == 20 - 3 and spool.take([], 0) is merged  # it keeps the first member's place
    assert spool.take(["flows"], 0).source == "dns"  # type: ignore[union-attr]
    again = Spool(tmp_path / "spool", 1 << 30)  # a restart sees the same entries
    assert [(b.seq, b.key, b.sealed) for b in again._entries.values()] == \
        [(b.seq, b.key, b.sealed) for b in spool._entries.values()]


def test_a_sent_entry_is_never_coalesced_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    first = put(spool, "flows", 0)
    sealed = spool.prepare(first, 1 << 20)  # alone in the spool: sealed as it is, then sent
    assert sealed is first and sealed.sealed and sealed.members == []
    put(spool, "flows", 1)
    put(spool, "flows", 2)
    # The agent dies before the ack; after the restart the sealed entry is resent alone, under its key.
    again = Spool(tmp_path / "spool", 1 << 30)
    head = again.take([], 0)
    assert head is not None and head.key == "key-flows-0" and again.prepare(head, 1 << 20) is head
    again.remove(head)
    rest = again.prepare(again.take([], 0), 1 << 20)  # type: ignore[arg-type]
    assert rest.members == [2, 3] and rest.lines == 200


def test_a_crash_between_writing_the_coalesced_entry_and_deleting_its_members(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    for i in range(3):
        put(spool, "flows", i)
    saved = tmp_path / "saved"
    shutil.copytree(tmp_path / "spool", saved)
    merged = spool.prepare(spool.take([], 0), 1 << 20)  # type: ignore[arg-type]
    for f in saved.iterdir():  # the members' deletions never reached the disk
        shutil.copy(f, tmp_path / "spool" / f.name)
    again = Spool(tmp_path / "spool", 1 << 30)
    assert [(b.seq, b.key, b.members) for b in again._entries.values()] == [(merged.seq, merged.key, [1, 2, 3])]
    assert sorted(p.suffix for p in (tmp_path / "spool").iterdir()) == [".sent"]
    assert again.bytes == merged.size


def test_an_unreadable_entry_is_moved_aside_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    put(spool, "flows", 0)
    (tmp_path / "spool" / "0000000000000009.batch").write_bytes(b'{"source": "flo')
    again = Spool(tmp_path / "spool", 1 << 30)
    assert len(again) == 1 and (tmp_path / "spool" / "0000000000000009.bad").exists()


def test_coalescing_ahead_while_a_batch_is_in_flight(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    counted: list[tuple[str, int]] = []
    spool.on_coalesce = lambda source, n: counted.append((source, n))
    for i in range(5):
        put(spool, "flows", i)
    head = spool.take([], 0)
    assert head is not None
    in_flight = spool.prepare(head, 1)  # a limit below two batches: sealed alone
    assert in_flight.sealed and not in_flight.members
    stale = spool._entries[2]  # what a sender would take next, before the coalescing ahead replaces it
    ahead = spool.prefetch("flows", in_flight.seq, 1 << 20)  # the rest, coalesced while it is sent
    assert ahead is not None and ahead.members == [2, 3, 4, 5] and counted == [("flows", 4)]
    spool.remove(in_flight)
    assert spool.prepare(stale, 1 << 20) is ahead  # resolved by seq to the coalesced entry
    assert spool.take([], 0) is ahead
    assert spool.prefetch("flows", ahead.seq, 1 << 20) is None  # nothing after it


def test_the_seqs_of_coalesced_members_are_never_reused(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    for i in range(3):
        put(spool, "flows", i)
    merged = spool.prepare(spool.take([], 0), 1 << 20)  # type: ignore[arg-type]
    assert merged.members == [1, 2, 3] and merged.last_seq == 3
    again = Spool(tmp_path / "spool", 1 << 30)  # the agent died with the coalesced entry in flight
    fresh = put(again, "flows", 9)
    assert fresh.seq == 4  # not 2: the next restart must not take it for a leftover member of seq 1
    third = Spool(tmp_path / "spool", 1 << 30)
    assert [b.key for b in third._entries.values()] == [merged.key, "key-flows-9"]


def test_a_damaged_entry_is_not_coalesced(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    for i in range(4):
        put(spool, "flows", i)
    damaged = tmp_path / "spool" / "0000000000000003.batch"
    damaged.write_bytes(damaged.read_bytes()[:-20])  # its gzip body cut short
    merged = spool.prepare(spool.take([], 0), 1 << 20)  # type: ignore[arg-type]
    assert merged.members == [1, 2]
    spool.remove(merged)
    alone = spool.prepare(spool.take([], 0), 1 << 20)  # type: ignore[arg-type]
    assert alone.seq == 3 and alone.sealed and not alone.members  # sent as it is: the server refuses it, counted
