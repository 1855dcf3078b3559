"""cffi builder for ``atomics._cffi``: the C core as functions over raw addresses.

Used at build time only (``cffi_modules`` in setup.py).  It lives outside the package, in
packaging/, so the wheel cannot carry it; the sdist does (MANIFEST.in grafts packaging/).
Out-of-line API mode: the C compiler sees the real header, so types and orders are checked
at build time, and calls go straight to C without libffi.
"""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[1]
CSRC = "csrc"  # relative to the project root, where setup.py runs: setuptools wants relative sources

ffibuilder = FFI()
ffibuilder.cdef((ROOT / CSRC / "ftsync_atomic_api.h").read_text())
ffibuilder.set_source(
    "atomics._cffi",
    '#include "ftsync_atomic_api.h"',
    sources=[f"{CSRC}/ftsync_atomic.c"],
    include_dirs=[CSRC],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
