#!/usr/bin/env bash
# `make tsan`: ftsync's concurrency suites under ThreadSanitizer on free-threaded CPython 3.13t,
# the way `go test -race` runs Go's.  Any report fails the run.
#
#   1. build (once, cached) CPython 3.13t configured --with-thread-sanitizer;
#   2. prove the detector is on: a deliberately racy extension, built exactly like ftsync's
#      (setuptools with the interpreter's flags), must be reported;
#   3. build ftsync's wheel with that interpreter (its extensions inherit -fsanitize=thread)
#      and check they are instrumented;
#   4. run the concurrency suites with PYTHON_GIL=0, stress loops scaled down
#      (FTSYNC_STRESS_SCALE) because everything is 5-20 times slower under TSan.
#
# Reports go to files under build/tsan/reports (pytest would swallow them from stderr); any
# file there fails the run and is printed.  tests/tsan/suppressions.txt holds only races inside
# CPython's own shutdown, each explained there; everything of ftsync's is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/tsan
reports="$PWD/$out/reports"
export PIP_PREFER_BINARY=1 PIP_DISABLE_PIP_VERSION_CHECK=1  # hypothesis' sdist wants Rust

# No venv: the instrumented interpreter is a cache of its own, and keeping the build and test
# tools installed in it (once) saves the minutes that pip and build isolation cost under TSan.
py=$(bash scripts/build-freethreaded-python.sh --tsan | tail -n 1)
rm -rf "$out"
mkdir -p "$out/tooling" "$reports"
# The tooling (pip, the wheel build) runs on the instrumented interpreter too; what TSan says
# about pip's own processes is not ftsync's and must not fail an install: kept aside.
export TSAN_OPTIONS="exitcode=0 log_path=$PWD/$out/tooling/report"

# halt_on_error=0: collect every report of the run, not just the first; exitcode=66 makes a
# process with any report exit 66 even when its tests passed.
# suppressions: only CPython's own shutdown races, each proven and explained in the file.
suppressions="$PWD/tests/tsan/suppressions.txt"
tsan_options() {
    echo "halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4" \
        "suppressions=$suppressions log_path=$1"
}

echo "tsan: control: a racy extension must be reported" >&2
cp tests/tsan/racy.c tests/tsan/setup.py tests/tsan/control.py "$out/"
# Build and test tools, once; bytecode compilation at install costs minutes under TSan.
"$py" -c 'import setuptools, Cython, pytest, hypothesis' 2>/dev/null \
    || "$py" -m pip install -q --no-compile "setuptools>=77" "Cython>=3.1" "pytest>=8" "hypothesis>=6.100"
(cd "$out" && "$py" setup.py -q build_ext --inplace >build.log 2>&1) \
    || { cat "$out/build.log"; exit 1; }
set +e
(cd "$out" && PYTHON_GIL=0 TSAN_OPTIONS="$(tsan_options "$PWD/control-report")" "$py" control.py)
status=$?
set -e
if [ "$status" != 66 ] || ! grep -q "data race" "$out"/control-report.* 2>/dev/null \
        || ! grep -q "racy.c" "$out"/control-report.*; then
    echo "tsan: FAILED: the control race was not reported (exit $status): TSan is not instrumenting" >&2
    exit 1
fi
echo "tsan: control race reported as expected (exit 66, racy.c named)" >&2

echo "tsan: building and installing ftsync with $py" >&2
# From a copy of the tree: setuptools reuses whatever build/temp.*-cpython-313t holds, and
# `make test-ft` left uninstrumented objects there under the same tag (CI failed on that).
# The C that Cython generated for the earlier builds comes along (mtimes kept): it does not
# depend on the interpreter, and cythonize regenerates any that is older than its .pyx,
# while running Cython itself on the TSan interpreter costs minutes.
{ git ls-files -z --cached --others --exclude-standard
  git ls-files -z --others --ignored --exclude-standard src | grep -z '\.c$' || true
} | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | (mkdir -p "$out/src" && tar -xf - -C "$out/src")
"$py" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$out/wheel" "$out/src" >"$out/wheel.log" 2>&1 \
    || { tail -n 40 "$out/wheel.log"; exit 1; }
wheel=$(ls "$out"/wheel/ftsync-*.whl)
# The suites below import nothing else (no numpy, matplotlib or server clients).
"$py" -m pip install -q --no-compile --force-reinstall --no-deps "$wheel"
# The wheel must carry instrumented code, or a clean run below would prove nothing.
"$py" - <<'EOF'
import importlib, subprocess, sys
mods = ["atomics._native", "patterns._channel", "patterns._semaphore", "patterns._pool",
        "patterns._pipeline", "patterns._parking", "patterns.ratelimit._local"]
for name in mods:
    path = importlib.import_module(name).__file__
    if "__tsan" not in subprocess.run(["nm", "-D", path], capture_output=True, text=True).stdout:
        sys.exit(f"tsan: {name} ({path}) is not instrumented")
print(f"tsan: {len(mods)} extension modules instrumented", file=sys.stderr)
EOF

# The concurrency suites: every compiled core and the Python around it.
suites=(
    tests/test_atomic_int64.py tests/test_atomic_bool.py tests/test_atomic_counter.py
    tests/test_concurrency.py tests/test_properties.py
    tests/test_context.py tests/test_channel.py tests/test_semaphore.py
    tests/test_pool.py tests/test_pool_races.py tests/test_pipeline.py tests/test_group.py
    tests/test_shutdown.py
    tests/test_lockorder.py
    tests/test_ratelimit_tokenbucket.py tests/test_ratelimit_go_rate.py tests/test_ratelimit_windows.py
    tests/test_ratelimit_keyed.py
    tests/test_stress.py
)
# The Ctrl-C tests send SIGINT to the test process's main thread: in one long TSan session,
# after hundreds of other tests, that signal was seen to go missing (they pass in a process of
# their own, and everywhere without TSan), so they run in a second, short process.
echo "tsan: running ${#suites[@]} suites under ThreadSanitizer (PYTHON_GIL=0)" >&2
set +e
export PYTHON_GIL=0 FTSYNC_STRESS_SCALE=${FTSYNC_STRESS_SCALE:-0.1}
TSAN_OPTIONS="$(tsan_options "$reports/report")" \
    "$py" -m pytest -p no:cacheprovider -q --durations=15 -k "not ctrl_c" "${suites[@]}" "$@"
status=$?
TSAN_OPTIONS="$(tsan_options "$reports/report")" \
    "$py" -m pytest -p no:cacheprovider -q -k "ctrl_c" "${suites[@]}" "$@"
signal_status=$?
[ "$status" != 0 ] || status=$signal_status
set -e
if compgen -G "$reports/report.*" >/dev/null; then
    cat "$reports"/report.*
    echo "tsan: FAILED: $(grep -c '^WARNING: ThreadSanitizer' "$reports"/report.* | awk -F: '{s+=$2} END {print s}') report(s), above" >&2
    exit 1
fi
if [ "$status" != 0 ]; then
    echo "tsan: FAILED: pytest exited $status" >&2
    exit "$status"
fi
echo "tsan: no reports" >&2
