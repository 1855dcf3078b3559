#!/usr/bin/env bash
# Build (or reuse) a free-threaded CPython 3.13t for the test suite.
#
# Source: the upstream tarball inside Debian 13's `python3.13` source package, fetched with
# `apt-get source --download-only` through a temporary sources list whose archive URI is read
# from this machine's own apt configuration (no mirror host is written here).
# Result: $FTSYNC_FT_PREFIX (default ~/.cache/ftsync/cpython-3.13t)/bin/python3.13t.
# Prints the interpreter's path as its last line of output.
set -euo pipefail

prefix=${FTSYNC_FT_PREFIX:-$HOME/.cache/ftsync/cpython-3.13t}
cache=$(dirname "$prefix")
python="$prefix/bin/python3.13t"

is_free_threaded() {
    [ -x "$python" ] && "$python" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") else 1)' 2>/dev/null
}

if is_free_threaded; then
    echo "reusing $python" >&2
    echo "$python"
    exit 0
fi

archive_uri() {
    # First Debian main-archive URI in deb822 .sources files, then in one-line lists.
    local uri
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | grep -v -e security -e '^cdrom' | grep -i debian | head -n 1 || true)
    if [ -z "$uri" ]; then
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; break}}' \
              | grep -v security | grep -i debian | head -n 1 || true)
    fi
    [ -n "$uri" ] || { echo "no Debian archive URI found in the apt configuration" >&2; exit 1; }
    echo "$uri"
}

srcdir="$cache/src"
mkdir -p "$srcdir"
tarball=$(ls "$srcdir"/python3.13_3.13.*.orig.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$tarball" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(archive_uri) trixie main" \
        > "$work/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
    apt-get "${apt_opts[@]}" -qq update
    (cd "$srcdir" && apt-get "${apt_opts[@]}" -qq source --download-only python3.13)
    tarball=$(ls "$srcdir"/python3.13_3.13.*.orig.tar.xz | sort -V | tail -n 1)
fi
echo "building from $tarball" >&2

build=$(mktemp -d)
tar -xJf "$tarball" -C "$build"
cd "$build"/Python-3.13.*
./configure --quiet --disable-gil --prefix="$prefix" --with-ensurepip=install >&2
make -s -j"$(nproc)" >&2
make -s install >&2
cd /
rm -rf "$build"

is_free_threaded || { echo "built $python is not free-threaded" >&2; exit 1; }
echo "$python"
