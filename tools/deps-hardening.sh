#!/bin/sh
# Install what .ci/run's hardening steps need on Debian (root or sudo), on top
# of tools/deps.sh: clang and its sanitizer/libFuzzer runtime (fuzzers,
# `scons CC=clang`), gcc's ThreadSanitizer runtime (`scons tsan=1 test`),
# valgrind, cppcheck and clang-tidy (tools/lint.sh).
# Does nothing when everything is already there.
set -e
need=""
command -v clang >/dev/null 2>&1 || need="$need clang"
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
    need="$need libclang-rt-14-dev"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
# gcc's ThreadSanitizer runtime (scons tsan=1); clang's is in libclang-rt-14-dev.
[ -e "$(gcc -print-file-name=libtsan.so)" ] || need="$need libtsan2"
command -v cppcheck >/dev/null 2>&1 || need="$need cppcheck"
command -v clang-tidy >/dev/null 2>&1 || need="$need clang-tidy"
[ -n "$need" ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps-hardening: installing$need" >&2
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq $need >/dev/null
