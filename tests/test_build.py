"""Facts about the build: GIL stays off, build-only files stay out, the CLI runs."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

import atomics
from conftest import FREE_THREADED_BUILD

EXTENSIONS = ["atomics._native", "atomics._cffi"]


def _clean_env():
    env = dict(os.environ)
    env.pop("PYTHON_GIL", None)  # let the interpreter decide, as a user's would
    return env


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="the GIL can only stay disabled on a free-threaded build")
def test_importing_every_module_keeps_the_gil_disabled():
    code = (
        "import sys, importlib, pkgutil, atomics, patterns\n"
        "names = ['atomics._native', 'atomics._memory_order', 'patterns']\n"
        "names += ['atomics.' + m.name for m in pkgutil.iter_modules(atomics.__path__)]\n"
        "names += ['patterns.' + m.name for m in pkgutil.iter_modules(patterns.__path__)]\n"
        "import patterns.ratelimit\n"
        "names += ['patterns.ratelimit.' + m.name for m in pkgutil.iter_modules(patterns.ratelimit.__path__)]\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        assert name == 'atomics.views' and 'cffi' in str(exc), (name, exc)\n"
        "assert not sys._is_gil_enabled(), 'an import re-enabled the GIL'\n"
        "print('ok', sorted(names))\n"
    )
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                            env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "atomics._native" in result.stdout and "patterns._channel" in result.stdout
    assert "patterns.ratelimit._local" in result.stdout and "patterns.ratelimit.aio" in result.stdout


@pytest.mark.skipif(not (FREE_THREADED_BUILD and sys.version_info < (3, 14)),
                    reason="only free-threaded 3.13 lacks cffi")
def test_views_import_explains_why_they_are_missing():
    with pytest.raises(ImportError, match=r"cffi supports free threading only from Python 3\.14t"):
        importlib.import_module("atomics.views")
    assert atomics.AtomicInt64(1).inc() == 2  # the rest of atomics works


@pytest.mark.skipif(not os.environ.get("FTSYNC_EXPECT_WHEEL"),
                    reason="make test sets FTSYNC_EXPECT_WHEEL to the wheel it built and installed")
def test_the_suite_runs_against_the_installed_manylinux_wheel():
    from importlib.metadata import distribution
    from pathlib import Path

    import patterns

    wheel = Path(os.environ["FTSYNC_EXPECT_WHEEL"])
    dist = distribution("ftsync")
    tags = [line.split(":", 1)[1].strip() for line in dist.read_text("WHEEL").splitlines()
            if line.startswith("Tag:")]
    assert tags and all("manylinux" in tag for tag in tags), tags
    assert all(tag.split("-")[-1] in wheel.name for tag in tags)  # the wheel make test built
    site = Path(dist.locate_file("")).resolve()
    src = Path(__file__).resolve().parent.parent / "src"
    for module in (atomics, patterns, atomics._native):
        location = Path(module.__file__).resolve()
        assert location.is_relative_to(site) and not location.is_relative_to(src), location


def test_cffi_build_script_is_not_installed():
    from importlib.metadata import distribution

    assert importlib.util.find_spec("atomics._cffi_build") is None
    assert importlib.util.find_spec("atomics_cffi_build") is None
    files = [str(f) for f in distribution("ftsync").files or ()]
    assert not [f for f in files if "cffi_build" in f], files  # the wheel's RECORD


def test_native_module_is_compiled():
    assert atomics.AtomicInt64.__module__ == "atomics._native"
    assert atomics._native.__file__.endswith((".so", ".pyd"))
    assert atomics._native.INT64_LOCK_FREE and atomics._native.BOOL_LOCK_FREE


def test_python_m_atomics_prints_build_facts_and_a_benchmark():
    result = subprocess.run([sys.executable, "-m", "atomics", "--quick"], env=_clean_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(rf"^ftsync: +{re.escape(atomics.__version__)}$", out, re.M)
    assert re.search(r"^int64 atomics lock-free: +yes$", out, re.M)
    assert re.search(r"^GIL enabled: +(yes|no)$", out, re.M)
    assert re.search(r"^free-threaded build: +(yes|no)$", out, re.M)
    assert "AtomicInt64.inc" in out and "ns/call" in out


@pytest.mark.parametrize("module", ["patterns.ratelimit.redis", "patterns.ratelimit.aio"])
def test_redis_limiters_without_redis_py_name_the_extra(module):
    code = ("import sys\nsys.modules['redis'] = None  # as if redis-py were not installed\n"
            f"try:\n    import {module}\nexcept ImportError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'ftsync[redis]'" in done.stdout, done.stdout + done.stderr
