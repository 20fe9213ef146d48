#!/bin/sh
# What `scons doc` needs on Debian (root or sudo): doxygen.  Also
# qemu-system-x86, with which tests/test_cli checks `vmmem --qemu` against a
# real QEMU (the test is skipped, saying so, without it).  Does nothing when
# both are there.
set -e
need=""
command -v doxygen >/dev/null 2>&1 || need="$need doxygen"
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
[ -n "$need" ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps-doc: installing$need" >&2
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need >/dev/null
