"""Group commit: small batches that arrive together share one conversion, one fsync and one journal line.

A small batch's server cost is fixed (~10-20 ms: binding the conversion, a Parquet writer per column, fsyncs),
so 10-record batches from many agents would cap the store at tens of batches a second. Each small batch joins
the queue of its log type; the first to find no leader leads: it takes everything queued (up to MAX_GROUP
batches), converts it with one statement (`ingest/group.py`), fsyncs the files and appends one journal line
that holds every batch's idempotency key and response, and only then are the batches of the group answered.
Nothing waits on purpose: a group is what queued while the previous one was being written, so a lone batch
goes at once (converted on its own, by the leader, while the next group queues). When its own batch is
answered the leader hands the queue to the next batch in it.

A group the reader refuses (a malformed line), or that holds a key committed meanwhile by another request,
commits nothing: each of its batches is then converted and committed on its own, exactly as a batch that
came alone (which names the bad line, and replays the committed key).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from ...durable import fsync_path
from ...errors import MargayError
from ...ingest.group import Group, GroupRefused, convert_group
from ...ingest.parse import Converted
from ...logtypes import LogType
from ..catalog import SHARED, DataFile, PartKey

if TYPE_CHECKING:
    from .engine import DuckDBBackend

log = logging.getLogger(__name__)

MAX_GROUP = 64  # batches in one group
# Batches of fewer lines are grouped. Their fixed cost (~15 ms: a statement, the undeclared-key look, files) is
# still a third of a 1,500-flow batch's CPU: grouping batches under 5,000 lines rather than 1,000 cut the fleet's
# 100-cluster ingest (1,500-flow batches) from 8.7-8.9 to 5.9-6.1 CPU-s in-process (fleet_fixed_inproc.py).
GROUP_BELOW = 5_000
MAX_GROUP_LINES = 20_000  # lines in one group (each batch has fewer than GROUP_BELOW)
MAX_GROUP_BYTES = 32 << 20  # bytes of NDJSON in one group (a small batch may still hold large records)


class _Journaled(Exception):
    """A failure after the group's journal line: the group is committed and must not go again alone."""


@dataclass(eq=False)
class Pending:
    """One small batch waiting in its log type's queue."""

    lt: LogType
    cluster: str
    body: bytes
    lines: int
    bkey: str | None
    now: datetime
    respond: Callable[[Converted], dict[str, Any]]
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # this batch's thread is to lead the queue
    finished: bool = False
    outcome: tuple[dict[str, Any], bool] | None = None  # (response, replayed); None: convert it alone
    error: BaseException | None = None


class Combiner:
    """The queues of small batches, one per log type, and their group commits."""

    def __init__(self, backend: DuckDBBackend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._queues: dict[str, list[Pending]] = {}
        self._leading: set[str] = set()
        self._keys: set[str] = set()  # idempotency keys queued or being written in a group
        self.groups = 0  # groups committed (of two batches or more)
        self.grouped = 0  # batches committed in them

    def submit(self, item: Pending) -> tuple[dict[str, Any], bool] | None:
        """The batch's (response, replayed) once its group is committed; None: convert it on its own."""
        name = item.lt.name
        with self._lock:
            if item.bkey is not None:
                if item.bkey in self._keys:
                    return None  # the same batch is already queued: alone, it replays or waits at the commit
                self._keys.add(item.bkey)
            self._queues.setdefault(name, []).append(item)
            if name not in self._leading:
                self._leading.add(name)
                item.lead = True
        if not item.lead:
            item.wake.wait()
        if item.lead:
            self._lead(name, item)
        if item.error is not None:
            raise item.error
        return item.outcome

    def _lead(self, name: str, me: Pending) -> None:
        queue = self._queues[name]
        try:
            while not me.finished:
                with self._lock:
                    group: list[Pending] = []
                    lines = size = 0
                    while queue and len(group) < MAX_GROUP and (not group or (
                            lines + queue[0].lines <= MAX_GROUP_LINES and size + len(queue[0].body) <= MAX_GROUP_BYTES)):
                        lines += queue[0].lines
                        size += len(queue[0].body)
                        group.append(queue.pop(0))
                self._run(group)
        finally:
            with self._lock:
                if queue:
                    queue[0].lead = True
                    queue[0].wake.set()
                else:
                    self._leading.discard(name)

    def _run(self, group: list[Pending]) -> None:
        try:
            if len(group) == 1:  # converted here, while the batches behind it queue up for the next group
                self._one(group[0])
            else:
                self._commit(group)
        except _Journaled as exc:  # committed, but not all in place: answered as a failed commit, never again
            for item in group:
                item.outcome, item.error = None, exc.__cause__
        except (duckdb.Error, GroupRefused, MargayError, OSError) as exc:
            # Each batch goes alone and meets its own error there (a bad line named, a full disk reported).
            log.debug("a group of %d batches goes one by one: %s", len(group), exc)
            self._alone(group)
        except Exception:  # a fault of the grouping itself must not fail batches that would commit alone
            log.exception("a group of %d batches failed; they go one by one", len(group))
            self._alone(group)
        finally:
            with self._lock:
                for item in group:
                    if item.bkey is not None:
                        self._keys.discard(item.bkey)
            for item in group:
                item.finished = True
                item.wake.set()

    def _one(self, item: Pending) -> None:
        try:
            item.outcome = self.backend.ingest_one(item.lt, item.cluster, item.body, item.lines, bkey=item.bkey,
                                                   now=item.now, respond=item.respond)
        except Exception as exc:  # noqa: BLE001 - the batch's own error, raised in its own request
            item.error = exc

    @staticmethod
    def _alone(group: list[Pending]) -> None:
        for item in group:
            item.outcome = None
            item.error = None

    def _commit(self, group: list[Pending]) -> None:
        b = self.backend
        lt = group[0].lt
        total = sum(item.lines for item in group)
        base = b._reserve(total)
        try:
            done = convert_group(b.converter, lt, [(item.cluster, item.body) for item in group],
                                 now=group[0].now, seq_base=base)
            try:
                responses = self._responses(group, done)
                for _, path, _, _ in done.files:
                    fsync_path(path)
                self._journal(lt, group, done, base, total, responses)
            except _Journaled:
                done.scratch = None  # committed: its files stay in scratch for the next start to roll forward
                raise
            finally:
                done.discard()
        finally:
            b._release(base)  # after the catalog has the files: safe_seq never passes an unseen record

    @staticmethod
    def _responses(group: list[Pending], done: Group) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for item, part in zip(group, done.parts, strict=True):
            try:
                out.append(item.respond(part))
            except MargayError as exc:
                if part.succeeded:
                    raise  # it would store records its caller is told were refused: every batch alone
                item.error = exc
                out.append(None)
        return out

    def _journal(self, lt: LogType, group: list[Pending], done: Group, base: int, total: int,
                 responses: list[dict[str, Any] | None]) -> None:
        b = self.backend
        moves: list[list[str]] = []
        added: list[tuple[PartKey, DataFile]] = []
        for i, (day, path, rows, clusters) in enumerate(done.files):
            # One file per day for the whole group: a cluster's own index folder when the group is of one cluster,
            # else the day's shared folder, the file knowing its rows per cluster (as a cold shared file does).
            shared = len(clusters) > 1
            key = (lt.name, SHARED if shared else clusters[0][0], day)
            name = DataFile.name(base + 1, base + total + 1, rows)
            if shared:  # `.g<n>`: a group's file (DataFile.grouped), its days' files told apart by n
                name = name.replace(".parquet", f".g{i}.parquet")
            elif i:
                name = name.replace(".parquet", f".{i}.parquet")
            final = b.catalog.part_dir(key) / name
            moves.append([str(path), str(final)])
            added.append((key, DataFile(final, base + 1, base + total + 1, rows, path.stat().st_size,
                                        clusters=clusters if shared else ())))
        with b._commit_lock:
            if any(item.bkey is not None and item.bkey in b._keys for item in group):
                raise GroupRefused("a batch of the group was committed meanwhile")
            ts = b.clock.now().timestamp()
            keys: list[tuple[str, dict[str, Any]]] = [(item.bkey, r) for item, r in zip(group, responses, strict=True)
                                                      if item.bkey is not None and r is not None]
            entry: dict[str, Any] = {"op": "commit", "moves": moves, "ts": ts}
            if keys:
                entry["keys"] = [list(k) for k in keys]
            b.journal.append(entry)
            try:
                # The keys first: should a rename fail, a retry is answered from them (the journal rolls the
                # files forward on the next start), never stored a second time by going alone.
                for bkey, response in keys:
                    b._keys[bkey] = (response, ts)
                b._place(entry, added, base)  # a failed rename: its files placed later (engine.py)
            except Exception as exc:
                raise _Journaled from exc
            b.committed_batches += len(group)
            self.groups += 1
            self.grouped += len(group)
        for item, answer in zip(group, responses, strict=True):
            if answer is not None:
                item.outcome = (answer, False)
