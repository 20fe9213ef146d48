#!/bin/bash
# CI for the other platforms (issue 11; docs/platforms.md): installs the
# cross toolchains, then runs
#   scons platform=i386 test      the whole suite, -m32, natively
#   scons platform=aarch64 test   the whole suite under qemu-aarch64
#   tools/test-windows.sh         the Windows build's process-level tests
#                                 under wine (skip with VMMEM_CI_WINDOWS=0)
# and closes with one "N passed, N failed" line over all of them.  Meant to
# be called from .ci/run after the native suite.
#
# Packages (Debian bookworm, as root or through sudo):
#   gcc-aarch64-linux-gnu, qemu-user, libc6-dev:arm64, libcunit1-dev:arm64
#                                                           (dpkg --add-architecture arm64)
#   libc6-dev-i386, lib32gcc-12-dev, libcunit1-dev:i386     (dpkg --add-architecture i386)
#   gcc-mingw-w64-x86-64, wine, wine64
# libc6-dev:arm64 (with linux-libc-dev:arm64): Debian's cross compiler also
# searches /usr/include, and on images where /usr/include/bits points at the
# host's x86_64 headers, <errno.h> reached <asm/errno.h> of no architecture
# ("asm/errno.h: No such file or directory", issue 20); the arm64 multiarch
# include directory comes first once it exists.  wine: the wine64 package
# alone puts no `wine` (nor `wineboot`) on PATH; the wine package does.
# Each check below tests what the step really uses (the command, the header
# as the cross compiler resolves it), not a proxy for it.
# Not gcc-multilib: Debian's gcc-12-multilib conflicts with the aarch64
# cross compiler; it only adds the /usr/include/asm link, which SConstruct
# replaces with -idirafter /usr/include/x86_64-linux-gnu.  Never
# linux-libc-dev:i386 either: when its version differs from the amd64 one
# (bookworm-security), apt removes libc6-dev and every compiler with it.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=""
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need="$need gcc-aarch64-linux-gnu"
command -v qemu-aarch64 >/dev/null 2>&1 || need="$need qemu-user"
[ -f /usr/lib/aarch64-linux-gnu/libcunit.so ] || need="$need libcunit1-dev:arm64"
# What the aarch64 build includes: <errno.h> as the cross compiler resolves it.
arm64_errno_ok() {
    [ -f /usr/include/aarch64-linux-gnu/asm/errno.h ] &&
        echo '#include <errno.h>' | aarch64-linux-gnu-gcc -E -x c - >/dev/null 2>&1
}
arm64_errno_ok || need="$need libc6-dev:arm64"
[ -f /usr/lib32/crt1.o ] || need="$need libc6-dev-i386"
[ -d /usr/lib/gcc/x86_64-linux-gnu/12/32 ] || need="$need lib32gcc-12-dev"
[ -f /usr/lib/i386-linux-gnu/libcunit.so ] || need="$need libcunit1-dev:i386"
if [ "${VMMEM_CI_WINDOWS:-1}" != 0 ]; then
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need="$need gcc-mingw-w64-x86-64"
    { command -v wine && command -v wineboot; } >/dev/null 2>&1 || need="$need wine wine64"
fi
if [ -n "$need" ]; then
    echo "ci-platforms: installing$need" >&2
    $SUDO dpkg --add-architecture arm64
    $SUDO dpkg --add-architecture i386
    # An index of one architecture may be mid-sync on the mirror: go on.
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "ci-platforms: apt-get update reported errors; trying anyway" >&2
    # Dry run first: when the mirror's i386/arm64 indexes lag behind amd64
    # (security updates), apt "solves" multiarch by removing libc6-dev and the
    # compilers.  Never let it: skip the other platforms instead, saying why.
    plan=$(DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -s --no-install-recommends $need 2>&1)
    if [ $? -ne 0 ] || echo "$plan" | grep -q '^Remv '; then
        echo "ci-platforms: SKIPPED: installing$need would fail or remove packages:" >&2
        echo "$plan" | grep -E '^(Remv|E:)' | head -20 >&2
        echo "platforms: skipped (toolchains not installable on this machine now)"
        exit 0
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need \
        >/dev/null || { echo "ci-platforms: apt-get -o DPkg::Lock::Timeout=600 install failed" >&2; exit 1; }
fi
# After the install, what the steps use must be there: say which is missing
# rather than fail deep inside a build.
missing=""
arm64_errno_ok || missing="$missing arm64-<asm/errno.h>"
command -v qemu-aarch64 >/dev/null 2>&1 || missing="$missing qemu-aarch64"
if [ "${VMMEM_CI_WINDOWS:-1}" != 0 ]; then
    command -v wine >/dev/null 2>&1 || missing="$missing wine"
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing="$missing x86_64-w64-mingw32-gcc"
fi
if [ -n "$missing" ]; then
    echo "ci-platforms: still missing after install:$missing" >&2
    echo "platforms: 0 passed, 1 failed"
    exit 1
fi

pass=0 fail=0 rc=0
run() { # NAME COMMAND...: run, echo, add its "total:" line to the sums
    local name=$1; shift
    local t0=$(date +%s)
    echo "==== ci-platforms: $name: $*"
    "$@" 2>&1 | tee "build/ci-$name.log"
    local st=${PIPESTATUS[0]}
    local line
    line=$(grep -E '(^total|^windows): [0-9]+ passed, [0-9]+ failed' "build/ci-$name.log" | tail -1)
    if [ -n "$line" ]; then
        pass=$((pass + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
        fail=$((fail + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    else
        fail=$((fail + 1))
    fi
    [ "$st" -eq 0 ] || rc=1
    echo "==== ci-platforms: $name: exit $st, $(( $(date +%s) - t0 )) s"
}
mkdir -p build
run i386 scons -Q -j2 platform=i386 test
run aarch64 scons -Q -j2 platform=aarch64 test
if [ "${VMMEM_CI_WINDOWS:-1}" != 0 ]; then
    run windows bash tools/test-windows.sh
fi
echo "ci-platforms: $(( $(date +%s) - start )) s"
echo "platforms: $pass passed, $fail failed"
exit $rc
