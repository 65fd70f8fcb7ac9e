"""Every prefix of some bodies handed to a C reader with its last byte just before a PROT_NONE page, in a child
process: a read past a body's end is the child's SIGSEGV, whatever the allocator would have hidden."""

from __future__ import annotations

import subprocess
import sys

_CHILD = r"""
import ctypes, mmap, sys
{setup}
bodies = [bytes.fromhex(h) for h in sys.stdin.read().split()]
page = mmap.PAGESIZE
area = mmap.mmap(-1, 3 * page)
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
base = ctypes.addressof(ctypes.c_char.from_buffer(area))
assert libc.mprotect(base + 2 * page, page, 0) == 0, ctypes.get_errno()
view = memoryview(area)
calls = total = 0
for body in bodies:
    for cut in range(len(body) + 1):
        view[2 * page - cut:2 * page] = body[:cut]
        total += check(view[2 * page - cut:2 * page])
        calls += 1
print(calls, total)
"""


def every_prefix_at_a_guard_page(setup: str, bodies: list[bytes]) -> int:
    """Runs `check(view) -> int` (defined by `setup`, Python source) on every prefix of every body (each at most two
    pages); the sum of its answers."""
    assert all(len(b) <= 8192 for b in bodies)  # two pages before the guard
    child = subprocess.run([sys.executable, "-c", _CHILD.format(setup=setup)], input=" ".join(b.hex() for b in bodies),
                           capture_output=True, text=True, timeout=300, check=False)
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    calls, total = map(int, child.stdout.split())
    assert calls == sum(len(b) + 1 for b in bodies)
    return total
