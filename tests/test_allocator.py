"""The server's C allocator (margay/allocator.py): `margay serve` starts itself again with tcmalloc preloaded,
once, where it is installed (`make rig` installs it); MARGAY_MALLOC=system keeps glibc's; the compactor's memory
release then goes to tcmalloc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from margay import allocator
from margay.rig.children import ServerProcess


def _mapped(pid: int) -> bool:
    return "tcmalloc" in Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture(scope="module")
def lib() -> Path:
    found = allocator.library()
    assert found is not None, "libtcmalloc-minimal4 is not installed: `make rig` installs it"
    return found


@pytest.mark.parametrize("malloc", ["tcmalloc", "system"])
def test_serve_starts_with_tcmalloc_unless_told_not_to(lib: Path, tmp_path: Path, malloc: str) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(tmp_path / "data", env={"MARGAY_MALLOC": malloc, "LD_PRELOAD": ""}, log=log)
    server.start()
    try:
        pid = server.proc.pid  # type: ignore[union-attr]
        assert _mapped(pid) is (malloc == "tcmalloc")  # the same process (execve keeps the pid)
        assert httpx.get(server.url + "/-/health").json()["status"] == "ok"
    finally:
        server.stop()
    text = log.read_text()
    assert f"allocator: {'tcmalloc' if malloc == 'tcmalloc' else 'system malloc'}" in text
    assert text.count("allocator:") == 1  # started again once, logged once


def _python(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MARGAY_MALLOC_PRELOADED", "MARGAY_MALLOC")}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_release_goes_to_the_allocator_in_use(lib: Path) -> None:
    code = ("from margay.store.duckdb import memory; from margay import allocator; "
            "print(allocator.name(), memory._tcmalloc() is not None, memory.release())")
    assert _python(code, LD_PRELOAD=str(lib)) == "tcmalloc True True"
    assert _python(code) == "system malloc False True"


def test_adopt_starts_again_only_once(lib: Path) -> None:
    """The mark of a second start stops a third even when the library did not load (LD_PRELOAD emptied)."""
    code = "from margay import allocator; allocator.adopt(); print('kept', allocator.name())"
    assert _python(code, MARGAY_MALLOC_PRELOADED=str(lib)) == "kept system malloc"
    assert _python(code, MARGAY_MALLOC="system") == "kept system malloc"
    # Called from another program (here `python -c`; a test's CliRunner): that program is never replaced.
    assert _python(code) == "kept system malloc"


# A child's prelude: 160 MiB of 32 KiB blocks allocated and freed but the last, and its RSS in MiB.
_FREED = """
from margay.store.duckdb import memory
def rss():
    return next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:"))
blocks = [bytes(32 * 1024) for _ in range(5000)]
keep = blocks[-1]
del blocks
"""


def test_release_gives_tcmallocs_free_pages_back(lib: Path) -> None:
    """160 MiB of 32 KiB blocks freed but the last stay resident in tcmalloc's page heap until release()."""
    code = _FREED + """
before = rss()
assert memory.release()
print(round(before - rss()))
"""
    assert int(_python(code, LD_PRELOAD=str(lib))) > 100


def test_release_if_held_returns_tcmallocs_free_pages_past_the_bound(lib: Path) -> None:
    """What reads free stays in tcmalloc's page heap; the compactor's round gives it back past a bound."""
    code = _FREED + """
held = memory._free_bytes()()
assert held > 100 << 20, held
assert not memory.release_if_held(held + 1)  # under the bound: kept
before = rss()
assert memory.release_if_held(64 << 20)
print(round(before - rss()), memory._free_bytes()() < 16 << 20)
"""
    freed, emptied = _python(code, LD_PRELOAD=str(lib)).split()
    assert int(freed) > 100 and emptied == "True"
    # Under glibc there is nothing to ask: never released by this path.
    assert _python("from margay.store.duckdb import memory; print(memory.release_if_held(0))") == "False"
