"""The server's C allocator: tcmalloc (gperftools' minimal build) where it is installed, else glibc's malloc.

A search page's document fetch spends ~13 % of its CPU in glibc's malloc and free (DuckDB's many small
allocations per column and row group); preloaded tcmalloc made the peers scenario's full-size questions 4–12 %
cheaper in server CPU and left ingest and RSS where they were (bench/results/before-after/README.md, "The C
allocator"). A library is preloaded only at a process's start, so `margay serve` and `margay demo` start
themselves again, once, with it in LD_PRELOAD (`adopt`), before any thread exists. MARGAY_MALLOC=system keeps
glibc's. `make rig` installs it (Debian's libtcmalloc-minimal4); without it margay runs as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

LIBRARY = "libtcmalloc_minimal.so.4"
_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu")
_MARK = "MARGAY_MALLOC_PRELOADED"  # set on the second start: never a third


def library() -> Path | None:
    """The installed tcmalloc library, if any."""
    for d in _DIRS:
        p = Path(d) / LIBRARY
        if p.exists():
            return p
    found = ctypes.util.find_library("tcmalloc_minimal")
    return Path(found) if found and Path(found).is_absolute() and Path(found).exists() else None


def loaded() -> bool:
    """Whether this process allocates with tcmalloc (its release call is resolvable)."""
    try:
        return hasattr(ctypes.CDLL(None), "MallocExtension_ReleaseFreeMemory")
    except OSError:
        return False


def adopt() -> None:
    """Start this process again with tcmalloc preloaded, if it is installed, wanted and not loaded yet; returns
    only when the process keeps its allocator (call it first thing in a command, before threads start)."""
    if os.environ.get("MARGAY_MALLOC", "tcmalloc") == "system" or os.environ.get(_MARK) or loaded():
        return
    if not _own_process():
        return  # a command called from another program (a test's CliRunner): never replace that program
    lib = library()
    if lib is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(p for p in (str(lib), env.get("LD_PRELOAD", "")) if p)
    env[_MARK] = str(lib)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", "margay", *sys.argv[1:]], env)
    except OSError:  # could not start again (a vanished interpreter): run on with the allocator at hand
        return


def _own_process() -> bool:
    """Whether this process is margay's command line (`margay ...` or `python -m margay ...`)."""
    if not sys.argv:
        return False
    prog = Path(sys.argv[0])
    return prog.name == "margay" or (prog.name == "__main__.py" and prog.parent.name == "margay")


def name() -> str:
    """The allocator in use, for the start-up log line."""
    return "tcmalloc" if loaded() else "system malloc"


__all__ = ["adopt", "library", "loaded", "name"]
