#!/bin/sh
# The end-to-end test of examples/vhost-user-blk (issue 15): QEMU (TCG) and a
# Linux guest against vmmem-vhost-user-blk - I/O, read-only, live migration
# with the dirty log compared page by page (and its sensitivity run), memory
# hot-plug, and a hostile front-end against the ASan build.  See
# docs/vhost-user.md.
#
#   sh tests/e2e/run.sh            (CI; or `scons e2e` on a developer machine)
#
# It installs what it needs (qemu-system-x86, busybox-static, python3, the
# build deps), fetches the Debian cloud kernel package with `apt-get
# download` and unpacks it with `dpkg-deb -x` (never installs it), builds
# the back-end (release and sanitize=1) unless E2E_BACKEND names one, and
# runs tests/e2e/e2e.py.  Prints one line per check and "N passed, M failed";
# exits non-zero when a check failed or a step could not run.
#
# Environment: E2E_WORK (scratch and cache, default build/e2e),
# E2E_BACKEND / E2E_PLUGINS (a built back-end and its plugin directory: no
# build), E2E_ASAN_BACKEND / E2E_ASAN_PLUGINS (the one for the hostile
# checks), E2E_ONLY (io,ro,migrate,sensitivity,hotplug,hostile), E2E_TIMEOUT (whole run,
# seconds, default 600).
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
work=${E2E_WORK:-$root/build/e2e}
mkdir -p "$work"
t0=$(date +%s)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_get() {
    DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get -o DPkg::Lock::Timeout=600 "$@"
}

# 1. Packages.
need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
command -v python3 >/dev/null 2>&1 || need="$need python3"
if [ -n "$need" ]; then
    echo "e2e: installing$need"
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends $need >/dev/null
fi
if [ -z "${E2E_BACKEND:-}" ]; then
    sh tools/deps.sh
fi

# 2. The kernel: the package the cloud meta-package names, unpacked only.
kdir=$work/kernel
if ! ls "$kdir"/root/boot/vmlinuz-* >/dev/null 2>&1; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        apt_get update -qq
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
            awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    fi
    [ -n "$pkg" ] || { echo "e2e: FAIL no linux-image-*-cloud-amd64 package found"; exit 1; }
    echo "e2e: fetching $pkg"
    rm -rf "$kdir"
    mkdir -p "$kdir/deb"
    # apt-get download writes to the current directory; as root it warns that
    # the _apt user cannot write there, which is harmless.
    (cd "$kdir/deb" && timeout 600 apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    deb=$(ls "$kdir"/deb/*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "e2e: FAIL apt-get download $pkg gave no .deb"; exit 1; }
    dpkg-deb -x "$deb" "$kdir/root"
    rm -f "$deb"
fi

# 3. The back-end: release for the guest runs, ASan + UBSan for the hostile one.
if [ -z "${E2E_BACKEND:-}" ]; then
    echo "e2e: building the back-end (release and sanitize=1)"
    timeout 1200 scons -Q -j2 build/release/examples/vhost-user-blk build/release/plugins >/dev/null
    timeout 1200 scons -Q -j2 sanitize=1 build/sanitize/examples/vhost-user-blk \
        build/sanitize/plugins >/dev/null
    E2E_BACKEND=$root/build/release/examples/vhost-user-blk/vmmem-vhost-user-blk
    E2E_PLUGINS=$root/build/release/plugins
    E2E_ASAN_BACKEND=$root/build/sanitize/examples/vhost-user-blk/vmmem-vhost-user-blk
    E2E_ASAN_PLUGINS=$root/build/sanitize/plugins
fi
set -- --backend "$E2E_BACKEND" --plugins "${E2E_PLUGINS:?E2E_PLUGINS must name the plugin directory}"
if [ -n "${E2E_ASAN_BACKEND:-}" ]; then
    set -- "$@" --asan-backend "$E2E_ASAN_BACKEND" --asan-plugins "${E2E_ASAN_PLUGINS:-$E2E_PLUGINS}"
fi
if [ -n "${E2E_ONLY:-}" ]; then
    set -- "$@" --only "$E2E_ONLY"
fi
echo "e2e: setup took $(($(date +%s) - t0)) s"

# 4. The checks; the whole run is bounded.
rc=0
timeout -k 10 "${E2E_TIMEOUT:-600}" python3 tests/e2e/e2e.py "$@" --kernel-root "$kdir/root" \
    --work "$work/run" || rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "e2e: FAIL the run did not finish within ${E2E_TIMEOUT:-600} s"
fi
echo "e2e: total $(($(date +%s) - t0)) s"
exit $rc
