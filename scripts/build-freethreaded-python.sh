#!/usr/bin/env bash
# Build (or reuse) a free-threaded CPython 3.13t for the test suite.
#
#   scripts/build-freethreaded-python.sh          the 3.13t interpreter of `make test-ft`
#   scripts/build-freethreaded-python.sh --tsan   the same, under ThreadSanitizer (`make tsan`)
#
# Source: the upstream tarball inside Debian 13's `python3.13` source package, fetched with
# `apt-get source --download-only` through a temporary sources list whose archive URI is read
# from this machine's own apt configuration (no mirror host is written here).
# Result: $FTSYNC_FT_PREFIX (default ~/.cache/ftsync/cpython-3.13t)/bin/python3.13t, or with
# --tsan $FTSYNC_TSAN_PREFIX (default ~/.cache/ftsync/cpython-3.13t-tsan)/bin/python3.13t.
# Prints the interpreter's path as its last line of output.
#
# The TSan build (gcc's -fsanitize=thread, which extensions built by it inherit from sysconfig)
# leaves out the test modules and the install-time bytecode compilation: under the sanitizer
# those are most of the build's time (14 of 22 minutes), and nothing of ours needs them.
set -euo pipefail

tsan=false
case "${1:-}" in
    "") ;;
    --tsan) tsan=true ;;
    *) echo "usage: $0 [--tsan]" >&2; exit 2 ;;
esac
if $tsan; then
    prefix=${FTSYNC_TSAN_PREFIX:-$HOME/.cache/ftsync/cpython-3.13t-tsan}
else
    prefix=${FTSYNC_FT_PREFIX:-$HOME/.cache/ftsync/cpython-3.13t}
fi
cache=$(dirname "$prefix")
python="$prefix/bin/python3.13t"

is_free_threaded() {
    # Free-threaded, and instrumented exactly when --tsan asked for it.
    [ -x "$python" ] && "$python" -c '
import sys, sysconfig
want_tsan = sys.argv[1] == "true"
has_tsan = "-fsanitize=thread" in (sysconfig.get_config_var("CONFIG_ARGS") or "") + " " + (sysconfig.get_config_var("PY_CFLAGS") or "")
sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") and has_tsan == want_tsan else 1)' "$tsan" 2>/dev/null
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
if $tsan; then
    ./configure --quiet --disable-gil --with-thread-sanitizer --disable-test-modules \
        --prefix="$prefix" --with-ensurepip=install >&2
    make -s -j"$(nproc)" >&2
    # -l: compile only the top level of the stdlib at install; the rest is compiled on import.
    make -s install COMPILEALL_OPTS="-j0 -l" >&2
else
    ./configure --quiet --disable-gil --prefix="$prefix" --with-ensurepip=install >&2
    make -s -j"$(nproc)" >&2
    make -s install >&2
fi
cd /
rm -rf "$build"

is_free_threaded || { echo "built $python is not the free-threaded interpreter asked for" >&2; exit 1; }
echo "$python"
