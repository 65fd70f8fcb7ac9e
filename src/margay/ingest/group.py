"""Several small batches of one log type converted as one (the embedded store's group commit).

A small batch costs what its statement and files cost (binding the conversion, one Parquet writer per column,
fsyncs), not what its records cost. Batches that arrive together are therefore converted in one statement into
one file per day, whatever their clusters: each record's cluster comes from a list with one entry per record
(the file's `cluster` column), `_seq` runs over the whole group, and the rejected rows and counts are mapped
back to each batch's own line numbers. Should the reader refuse any line, the caller converts every batch of
the group on its own (`Converter.convert`, which names the line).

One file per cluster instead (a Parquet writer per cluster, the previous design) cost a group of ~20 batches
of ~150 flows from as many clusters ~7 ms of CPU per batch more (bench/results/before-after/README.md).
"""

from __future__ import annotations

import os
import shutil
import uuid
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from ..logtypes import LogType
from .keyscan import Verdict, count_records
from .output import cluster_counts, copy_arrow, file_facts, split_file, sql_path
from .parse import (
    _READ,
    _READ_TYPED,
    GROUP_CLUSTER,
    SMALL_CODEC,
    Converted,
    Converter,
    LineError,
    _nonblank_line_numbers,
    _prescreen,
)

_IOV_MAX = 512  # buffers per writev call (Linux allows 1,024)
GROUP_CODEC = SMALL_CODEC  # a group's file is small: COPY's options for it (parse.SMALL_CODEC)


def _write_joined(path: Path, bodies: list[bytes]) -> None:
    """The bodies one after another, a newline between two, as one file: written from the bodies themselves
    (`os.writev`), not from a joined copy of them (a copy of ~1.5 kB a record cost ~0.9 us a record)."""
    parts: list[bytes] = []
    for i, body in enumerate(bodies):
        if i:
            parts.append(b"\n")
        parts.append(body)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for i in range(0, len(parts), _IOV_MAX):
            chunk = parts[i:i + _IOV_MAX]
            want = sum(len(b) for b in chunk)
            done = os.writev(fd, chunk)
            if done < want:  # a short write (rare: signals, a large group): the rest the plain way
                rest = b"".join(chunk)[done:]
                while rest:
                    rest = rest[os.write(fd, rest):]
    finally:
        os.close(fd)


def _cluster_column(batches: list[tuple[str, bytes]], ends: list[int]) -> pa.Array:
    """Each record's cluster, as a dictionary array of the group's clusters (built from the batches' counts,
    not per record in Python)."""
    names: dict[str, int] = {}
    indices = array("i")
    start = 0
    for (cluster, _), end in zip(batches, ends, strict=True):
        indices.extend(array("i", [names.setdefault(cluster, len(names))]) * (end - start))
        start = end
    return pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), len(indices), [None, pa.py_buffer(indices)]),
                                          pa.array(list(names), pa.string()))


class GroupRefused(Exception):
    """The group's records did not come back as sent (a count that does not add up): convert one by one."""


@dataclass
class Group:
    """A group's files in a scratch folder, one per day: (yyyymmdd, file, rows, rows per cluster sorted by
    cluster), and each batch's own result."""

    files: list[tuple[str, Path, int, tuple[tuple[str, int], ...]]] = field(default_factory=list)
    parts: list[Converted] = field(default_factory=list)
    scratch: Path | None = None

    def discard(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def convert_group(conv: Converter, lt: LogType, batches: list[tuple[str, bytes]], *, now: datetime,
                  seq_base: int) -> Group:
    """All good records of the (cluster, body) batches, as files shared by the group.

    Raises duckdb.Error when the reader refuses a line, GroupRefused when the counts do not add up.
    """
    scratch = conv.scratch_dir / uuid.uuid4().hex
    scratch.mkdir()
    group = Group(scratch=scratch)
    plan = conv.plan(lt)
    table = None
    try:
        # Parsed in C (ingest/columns.py) when every record is plainly of its columns' types and keys: no file of
        # the bodies, no key look, no read_json to bind. The parser takes no line nested deeper than the bound:
        # the batches are looked at for them (screen.py) only when it declines the group, then screened again.
        for depth in (False, True):
            bodies: list[bytes] = []
            clusters: list[str] = []
            counts: Counter[str] = Counter()  # records per cluster, counted per batch (not per record)
            screened: list[bytes] = []  # each batch's body as converted, for its line numbers should a row be rejected
            ends: list[int] = []  # the last group ordinal of each batch
            group.parts = []
            for cluster, body in batches:
                part = Converted(lt, 0, stored=0)
                body = _prescreen(lt, body, part, depth=depth or plan.arrow is None)
                # Counted in C; the lines are numbered only for a group with rejected rows (below).
                records = count_records(body)
                part.total += records
                part.stored = records
                if records:
                    bodies.append(body)
                clusters.extend([cluster] * records)
                counts[cluster] += records
                screened.append(body)
                ends.append(len(clusters))
                group.parts.append(part)
            if depth or plan.arrow is None or not clusters:
                break
            table = plan.arrow.table(bodies)
            if table is not None and table.num_rows == len(clusters):  # (count_records's blank lines are its own)
                break
            table = None
        if not clusters:
            return group
        whole = scratch / "group.parquet"
        ac = conv.arrow_cursors.take()
        cur = ac.cur
        try:
            if table is not None and plan.arrow is not None:
                table = table.append_column(GROUP_CLUSTER, _cluster_column(batches, ends))
                copy_arrow(ac, table, plan.grouped_arrow, whole, GROUP_CODEC, [now, seq_base], plan.arrow.source)
            else:
                src = scratch / "in.ndjson"
                _write_joined(src, bodies)
                # The C scanner's look for undeclared keys (ingest/keyscan.py): a clean group is converted without
                # the per-record key check; otherwise (or unsure) every record is checked, never a second
                # batch-wide parse. Batch by batch (each holds whole lines): the group is clean when every one is.
                _, _, full, lean = plan.read_json_sql(bodies)  # (without the IP checks when the C parser vouches)
                if all(plan.keys.scan(body) is Verdict.CLEAN for body in bodies):
                    select, read = lean, _READ if plan.lean_raw else _READ_TYPED
                else:
                    select, read = full, _READ
                params = [clusters, now, seq_base, str(src), plan.columns] + ([str(src)] if read is _READ else [])
                cur.execute(f"COPY (SELECT {select} FROM {read}) TO {sql_path(whole)} "  # noqa: S608 - constants
                            f"(FORMAT parquet, COMPRESSION {GROUP_CODEC})", params).fetchall()
            count, valid, (first_day, last_day) = file_facts(whole)
            if count == len(clusters) and valid == count and first_day is not None and first_day == last_day:
                # Every record stored: its rows per cluster are the batches' lines.
                group.files.append((first_day, whole, count, tuple(sorted(counts.items()))))
                for part in group.parts:
                    part.errors.sort(key=lambda e: e.line)
                return group
            # Rare: rejected rows, or a group spanning midnight. One file per day still (its clusters counted).
            files, bad = split_file(cur, whole, scratch / "split", GROUP_CODEC, by_cluster=False)
        finally:
            conv.arrow_cursors.give(ac)
        if count != len(clusters):
            raise GroupRefused(f"{count} records came back of {len(clusters)}")
        group.files.extend((day, path, rows, cluster_counts(path)) for _, day, path, rows in files if rows)
        failed: set[int] = set()
        numbers: dict[int, list[int]] = {}
        for seq, fname, text in bad:
            ordinal = seq - seq_base
            i = bisect_left(ends, ordinal)
            before = ends[i - 1] if i else 0
            part = group.parts[i]
            if i not in numbers:
                numbers[i] = _nonblank_line_numbers(screened[i])
            part.errors.append(LineError(numbers[i][ordinal - before - 1], fname, text))
            if ordinal not in failed:
                failed.add(ordinal)
                part.stored = (part.stored or 0) - 1
        for part in group.parts:
            part.errors.sort(key=lambda e: e.line)
        return group
    except BaseException:
        group.discard()
        raise
