"""Build ftsync: the Cython extension ``atomics._native`` and the cffi module ``atomics._cffi``.

Both compile the C11 core in csrc/.  cffi is used only where it supports the interpreter
(not on free-threaded 3.13): there ``atomics._cffi`` is skipped and ``atomics.views`` says why.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "packaging"))
from pep517_backend._cffi_support import CFFI_REQUIREMENT, cffi_supported  # noqa: E402

GCC_FLAGS = ["-std=c11", "-O3", "-Wall", "-Wextra", "-Werror"]
# Cython's generated code (not ours) trips these under -Wextra; everything else stays an error.
CYTHON_GCC_FLAGS = ["-Wno-unused-parameter", "-Wno-unused-function", "-Wno-missing-field-initializers"]
MSVC_FLAGS = ["/std:c11", "/experimental:c11atomics", "/O2", "/W3", "/WX"]


class BuildExt(build_ext):
    """Pick C11 flags by compiler: GCC/Clang style everywhere but MSVC."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            if msvc:
                ext.extra_compile_args = MSVC_FLAGS + ext.extra_compile_args
            else:
                extra = CYTHON_GCC_FLAGS if ext.name in CYTHON_MODULES else []
                ext.extra_compile_args = GCC_FLAGS + extra + ext.extra_compile_args
        super().build_extensions()


CYTHON_EXTENSIONS = [
    Extension(
        "atomics._native",
        sources=["src/atomics/_native.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/ftsync_atomic.h", "csrc/ftsync_atomic.pxd", "csrc/ftsync_counter.h"],
    ),
    Extension(
        "patterns._parking",
        sources=["src/patterns/_parking.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/ftsync_atomic.h", "csrc/ftsync_atomic.pxd", "src/patterns/_parking.pxd"],
    ),
    Extension(
        "patterns._channel",
        sources=["src/patterns/_channel.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/ftsync_atomic.h", "csrc/ftsync_atomic.pxd"],
    ),
    Extension(
        "patterns._pool",
        sources=["src/patterns/_pool.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/ftsync_atomic.h", "csrc/ftsync_atomic.pxd"],
    ),
    Extension("patterns._pipeline", sources=["src/patterns/_pipeline.pyx"]),
    Extension(
        "patterns._semaphore",
        sources=["src/patterns/_semaphore.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/ftsync_atomic.h", "csrc/ftsync_atomic.pxd"],
    ),
    Extension(
        "patterns.ratelimit._local",
        sources=["src/patterns/ratelimit/_local.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/ftsync_atomic.h", "csrc/ftsync_atomic.pxd"],
    ),
]
CYTHON_MODULES = {ext.name for ext in CYTHON_EXTENSIONS}


def cffi_installed():
    """False while the backend is still asking for build requirements (cffi comes next)."""
    try:
        import cffi  # noqa: F401
    except ImportError:
        return False
    return True


extra = {}
if cffi_supported():
    extra["install_requires"] = [CFFI_REQUIREMENT]
    if cffi_installed():
        extra["cffi_modules"] = ["packaging/atomics_cffi_build.py:ffibuilder"]

setup(
    ext_modules=cythonize(
        CYTHON_EXTENSIONS,
        compiler_directives={"language_level": 3, "freethreading_compatible": True},
        include_path=["csrc"],  # csrc/ftsync_atomic.pxd: the header's one Cython declaration
    ),
    cmdclass={"build_ext": BuildExt},
    **extra,
)
