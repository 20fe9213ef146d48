#!/bin/sh
# Write debian/libvmmem0.symbols from the built library's versioned dynamic
# symbols (core/libvmmem.map decides the version node of each).  Symbols of
# node VMMEM_X.Y are listed with the minimal version X.Y.0.  Run after a
# release adds symbols; dpkg-gensymbols (dh_makeshlibs) then fails the
# package build when a listed symbol disappears.
set -eu
cd "$(dirname "$0")/.."
lib=$(ls build/release/core/libvmmem.so.0 2>/dev/null || true)
[ -n "$lib" ] || { scons -Q build/release/core >/dev/null; lib=build/release/core/libvmmem.so.0; }
{
    echo "libvmmem.so.0 libvmmem0 #MINVER#"
    echo "* Build-Depends-Package: libvmmem-dev"
    objdump -T "$lib" | awk '$NF ~ /^vmmem_/ && $(NF-1) ~ /^VMMEM_/ {print $(NF-1), $NF}' |
        sort -u | while read -r node sym; do
            v=${node#VMMEM_}
            echo " $sym@$node $v.0"
        done
    # The version nodes themselves.
    objdump -T "$lib" | awk '$NF ~ /^VMMEM_/ && $(NF-1) ~ /^VMMEM_/ {print $NF}' | sort -u |
        while read -r node; do echo " $node@$node ${node#VMMEM_}.0"; done
} >debian/libvmmem0.symbols
echo "deb-symbols: $(($(wc -l <debian/libvmmem0.symbols) - 2)) lines in debian/libvmmem0.symbols"
