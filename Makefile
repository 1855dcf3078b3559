# ftsync developer commands.  `make test` is the one CI runs (.ci/run calls it).
#
#   make test      C core under sanitizers, the suite on this Python, stubtest, docs, the suite on 3.13t
#   make servers   install redis-server and etcd (Debian packages) when they are missing
#   make docs      build the mkdocs site (API reference from the installed package's docstrings)
#   make test-gil  the suite on $(PYTHON) only (against the built, repaired wheel)
#   make test-ft   the suite on free-threaded 3.13t with PYTHON_GIL=0 (builds CPython once, cached)
#   make stubtest  the .pyi stubs against the installed extensions (mypy.stubtest; after test-gil)
#   make csan      the C stress test under ThreadSanitizer and under ASan+UBSan
#   make tsan      the concurrency suites under ThreadSanitizer on a free-threaded 3.13t (built once,
#                  cached); any report fails (scripts/tsan.sh)
#   make cpython-tests  CPython's concurrent.futures tests for a 3.11 installed without its test package
#   make bench     pytest-benchmark comparisons with the peer libraries

PYTHON ?= python3
CC ?= cc
VENVS := .venvs
PIP_INSTALL := -m pip install -q --prefer-binary
CORE_TEST := csrc/tests/test_atomic_core.c csrc/ftsync_atomic.c
CBUILD := csrc/tests/build
CFLAGS_SAN := -std=c11 -O1 -g -Wall -Wextra -Werror -pthread

.PHONY: test test-gil test-ft stubtest tsan csan servers docs bench clean cpython-tests

test: csan servers test-gil stubtest docs test-ft tsan

# The Redis and etcd tests run real servers; the fixtures start them on free loopback ports.
SERVER_PACKAGES := redis-server etcd-server
servers:
	@if command -v redis-server >/dev/null && command -v etcd >/dev/null; then \
		echo "servers: redis-server and etcd present"; \
	else \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $(SERVER_PACKAGES); \
	fi

$(VENVS)/gil/bin/python:
	$(PYTHON) -m venv $(VENVS)/gil
	$@ $(PIP_INSTALL) --upgrade pip

$(VENVS)/ft/bin/python:
	ft=$$(bash scripts/build-freethreaded-python.sh | tail -n 1) && $$ft -m venv $(VENVS)/ft
	$@ $(PIP_INSTALL) --upgrade pip

# The suites run against the installed, auditwheel-repaired wheel (tests/test_build.py checks
# that FTSYNC_EXPECT_WHEEL is what is installed), never against the source tree.
test-gil: $(VENVS)/gil/bin/python cpython-tests
	wheel=$$(bash scripts/install-wheel.sh $(VENVS)/gil | tail -n 1) && \
		FTSYNC_EXPECT_WHEEL=$$wheel $< -m pytest

test-ft: $(VENVS)/ft/bin/python
	wheel=$$(bash scripts/install-wheel.sh $(VENVS)/ft | tail -n 1) && \
		FTSYNC_EXPECT_WHEEL=$$wheel PYTHON_GIL=0 $< -m pytest

# The API reference is read from the installed package (the compiled classes' docstrings live
# in the extension modules): the one test-gil installed, else the wheel is built and installed
# here, so that `make docs` works from a fresh checkout.  --strict turns any broken reference
# into an error.
INSTALLED_GIL = $(VENVS)/gil/bin/python -c "import atomics._native, patterns, mypy" 2>/dev/null \
	|| bash scripts/install-wheel.sh $(VENVS)/gil
docs: $(VENVS)/gil/bin/python
	$(INSTALLED_GIL)
	$< $(PIP_INSTALL) "mkdocs>=1.6" "mkdocstrings[python]>=0.26"  # the docs extra, without reinstalling ftsync
	$< -m mkdocs build --strict --site-dir build/site

# tests/test_pool_cpython_contract.py runs CPython's own ThreadPoolExecutor tests against WorkerPool,
# from the interpreter's test package.  pyenv's and Debian's 3.11 come without it: unpack the one
# test module from Debian's libpython3.11-testsuite into the cache (not installed system-wide).
CPYTHON_TESTS_311 := $(HOME)/.cache/ftsync/python3.11-testsuite
cpython-tests:
	@if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| $(PYTHON) -c 'import test.test_concurrent_futures' 2>/dev/null \
		|| [ -f $(CPYTHON_TESTS_311)/usr/lib/python3.11/test/test_concurrent_futures.py ]; then \
		echo "cpython-tests: present (or not needed for $(PYTHON))"; \
	else \
		tmp=$$(mktemp -d) && chmod 755 $$tmp && cd $$tmp && \
		{ apt-get download -q libpython3.11-testsuite || { sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$sudo apt-get update -q && apt-get download -q libpython3.11-testsuite; }; } && \
		mkdir -p $(CPYTHON_TESTS_311) && dpkg-deb -x libpython3.11-testsuite_*.deb $(CPYTHON_TESTS_311) && \
		cd / && rm -rf $$tmp; \
	fi

csan:
	mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_SAN) -fsanitize=thread $(CORE_TEST) -o $(CBUILD)/core-tsan
	TSAN_OPTIONS=halt_on_error=1 $(CBUILD)/core-tsan
	$(CC) $(CFLAGS_SAN) -fsanitize=address,undefined -fno-sanitize-recover=all $(CORE_TEST) -o $(CBUILD)/core-asan
	ASAN_OPTIONS=detect_leaks=1 $(CBUILD)/core-asan

# Go's `go test -race` for ftsync: see scripts/tsan.sh for what runs and why.
tsan:
	bash scripts/tsan.sh

bench: $(VENVS)/gil/bin/python
	$< $(PIP_INSTALL) ".[bench]"
	bash scripts/bench-peers.sh $(VENVS)/gil
	$< -m pytest benchmarks --benchmark-only --benchmark-group-by=group

clean:
	rm -rf build dist $(CBUILD) src/*.egg-info src/atomics/_native.c src/patterns/_*.c

# The stubs (.pyi) against the built extensions and views.py, in the environment test-gil
# installed the wheel into; tests/typing/stubtest-allowlist.txt says why each entry is there.
STUBTEST_MODULES := atomics._native atomics.views patterns._channel patterns._parking patterns._pipeline patterns._pool \
	patterns._semaphore patterns.ratelimit._local
stubtest: $(VENVS)/gil/bin/python
	$(INSTALLED_GIL)
	$< -m mypy.stubtest --allowlist tests/typing/stubtest-allowlist.txt $(STUBTEST_MODULES)
