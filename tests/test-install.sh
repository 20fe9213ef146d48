#!/bin/sh
# Installs as a user would, away from the build tree (issue 17):
#  1. copy the source tree to a temporary directory and build it there with
#     PREFIX=<tmp>/prefix;
#  2. `scons install DESTDIR=<tmp>/stage`, then `scons uninstall` with the
#     same DESTDIR: every file install wrote is gone, a foreign file in the
#     same directories is kept;
#  3. `scons install` into the prefix; check that no installed binary has a
#     RUNPATH into a build tree; delete the whole copied tree (sources and
#     build/);
#  4. run the installed tool (`providers`, `info`), and build the README's
#     example and the example provider with cc + pkg-config against the
#     installed headers, and run them.
# Usage: sh tests/test-install.sh   (from the source tree; about one build)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/vmmem-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
say() { echo "test-install: $*"; }

# 1. A copy of the tree as git sees it (tracked and new files, no build/).
mkdir "$tmp/src"
(cd "$src" && git ls-files -co --exclude-standard -z | xargs -0 tar cf - 2>/dev/null) |
    (cd "$tmp/src" && tar xf -)
[ -f "$tmp/src/SConstruct" ] || fail "copying the source tree"
prefix=$tmp/prefix
say "building in $tmp/src with PREFIX=$prefix"
(cd "$tmp/src" && scons -Q -j2 PREFIX="$prefix" install DESTDIR="$tmp/stage" >"$tmp/build.log" 2>&1) ||
    { tail -30 "$tmp/build.log"; fail "scons install DESTDIR=..."; }

# 2. uninstall removes exactly what install wrote.
staged=$tmp/stage$prefix
[ -x "$staged/bin/vmmem" ] || fail "no $staged/bin/vmmem after install"
(cd "$tmp/stage" && find . ! -type d | sort) >"$tmp/installed.txt"
say "install wrote $(wc -l <"$tmp/installed.txt") files"
echo keep >"$staged/lib/other-package.so"
(cd "$tmp/src" && scons -Q PREFIX="$prefix" DESTDIR="$tmp/stage" uninstall >"$tmp/uninstall.log" 2>&1) ||
    { cat "$tmp/uninstall.log"; fail "scons uninstall"; }
left=$(cd "$tmp/stage" && find . ! -type d | sort)
[ "$left" = "./${prefix#/}/lib/other-package.so" ] ||
    fail "after uninstall, expected only the foreign file, found: $left"
for d in lib/vmmem include/vmmem; do
    [ ! -e "$staged/$d" ] || fail "uninstall left $staged/$d"
done
say "uninstall removed all $(wc -l <"$tmp/installed.txt") files and kept a foreign one"

# 3. The real install; no build-tree RUNPATH anywhere.
(cd "$tmp/src" && scons -Q -j2 PREFIX="$prefix" install >>"$tmp/build.log" 2>&1) ||
    { tail -30 "$tmp/build.log"; fail "scons install"; }
# As root without DESTDIR the install refreshes the loader cache; a DESTDIR
# (staged) install does not.
if [ "$(id -u)" -eq 0 ]; then
    grep -q '^install: .*ldconfig' "$tmp/build.log" || fail "no ldconfig after a root install"
    [ "$(grep -c '^install: .*ldconfig' "$tmp/build.log")" -eq 1 ] ||
        fail "ldconfig ran for the DESTDIR install too"
fi
for f in "$prefix"/bin/vmmem "$prefix"/lib/libvmmem.so.* "$prefix"/lib/vmmem/plugins/*; do
    rp=$(readelf -d "$f" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p')
    case "$rp" in
    '' | '$ORIGIN/../lib') ;;
    *) fail "$f has RUNPATH/RPATH '$rp'" ;;
    esac
done
[ -f "$prefix/share/man/man1/vmmem.1" ] || fail "vmmem(1) not installed"
[ -f "$prefix/share/man/man3/libvmmem.3" ] || fail "libvmmem(3) not installed"
rm -rf "$tmp/src"
say "build tree deleted"

# 4. The installed tool and programs built against the installed headers.
env -u VMMEM_PLUGIN_PATH "$prefix/bin/vmmem" providers >"$tmp/providers.txt" 2>&1 ||
    { cat "$tmp/providers.txt"; fail "installed vmmem providers"; }
for p in mmap file; do
    grep -q "^ *$p .*$prefix/lib/vmmem/plugins/vmmem-$p.so" "$tmp/providers.txt" ||
        { cat "$tmp/providers.txt"; fail "provider $p not from $prefix"; }
done
if grep -q 'DUPLICATE\|build/' "$tmp/providers.txt"; then
    cat "$tmp/providers.txt"; fail "duplicates or build-tree paths in vmmem providers"
fi
out=$(env -u VMMEM_PLUGIN_PATH "$prefix/bin/vmmem" info 'mmap:addr=0,size=64K') ||
    fail "installed vmmem info"
echo "$out" | grep -q 'mmap' || fail "vmmem info printed: $out"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
libdir=$(pkg-config --variable=libdir vmmem)
[ "$libdir" = "$prefix/lib" ] || fail "pkg-config libdir is '$libdir'"
sed -n '/^## Example/,/^## /p' "$src/README.md" | sed -n '/^```c$/,/^```$/p' | sed '1d;$d' \
    >"$tmp/example.c"
cc -o "$tmp/example" "$tmp/example.c" $(pkg-config --cflags --libs vmmem) -Wl,-rpath,"$libdir" ||
    fail "compiling the README example against the installed headers"
env -u VMMEM_PLUGIN_PATH "$tmp/example" || fail "the README example"
cc -shared -fPIC -o "$tmp/vmmem-ring.so" "$src/examples/provider/ring.c" $(pkg-config --cflags vmmem) ||
    fail "building the example provider with pkg-config"
cc -o "$tmp/ring-demo" "$src/examples/provider/ring-demo.c" $(pkg-config --cflags --libs vmmem) \
    -Wl,-rpath,"$libdir" || fail "building ring-demo"
chmod go-w "$tmp"
VMMEM_PLUGIN_PATH=$tmp "$tmp/ring-demo" >"$tmp/ring.txt" 2>&1 || { cat "$tmp/ring.txt"; fail "ring-demo"; }
say "installed tool, README example and out-of-tree provider work with the build tree gone"
say PASS
