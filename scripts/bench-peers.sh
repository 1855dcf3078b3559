#!/usr/bin/env bash
# Install the benchmark peers for benchmarks/ (idempotent; safe to rerun).
#
#   scripts/bench-peers.sh [VENV ...]      default: .venvs/py311 .venvs/py313 .venvs/py313t (those present)
#
# For each VENV (which already has ftsync installed):
#   - into VENV: pytest-benchmark>=5, cereggii>=1.0, and ft_utils>=0.2 where Python >= 3.13
#     (the `bench` extra's versions; ft_utils 0.2 is an sdist and builds with the C compiler);
#   - next to it: .venvs/atomics-peer-X.Y[t], a venv of the same base interpreter holding the
#     `atomics` package from PyPI (its import name clashes with ftsync's `atomics`, so the suite
#     times it in a subprocess of that venv). On free-threaded 3.13 it cannot install (cffi
#     refuses that build): the script skips it there, and so does the suite.
# A peer that fails to install is reported with pip's last error line; the script goes on and
# exits 1 at the end if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ $# -gt 0 ]; then
    venvs=("$@")
else
    venvs=()
    for v in .venvs/py311 .venvs/py313 .venvs/py313t; do
        [ -x "$v/bin/python" ] && venvs+=("$v")
    done
fi
[ ${#venvs[@]} -gt 0 ] || { echo "no venvs given or found under .venvs/" >&2; exit 2; }

failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_py PYTHON ARGS...: with PYTHON_GIL=0 on free-threaded builds only (a GIL 3.13 dies on it).
run_py() {
    if "$1" -c 'import sys, sysconfig; sys.exit(not sysconfig.get_config_var("Py_GIL_DISABLED"))' 2>/dev/null; then
        PYTHON_GIL=0 "$@"
    else
        "$@"
    fi
}

# pip_install PYTHON WHAT SPEC...: install, report one line, remember failures.
pip_install() {
    local py=$1 what=$2
    shift 2
    local reason
    if run_py "$py" -m pip install -q --prefer-binary "$@" >"$log" 2>&1; then
        echo "  ok      $what"
        return 0
    fi
    failed=1
    # the exception line if there is one, else pip's last error line
    reason=$(grep -E '^[[:space:]]*[A-Za-z_.]*(Error|Exception): .' "$log" | tail -n 1 | sed 's/^[[:space:]]*//')
    [ -n "$reason" ] || reason=$(grep -E 'ERROR|error:' "$log" | grep -v '^WARNING' | tail -n 1)
    echo "  FAILED  $what: $reason"
    return 1
}

for venv in "${venvs[@]}"; do
    py="$venv/bin/python"
    if [ ! -x "$py" ]; then
        echo "$venv: no interpreter at $py" >&2
        failed=1
        continue
    fi
    read -r tag ge313 base < <(run_py "$py" -c '
import sys, sysconfig
ft = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
print(f"{sys.version_info[0]}.{sys.version_info[1]}{ft}", int(sys.version_info >= (3, 13)), sys._base_executable)')
    echo "$venv (Python $tag)"
    pip_install "$py" "pytest-benchmark>=5" "pytest-benchmark>=5"
    pip_install "$py" "cereggii>=1.0" "cereggii>=1.0"
    if [ "$ge313" = 1 ]; then
        pip_install "$py" "ft_utils>=0.2" "ft_utils>=0.2"
    else
        echo "  skip    ft_utils (Python >= 3.13 only)"
    fi

    peer=".venvs/atomics-peer-$tag"
    if [ "$tag" = 3.13t ]; then
        # pip fails with "RuntimeError: CFFI does not support the free-threaded build of CPython 3.13."
        echo "  skip    atomics (it needs cffi, which refuses free-threaded 3.13)"
        continue
    fi
    if [ -x "$peer/bin/python" ] && "$peer/bin/python" -c 'import atomics; atomics.atomicview' 2>/dev/null; then
        echo "  ok      atomics (in $peer)"
        continue
    fi
    rm -rf "$peer"
    if ! "$base" -m venv "$peer" >"$log" 2>&1; then
        failed=1
        echo "  FAILED  atomics: cannot create $peer: $(tail -n 1 "$log")"
        continue
    fi
    if ! pip_install "$peer/bin/python" "atomics (in $peer)" atomics; then
        rm -rf "$peer"  # leave no half-made peer venv: the suite then skips with a reason
    fi
done
exit $failed
