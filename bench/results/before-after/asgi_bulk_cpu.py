"""The event loop's CPU per bulk request in-process: the ASGI app (middleware, routing, the bulk route, the
response) driven without a socket, the store stubbed (its ingest returns at once in the ingest pool), so what is
measured is the loop thread's own CPU per request (time.thread_time), uvicorn's HTTP parsing apart (issue 25
item 2, branch s13-fleet).

Usage: PYTHONPATH=<checkout>/src .venv/bin/python bench/results/before-after/asgi_bulk_cpu.py [REQUESTS] [CONCURRENCY] [auth]
`auth` runs with a token file (AuthMiddleware on every request) instead of --no-auth. Prints one JSON line."""
import asyncio, gzip, json, os, sys, tempfile, time
from datetime import datetime
from pathlib import Path

from margay.app import Margay, create_app
from margay.config import Settings

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
CONC = int(sys.argv[2]) if len(sys.argv) > 2 else 32
AUTH = len(sys.argv) > 3 and sys.argv[3] == "auth"


class Stub:
    """Just enough of a Backend for the bulk route: nothing seen, every record stored."""

    def seen(self, lt, cluster, key): return None
    def ingest(self, lt, cluster, body, *, key, now, respond):
        return {"total": 150, "succeeded": 150, "failed": 0, "errors": []}, False
    def stats(self): return {}
    def close(self): pass
    def __getattr__(self, name): raise AttributeError(name)


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    flags = {"data_dir": tmp, "auth": "none", **({"min_free_bytes": 0} if os.environ.get("NO_GUARD") else {})}
    if AUTH:
        (tmp / "tokens.yaml").write_text("- {token: s3cret-0123456789abcdef, cluster: cluster-0042}\n")  # a cluster's writer
        flags = {"data_dir": tmp, "tokens": tmp / "tokens.yaml"}
    settings = Settings.load(flags)
    if AUTH:
        settings.auth = "tokens"
    m = Margay(settings, backend=Stub())  # type: ignore[arg-type]
    app = create_app(settings, margay=m)
    body = gzip.compress(b'{"start_time": 1, "end_time": 2}\n' * 150, 1)
    headers = [(b"host", b"127.0.0.1:8080"), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
               (b"connection", b"keep-alive"), (b"user-agent", b"python-httpx/0.28.1"),
               (b"content-type", b"application/x-ndjson"), (b"content-encoding", b"gzip"),
               (b"x-cluster-id", b"cluster-0042"), (b"idempotency-key", b"bench-0123456789abcdef0123456789abcdef"),
               (b"content-length", str(len(body)).encode())]
    if AUTH:
        headers.append((b"authorization", b"Bearer s3cret-0123456789abcdef"))
    statuses: dict[int, int] = {}

    async def one() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 40000), "scheme": "http", "method": "POST",
                 "root_path": "", "path": "/api/v1/flows/logs/bulk", "raw_path": b"/api/v1/flows/logs/bulk",
                 "query_string": b"", "headers": list(headers), "state": {}}
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async with asyncio.timeout(600):
        for _ in range(200):  # warm-up: the ingest pool's threads started, caches filled
            await one()
        t0, w0 = time.thread_time(), time.perf_counter()
        for _ in range(N // CONC):
            await asyncio.gather(*(one() for _ in range(CONC)))
        cpu, wall = time.thread_time() - t0, time.perf_counter() - w0
    print(json.dumps({"requests": N // CONC * CONC, "auth": AUTH, "loop_cpu_us_per_request": round(cpu * 1e6 / (N // CONC * CONC), 1),
                      "wall_s": round(wall, 2), "statuses": statuses}))
    m.close()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
