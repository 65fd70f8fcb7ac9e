"""The agent: file tailers and the other sources feed the spool; sender threads drain it to the server.

Every batch is durable in the spool before anything is sent; its idempotency key is
sha256(instance id, source, generation, device, inode, start offset, end offset), so whatever is resent
after a crash is stored once. A source's checkpoint moves only when the server acknowledged its batch.

Backpressure: when a batch cannot be spooled (the spool is at its bound, or the disk is full) the source
keeps it in memory and reads nothing more until it is spooled (the node's log files are the buffer); when
a checkpoint cannot be written the sender keeps the batch spooled and tries again, and no file is read
meanwhile. Both show in /-/status and the metrics, and end by themselves when there is room again.
"""

from __future__ import annotations

import gzip
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..metrics import Registry
from .aggregation import Aggregation
from .checkpoint import Checkpoints
from .host import batch_key
from .settings import AgentSettings
from .shipper import Shipper
from .spool import MERGEABLE, Batch, Spool
from .tail import FileTailer, Position

log = logging.getLogger("margay.agent")

HOST_TYPES = ("flows", "dns", "l7")  # NDJSON records the collector stamps with `host` when Felix did not


@dataclass
class SourceState:
    name: str
    log_type: str
    path: str
    lines_read: int = 0
    shipped: int = 0
    replayed: int = 0
    refused: int = 0
    acked_at: float | None = None
    held: list[Any] = field(default_factory=list)  # chunks read but not spooled yet (backpressure)
    paused: str | None = None  # why reading is paused: spool_full or disk_full
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_host(body: bytes, node: str) -> bytes:
    """Add `"host": node` to the records that lack it, without parsing JSON (a byte edit per such line)."""
    lines = body.count(b"\n")
    if body.count(b'"host":') >= lines:
        return body
    tail = b'"host":"' + node.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"}'
    out = []
    for line in body.splitlines():
        s = line.rstrip()
        if b'"host":' not in s and s.endswith(b"}"):
            s = s[:-1].rstrip()
            s = s + (b"" if s.endswith(b"{") else b",") + tail
        out.append(s)
    return b"\n".join(out) + b"\n"


class Agent:
    def __init__(self, settings: AgentSettings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.metrics = registry or Registry()
        _describe(self.metrics)
        state_dir = Path(settings.state_dir)
        self.checkpoints = Checkpoints(state_dir)
        self.spool = Spool(state_dir / "spool", settings.spool_max_bytes, first_seq=self.checkpoints.max_seq() + 1)
        self.spool.on_coalesce = lambda source, n: self.metrics.inc("margay_agent_batches_coalesced_total", n,
                                                                     source=source)
        self.instance = self.checkpoints.instance
        self.sources: dict[str, SourceState] = {}
        self.tailers: dict[str, FileTailer] = {}
        self.aggregation = Aggregation(settings.aggregate)
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.write_errors: dict[str, str] = {}  # "spool" / "checkpoint" -> the last error, while it lasts
        self._coalesce_cond = threading.Condition()
        self._coalesce_wanted: dict[str, int] = {}  # source -> seq in flight: coalesce what follows it
        self.shipper = Shipper(settings.server, settings.cluster, settings.bearer, timeout=settings.request_timeout,
                               backoff_base=settings.backoff_base, backoff_max=settings.backoff_max,
                               stop=self.stop_event,
                               on_retry=lambda reason: self.metrics.inc("margay_agent_retries_total", reason=reason))
        for name, (log_type, path) in settings.file_sources().items():
            self.sources[name] = SourceState(name, log_type, str(path))
            resume = Position.from_dict(self._resume_position(name))
            self.tailers[name] = FileTailer(
                path, resume, batch_bytes=settings.batch_bytes, batch_age=settings.batch_age,
                rotate_wait=settings.rotate_wait, on_drop=self._dropper(name), rotated_names=settings.rotated_names)
        self.http: Any = None
        self.cloudwatch: Any = None
        if settings.cloudwatch_group:
            from .cloudwatch import CloudWatchSource

            self.cloudwatch = CloudWatchSource(self, settings)
            self.sources["cloudwatch"] = SourceState("cloudwatch", "audit_kube", settings.cloudwatch_group)
        if settings.webhook and settings.listen:
            for t in ("kube", "ee"):
                self.sources[f"webhook_{t}"] = SourceState(f"webhook_{t}", f"audit_{t}", "POST /audit/webhook")
        m = self.metrics
        m.gauge("margay_agent_spool_bytes", lambda: [({}, float(self.spool.bytes))])
        m.gauge("margay_agent_spool_batches", lambda: [({}, float(len(self.spool)))])
        m.gauge("margay_agent_lag_seconds", lambda: [({"source": k}, v) for k, v in self.lag_seconds().items()])
        m.gauge("margay_agent_unread_bytes",
                lambda: [({"source": k}, float(t.lag_bytes())) for k, t in self.tailers.items()])
        m.gauge("margay_agent_reading_paused",
                lambda: [({"source": k, "reason": st.paused}, 1.0) for k, st in self.sources.items() if st.paused])
        m.gauge("margay_agent_disk_full", lambda: [({"what": w}, 1.0 if w in self.write_errors else 0.0)
                                                   for w in ("spool", "checkpoint")])

    # -- positions ---------------------------------------------------------------------------------------

    def _resume_position(self, source: str) -> dict[str, Any] | None:
        """Where to go on: the newest spooled batch of the source, else its acknowledged checkpoint."""
        newest = self.spool.newest(source)
        if newest is not None:
            return newest.position
        cp = self.checkpoints.get(source)
        return cp["position"] if cp else None

    def resume_position(self, source: str) -> dict[str, Any] | None:
        return self._resume_position(source)

    # -- the read side -----------------------------------------------------------------------------------

    def _dropper(self, source: str) -> Callable[[str, int], None]:
        return lambda reason, count: self.drop(source, reason, count)

    def drop(self, source: str, reason: str, count: int) -> None:
        self.metrics.inc("margay_dropped_records_total", count, reason=reason, source=source)

    def enqueue(self, source: str, log_type: str, raw: bytes, lines: int, key: str, position: dict[str, Any],
                content_type: str = "application/x-ndjson", params: dict[str, str] | None = None,
                drop_when_full: bool = False) -> bool:
        """Spool one batch durably. False when there is no room (the spool is at its bound, or the disk is
        full): the caller keeps the lines and tries again later, or, with `drop_when_full`, they are counted
        as dropped."""
        st = self.sources[source]
        if content_type == "application/x-ndjson":
            if log_type in HOST_TYPES:
                raw = ensure_host(raw, self.settings.node)
            raw = self.aggregation.apply(log_type, raw)
        batch = Batch(source, log_type, key, gzip.compress(raw, compresslevel=1), lines, position, content_type,
                      params or {}, created=time.time(), raw_bytes=len(raw))
        try:
            ok = self.spool.put(batch)
        except OSError as exc:
            self._write_failed("spool", exc)
            ok = False
        else:
            self._write_ok("spool")
        if ok or drop_when_full:
            st.lines_read += lines
            self.metrics.inc("margay_agent_lines_read_total", lines, source=source)
        if not ok and drop_when_full:
            log.warning("%s: spool full (%d bytes); %d line(s) dropped", source, self.spool.bytes, lines)
            self.drop(source, "spool_full", lines)
        return ok

    def _write_failed(self, what: str, exc: OSError) -> None:
        if what not in self.write_errors:
            log.warning("cannot write the %s (%s): reading paused until there is room", what, exc)
        self.write_errors[what] = f"{exc.strerror or exc}"
        self.metrics.inc("margay_agent_write_errors_total", what=what)

    def _write_ok(self, what: str) -> None:
        if self.write_errors.pop(what, None) is not None:
            log.info("the %s can be written again: reading resumed", what)

    def poll_files(self) -> int:
        """One look at every file; returns the number of batches spooled."""
        n = 0
        if not self.checkpoints.try_save():
            return 0
        for name, tailer in self.tailers.items():
            st = self.sources[name]
            if not self._spool_held(st):
                continue  # still no room: read nothing more (the file is the buffer)
            if "checkpoint" in self.write_errors:
                st.paused = "disk_full"
                continue
            try:
                st.held = tailer.poll()
            except OSError as exc:
                log.warning("%s: %s", tailer.path, exc)
                continue
            n += len(st.held)
            self._spool_held(st)
        return n

    def _spool_held(self, st: SourceState) -> bool:
        """Spool the chunks a source read, in order; False (reading paused) if one still does not fit."""
        while st.held:
            c = st.held[0]
            params: dict[str, str] = {}
            ctype = "application/x-ndjson"
            if st.log_type == "bgp":
                ctype = "text/plain"
                params = {"host": self.settings.node, "ip_version": "IPv6" if st.name == "bird6" else "IPv4"}
            key = batch_key(self.instance, st.name, c.gen, c.dev, c.ino, c.start, c.end)
            if not self.enqueue(st.name, st.log_type, c.data, c.data.count(b"\n"), key, c.position, ctype, params):
                if st.paused is None:
                    log.warning("%s: no room in the spool (%s); reading paused", st.name,
                                self.write_errors.get("spool") or f"{self.spool.bytes} bytes spooled")
                st.paused = "disk_full" if "spool" in self.write_errors else "spool_full"
                return False
            st.held.pop(0)
        if st.paused is not None:
            log.info("%s: reading resumed", st.name)
            st.paused = None
        return True

    # -- the send side -----------------------------------------------------------------------------------

    def _sender(self) -> None:
        while not self.stop_event.is_set():
            with self._busy_lock:
                busy = set(self._busy)
            batch = self.spool.take(busy, timeout=0.5)
            if batch is None:
                continue
            with self._busy_lock:
                if batch.source in self._busy:
                    continue
                self._busy.add(batch.source)
            try:
                self._ship(batch)
            except Exception:  # noqa: BLE001 - a sender never dies; the batch stays spooled
                log.exception("%s: shipping batch %s failed; trying again", batch.source, batch.key[:12])
                self.stop_event.wait(1.0)
            finally:
                with self._busy_lock:
                    self._busy.discard(batch.source)
                self.spool.wake()

    def _ship(self, batch: Batch) -> None:
        try:
            batch = self._prepare(batch)
            body = self.spool.body(batch)
        except FileNotFoundError:
            return
        except OSError as exc:  # a full disk: not even sealing worked; the batch waits in the spool
            self._write_failed("spool", exc)
            self.stop_event.wait(0.5)
            return
        self._coalesce_next(batch)
        result = self.shipper.ship(batch, body)
        if result is None:
            return  # stopping: the batch stays in the spool
        outcome = "replayed" if result.replayed else ("partial" if result.failed or result.rejected else "ok")
        self.metrics.inc("margay_agent_batches_total", outcome=outcome, source=batch.source)
        # A replayed answer repeats counts of records stored earlier (a resent or duplicate batch).
        self.metrics.inc("margay_agent_records_replayed_total" if result.replayed else
                         "margay_agent_records_shipped_total", result.succeeded, source=batch.source,
                         type=batch.log_type)
        if result.failed or result.rejected:
            self.metrics.inc("margay_agent_records_refused_total", result.failed + result.rejected,
                             source=batch.source, type=batch.log_type)
        st = self.sources.get(batch.source)
        now = time.time()
        if st is not None and result.replayed:
            st.replayed += result.succeeded
        elif st is not None:
            st.shipped += result.succeeded
            st.refused += result.failed + result.rejected
            st.acked_at = now
        # Checkpoint first, then forget the spooled copy: a crash in between resends a batch the server
        # replays from its key, never loses one. A checkpoint that cannot be written (a full disk) keeps
        # the batch spooled: it is tried again until it can be, or the agent stops (then resent, replayed).
        while True:
            try:
                self.checkpoints.acknowledge(batch.source, batch.last_seq, batch.position, now)
            except OSError as exc:
                self._write_failed("checkpoint", exc)
                if self.stop_event.wait(0.5):
                    return
                continue
            self._write_ok("checkpoint")
            break
        self.spool.remove(batch)

    def _coalesce_next(self, batch: Batch) -> None:
        """While `batch` is in flight, coalesce the source's next unsent batches (a backlog draining)."""
        if batch.content_type not in MERGEABLE:
            return
        with self._coalesce_cond:
            self._coalesce_wanted[batch.source] = batch.seq
            self._coalesce_cond.notify()

    def _coalescer(self) -> None:
        while not self.stop_event.is_set():
            with self._coalesce_cond:
                if not self._coalesce_wanted:
                    self._coalesce_cond.wait(0.5)
                    continue
                source, after = self._coalesce_wanted.popitem()
            try:
                self.spool.prefetch(source, after, self.settings.batch_bytes)
            except OSError as exc:  # a full disk: the batches are sealed one by one when sent
                log.debug("%s: coalescing ahead failed: %s", source, exc)

    def _prepare(self, batch: Batch) -> Batch:
        """Coalesce a never-sent batch with the source's next ones (a backlog drains in full-size requests),
        or seal it alone; on a full disk, sealing alone needs no room."""
        try:
            out = self.spool.prepare(batch, self.settings.batch_bytes)
        except FileNotFoundError:
            raise
        except OSError:
            out = self.spool.prepare(batch, 0)
        return out

    # -- running -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.listen:  # first: a bad webhook token file or TLS pair stops the agent before it reads
            from .http import AgentHTTP

            self.http = AgentHTTP(self)
        for i in range(self.settings.senders):
            self._spawn(self._sender, f"margay-agent-sender-{i}")
        self._spawn(self._coalescer, "margay-agent-coalescer")
        if self.cloudwatch is not None:
            self._spawn(self.cloudwatch.run, "margay-agent-cloudwatch")
        if self.http is not None:
            self.http.start()

    def _spawn(self, fn: Any, name: str) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def run(self) -> None:
        """Read until stopped (SIGTERM/SIGINT when run from the command line)."""
        self.start()
        try:
            while not self.stop_event.is_set():
                started = time.monotonic()
                self.poll_files()
                self.stop_event.wait(max(0.0, self.settings.poll_interval - (time.monotonic() - started)))
        finally:
            self.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.spool.wake()
        with self._coalesce_cond:
            self._coalesce_cond.notify_all()

    def close(self) -> None:
        self.stop()
        for t in self._threads:
            t.join(timeout=10)
        if self.http is not None:
            self.http.stop()
        for tailer in self.tailers.values():
            tailer.close()
        self.shipper.close()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    # -- status ------------------------------------------------------------------------------------------

    def lag_seconds(self) -> dict[str, float]:
        """Per source: age of the oldest line read but not yet acknowledged (0 when all is shipped)."""
        now = time.time()
        pending = self.spool.pending()
        return {name: round(max(0.0, now - pending[name][1]), 3) if name in pending else 0.0
                for name in self.sources}

    def status(self) -> dict[str, Any]:
        lag = self.lag_seconds()
        pending = self.spool.pending()
        sources = {}
        for name, st in self.sources.items():
            cp = self.checkpoints.get(name)
            tailer = self.tailers.get(name)
            sources[name] = {
                "type": st.log_type, "path": st.path, "lines_read": st.lines_read, "records_shipped": st.shipped,
                "records_replayed": st.replayed, "records_refused": st.refused, "lag_seconds": lag[name],
                "pending_batches": pending.get(name, (0, 0.0))[0],
                "unread_bytes": tailer.lag_bytes() if tailer else 0,
                "checkpoint": cp["position"] if cp else None,
                "paused": st.paused, "held_batches": len(st.held),
                "rotated_files_queued": len(tailer.queue) if tailer else 0,
                "acked_at": cp["acked_at"] if cp else None,
            }
        return {"node": self.settings.node, "cluster": self.settings.cluster, "server": self.settings.server,
                "server_reachable": self.shipper.reachable, "last_error": self.shipper.last_error,
                "instance": self.instance, "aggregate": self.aggregation.describe(),
                "spool": {"bytes": self.spool.bytes, "batches": len(self.spool),
                          "max_bytes": self.spool.max_bytes},
                "write_errors": dict(self.write_errors),
                "paused": {name: st.paused for name, st in self.sources.items() if st.paused},
                "dropped": self._drops(), "sources": sources}

    def _drops(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for reason in ("spool_full", "rotated_away", "unterminated_line", "line_too_long", "multiline_message"):
            total = sum(self.metrics.get("margay_dropped_records_total", reason=reason, source=s)
                        for s in self.sources)
            if total:
                out[reason] = total
        return out


def _describe(m: Registry) -> None:
    m.describe("margay_agent_lines_read_total", "counter", "Lines (records) read, by source.")
    m.describe("margay_agent_records_shipped_total", "counter", "Records the server stored, by source and type.")
    m.describe("margay_agent_records_replayed_total", "counter",
               "Records of resent batches the server had already stored (answered from its idempotency key).")
    m.describe("margay_agent_records_refused_total", "counter", "Records the server refused (never resent).")
    m.describe("margay_agent_batches_total", "counter", "Batches acknowledged, by outcome.")
    m.describe("margay_agent_retries_total", "counter", "Failed send attempts that will be retried, by reason.")
    m.describe("margay_dropped_records_total", "counter", "Records dropped by the agent, by reason and source.")
    m.describe("margay_agent_spool_bytes", "gauge", "Bytes in the on-disk spool.")
    m.describe("margay_agent_spool_batches", "gauge", "Batches in the on-disk spool.")
    m.describe("margay_agent_lag_seconds", "gauge", "Age of the oldest unacknowledged line, by source.")
    m.describe("margay_agent_unread_bytes", "gauge",
               "Bytes not read yet, by source (the rest of the file being read and the newer rotated files).")
    m.describe("margay_agent_reading_paused", "gauge",
               "1 while a source reads nothing more because its batch cannot be spooled, by reason.")
    m.describe("margay_agent_disk_full", "gauge", "1 while the spool or the checkpoint cannot be written.")
    m.describe("margay_agent_write_errors_total", "counter", "Failed writes of the spool or checkpoint (full disk).")
    m.describe("margay_agent_batches_coalesced_total", "counter",
               "Spooled batches sent coalesced with others (a backlog draining), by source.")
