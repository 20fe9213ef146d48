#!/bin/bash
# ABI check (issue 19, docs/releasing.md): compare the built libvmmem with the
# baseline of this release stored in abi/, using libabigail (Debian:
# abigail-tools).  Two baselines:
#   abi/libvmmem.abi  abidw of libvmmem.so: every exported function and
#                     variable with the types reachable from them;
#   abi/types.abi     abidw of a probe object generated from the public
#                     headers: one exported function per public struct and
#                     enum (struct vmmem_provider, vmmem_host, vmmem_slice,
#                     the fast.h slot layout...), so that types no exported
#                     function names are compared too.
# Fails on any removed or changed symbol and any changed type; added
# symbols are fine.  The baseline changes only deliberately:
#   tools/abi-check.sh --update   rewrites abi/*.abi; commit them together
#                                 with a NEWS entry (this check verifies that
#                                 the last commit touching abi/ touched NEWS).
set -uo pipefail
cd "$(dirname "$0")/.."
update=0
[ "${1:-}" = "--update" ] && update=1
command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1 || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "abi-check: installing abigail-tools" >&2
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq abigail-tools >/dev/null ||
        { echo "abi-check: cannot install abigail-tools" >&2; exit 1; }
}
scons -Q build/release/core >/dev/null || { echo "abi-check: build failed" >&2; exit 1; }
lib=$(ls build/release/core/libvmmem.so.[0-9]*.*.* | head -1)
out=build/abi
mkdir -p "$out"

# The probe: a function per public type, taking a pointer to it.
{
    echo '#include <vmmem/vmmem.h>'
    grep -ohE '^(typedef )?(struct|enum) vmmem_[a-z0-9_]+ \{' include/vmmem/*.h |
        sed -E 's/^(typedef )?//; s/ \{$//' | sort -u |
        while read -r kind name; do
            echo "__attribute__((visibility(\"default\"))) void abi_${kind}_${name}($kind $name *p);"
            echo "void abi_${kind}_${name}($kind $name *p) { (void)p; }"
        done
} >"$out/probe.c"
cc -std=c11 -g -O0 -shared -fPIC -fvisibility=hidden -Iinclude -o "$out/probe.so" "$out/probe.c" ||
    { echo "abi-check: probe did not build" >&2; exit 1; }
ntypes=$(grep -c '^void abi_' "$out/probe.c")

flags=(--no-corpus-path --no-comp-dir-path --drop-private-types --headers-dir include/vmmem)
abidw "${flags[@]}" --out-file "$out/libvmmem.abi" "$lib" || exit 1
abidw --no-corpus-path --no-comp-dir-path --out-file "$out/types.abi" "$out/probe.so" || exit 1
# The library's file name carries the version; the baseline must not.
sed -i -E 's/(soname|path)=.libvmmem[^"]*"/\1="libvmmem"/g' "$out/libvmmem.abi"

if [ $update -eq 1 ]; then
    cp "$out/libvmmem.abi" "$out/types.abi" abi/
    echo "abi-check: baseline updated ($ntypes public types); commit abi/ with a NEWS entry"
    exit 0
fi

rc=0
for f in libvmmem.abi types.abi; do
    [ -f "abi/$f" ] || { echo "abi-check: no baseline abi/$f (run tools/abi-check.sh --update)"; rc=1; continue; }
    abidiff --no-added-syms --harmless "abi/$f" "$out/$f" >"$out/$f.diff" 2>&1
    st=$?
    # abidiff: bit 1 error, 2 usage, 4 ABI change, 8 incompatible change.
    if [ $st -ne 0 ]; then
        echo "abi-check: $f differs from the baseline (abidiff exit $st):"
        cat "$out/$f.diff"
        rc=1
    else
        echo "abi-check: $f matches the baseline"
    fi
done
# A deliberate baseline change comes with a NEWS entry in the same commit.
if git rev-parse --git-dir >/dev/null 2>&1; then
    c=$(git log -1 --format=%H -- abi/ 2>/dev/null)
    if [ -n "$c" ] && ! git show --name-only --format= "$c" | grep -qx NEWS; then
        echo "abi-check: commit $c changed abi/ without a NEWS entry"
        rc=1
    fi
fi
echo "abi: $ntypes public types and $(grep -c '<elf-symbol name=.vmmem_' abi/libvmmem.abi 2>/dev/null || echo 0) symbols checked, $([ $rc -eq 0 ] && echo ok || echo FAILED)"
exit $rc
