#!/bin/bash
# The Debian packages, built and tried as a new user would (issue 19):
#   1. dpkg-buildpackage -us -uc -b on a copy of the tracked tree (debian/):
#      libvmmem0, libvmmem-dev, vmmem-tools;
#   2. lintian: any error fails (warnings are printed);
#   3. a clean Debian chroot (debootstrap bookworm, minbase): the packages are
#      installed with apt (their dependencies from the archive), then, as an
#      unprivileged user with pkg-config alone: the README example and the
#      out-of-tree provider (examples/provider) are built against the
#      installed libvmmem-dev and run, `vmmem providers` finds the installed
#      plugins, `vmmem demo` runs;
#   4. the packages are purged and nothing they installed may be left.
# Skips (exit 0, saying why) only when debootstrap cannot reach the archive.
# Run as root (debootstrap, chroot).  Output: one line per check and
# "deb: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$top/build/deb
mirror=${VMMEM_DEB_MIRROR:-http://deb.debian.org/debian}
suite=${VMMEM_DEB_SUITE:-bookworm}
pass=0 fail=0
ok() { echo "deb: ok   $1"; pass=$((pass + 1)); }
bad() { echo "deb: FAIL $1"; fail=$((fail + 1)); }
finish() {
    [ -n "${chroot:-}" ] && umount "$chroot/proc" 2>/dev/null
    echo "deb: $pass passed, $fail failed"
    [ $fail -eq 0 ]
    exit
}
[ "$(id -u)" -eq 0 ] || { echo "deb: must run as root (debootstrap, chroot)"; exit 1; }

need=""
for t in dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian fakeroot:fakeroot \
    debootstrap:debootstrap scons:scons pkg-config:pkg-config doxygen:doxygen; do
    command -v "${t%%:*}" >/dev/null 2>&1 || need="$need ${t#*:}"
done
[ -f /usr/include/CUnit/Basic.h ] || need="$need libcunit1-dev"
dpkg -s build-essential >/dev/null 2>&1 || need="$need build-essential" # dpkg-checkbuilddeps
if [ -n "$need" ]; then
    echo "deb: installing$need"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need \
        >/dev/null || { echo "deb: cannot install$need"; exit 1; }
fi

# ---- 1. build -----------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work/src/libvmmem"
# The tracked files (a clean tree); without git, everything but build/.
if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -z | tar --null -T - -cf - | tar -C "$work/src/libvmmem" -xf -
else
    tar --exclude=./build --exclude=./.sconsign.dblite -cf - . | tar -C "$work/src/libvmmem" -xf -
fi
t0=$(date +%s)
if (cd "$work/src/libvmmem" &&
    DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
    >"$work/build.log" 2>&1; then
    ok "dpkg-buildpackage ($(($(date +%s) - t0)) s)"
else
    bad "dpkg-buildpackage (last lines of $work/build.log:)"
    tail -30 "$work/build.log"
    finish
fi
debs=()
for p in libvmmem0 libvmmem-dev vmmem-tools; do
    f=$(ls "$work"/src/${p}_*.deb 2>/dev/null | head -1)
    [ -n "$f" ] && debs+=("$f") || bad "package $p was not built"
done

# ---- 2. lintian ---------------------------------------------------------------
lintian --tag-display-limit 0 "$work"/src/*.changes >"$work/lintian.log" 2>&1
sed -n '/^[EW]: /p' "$work/lintian.log"
if grep -q '^E: ' "$work/lintian.log"; then
    bad "lintian: $(grep -c '^E: ' "$work/lintian.log") errors"
else
    ok "lintian: no errors ($(grep -c '^W: ' "$work/lintian.log") warnings)"
fi

# ---- 3. a clean chroot, a new user --------------------------------------------
chroot=$work/chroot
t0=$(date +%s)
if ! debootstrap --variant=minbase "$suite" "$chroot" "$mirror" >"$work/debootstrap.log" 2>&1; then
    if grep -qiE 'Failed getting release file|Temporary failure|Could not resolve|unable to fetch' \
        "$work/debootstrap.log"; then
        echo "deb: chroot test SKIPPED: debootstrap cannot reach $mirror:"
        tail -3 "$work/debootstrap.log"
        finish
    fi
    bad "debootstrap (see $work/debootstrap.log)"
    tail -10 "$work/debootstrap.log"
    chroot=""
    finish
fi
echo "deb: chroot made in $(($(date +%s) - t0)) s"
mount -t proc proc "$chroot/proc"
cp /etc/resolv.conf "$chroot/etc/resolv.conf" 2>/dev/null
mkdir -p "$chroot/tmp/debs"
cp "${debs[@]}" "$chroot/tmp/debs/"
in_chroot() { chroot "$chroot" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive /bin/sh -c "$1"; }
if in_chroot 'apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        gcc libc6-dev pkg-config /tmp/debs/*.deb' >"$work/install.log" 2>&1; then
    ok "apt-get install of the packages in a clean $suite chroot"
else
    bad "apt-get install in the chroot"
    tail -20 "$work/install.log"
    finish
fi
# What the packages put there, to check removal against.
in_chroot 'dpkg -L libvmmem0 libvmmem-dev vmmem-tools' | sort -u >"$work/files.txt"

python3 - "$top/README.md" "$chroot/tmp/readme_example.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split('## Example', 1)[1]
open(sys.argv[2], 'w').write(re.search(r'```c\n(.*?)```', text, re.S).group(1))
PY
cp examples/provider/ring.c examples/provider/ring-demo.c "$chroot/tmp/"
in_chroot 'useradd -m newuser && chmod 755 /tmp/*.c' >/dev/null 2>&1
as_user() { chroot "$chroot" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/newuser \
    /bin/su newuser -s /bin/sh -c "cd ~ && $1"; }
check() { # NAME COMMAND: run as the new user in the chroot
    local out
    if out=$(as_user "$2" 2>&1); then ok "$1"; else bad "$1"; echo "$out" | tail -15; fi
}
check "README example built with pkg-config and run" \
    'cc -std=c11 -Wall -Wextra -Werror -o readme /tmp/readme_example.c \
        $(pkg-config --cflags --libs vmmem) && ./readme'
check "out-of-tree provider built with pkg-config" \
    'cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -o vmmem-ring.so /tmp/ring.c \
        $(pkg-config --cflags vmmem)'
check "program using it built and run" \
    'cc -std=c11 -Wall -Wextra -Werror -o ring-demo /tmp/ring-demo.c \
        $(pkg-config --cflags --libs vmmem) && VMMEM_PLUGIN_PATH=$HOME ./ring-demo'
check "vmmem providers finds the installed plugins" \
    'out=$(vmmem providers) && echo "$out" && d=$(pkg-config --variable=plugindir vmmem) &&
     echo "$out" | grep -Eq "^  mmap .* $d/vmmem-mmap.so " &&
     echo "$out" | grep -Eq "^  file .* $d/vmmem-file.so "'
check "vmmem demo" 'vmmem demo >/dev/null'
check "plugin directory from pkg-config exists" \
    'test -f "$(pkg-config --variable=plugindir vmmem)/vmmem-mmap.so"'

# ---- 4. removal ---------------------------------------------------------------
if in_chroot 'apt-get purge -y -qq libvmmem0 libvmmem-dev vmmem-tools' >"$work/purge.log" 2>&1; then
    left=""
    while read -r f; do
        [ -n "$f" ] && [ "$f" != "/." ] || continue
        p=$chroot$f
        if [ -L "$p" ] || [ -f "$p" ]; then left="$left $f"; fi
        case $f in */vmmem | */vmmem/*) [ -d "$p" ] && left="$left $f/" ;; esac
    done <"$work/files.txt"
    if [ -z "$left" ]; then
        ok "purge removes every file the packages installed ($(wc -l <"$work/files.txt") paths)"
    else
        bad "left after purge:$left"
    fi
else
    bad "apt-get purge"
    tail -10 "$work/purge.log"
fi
umount "$chroot/proc" 2>/dev/null
rm -rf "$chroot"
chroot=""
finish
