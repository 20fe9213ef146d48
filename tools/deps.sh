#!/bin/sh
# Install what building and testing libvmmem needs on Debian (root or sudo).
# Does nothing when everything is already there.
set -e
need=""
command -v scons >/dev/null 2>&1 || need="$need scons"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
command -v g++ >/dev/null 2>&1 || need="$need g++" # tests/test_cxx.cpp: the headers from C++
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
[ -f /usr/include/CUnit/Basic.h ] || need="$need libcunit1-dev"
[ -n "$need" ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing$need" >&2
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq $need >/dev/null
