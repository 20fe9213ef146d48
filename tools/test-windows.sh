#!/bin/bash
# Process-level tests of the Windows build (scons platform=windows) under
# wine: CUnit is not available for mingw-w64 on Debian, so the behaviour
# tests of tests/test_cli.c that apply on Windows are run here against
# vmmem.exe and the example programs.  Each vmmem case is also run with the
# native Linux build (build/release, built if missing) and the exit status
# and stdout must be the same (host addresses aside); stderr must quote the
# library's message.  Prints "N passed, N failed"; exits 1 on any failure.
set -u
cd "$(dirname "$0")/.."
top=$PWD
win=$top/build/windows-release
nat=$top/build/release
export WINEDEBUG=-all WINEPATH="Z:$win/core"
[ -x "$win/tools/vmmem.exe" ] || scons -Q platform=windows >/dev/null || exit 1
[ -x "$nat/tools/vmmem" ] || scons -Q >/dev/null || exit 1
wineboot -i >/dev/null 2>&1 || true   # first use: make the prefix quietly
tmp=$(mktemp -d /tmp/vmmem-win-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "  ok   $*"; }
bad() { fail=$((fail + 1)); echo "  FAIL $*"; }

# Drop what differs by design: host addresses, plugin file names and paths.
norm() {
    sed -E 's/ (0x[0-9a-f]+|[0-9A-Fa-f]{16}) +(no|yes|-) / HOSTADDR \2 /; s#\\#/#g; s#Z:/#/#g;
            s/\r$//; s/ +/ /g'
}

# same NAME ARGS...: run both builds, compare exit status and stdout.
same() {
    local name=$1; shift
    local wrc nrc
    wine "$win/tools/vmmem.exe" "$@" >"$tmp/w.out" 2>"$tmp/w.err"; wrc=$?
    VMMEM_PLUGIN_PATH="$nat/plugins" "$nat/tools/vmmem" "$@" >"$tmp/n.out" 2>"$tmp/n.err"; nrc=$?
    if [ "$wrc" != "$nrc" ]; then
        bad "$name: exit $wrc on Windows, $nrc on Linux"; sed 's/^/       /' "$tmp/w.err" | head -5
        return
    fi
    if ! cmp -s <(norm <"$tmp/w.out") <(norm <"$tmp/n.out"); then
        bad "$name: stdout differs"; diff <(norm <"$tmp/n.out") <(norm <"$tmp/w.out") | head -10
        return
    fi
    ok "$name (exit $wrc)"
}

# expect NAME STATUS STDERR-SUBSTRING ARGS...: Windows only.
expect() {
    local name=$1 want=$2 msg=$3; shift 3
    wine "$win/tools/vmmem.exe" "$@" >"$tmp/w.out" 2>"$tmp/w.err"; local rc=$?
    if [ "$rc" != "$want" ]; then bad "$name: exit $rc, want $want"; head -3 "$tmp/w.err"; return; fi
    if [ -n "$msg" ] && ! grep -qF -- "$msg" "$tmp/w.err" "$tmp/w.out"; then
        bad "$name: no '$msg' in the output"; head -3 "$tmp/w.err"; return
    fi
    ok "$name"
}

CFG3='mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K;mmap:addr=0x3000,size=4K'
echo "== vmmem.exe against the Linux vmmem"
for c in providers info dump load fill checksum demo; do same "help: $c --help" "$c" --help; done
same "help: --help" --help
same "usage: no command" ; same "usage: unknown command" frobnicate
same "usage: dump without LEN" dump "$CFG3" 0
same "usage: bad number" dump "$CFG3" zz 4
same "bad config: unknown key" info 'mmap:addr=0,size=4K,bogus=1'
same "bad config: overlap" info 'mmap:addr=0,size=8K;mmap:addr=0x1000,size=4K'
same "bad config: unknown provider" info 'nosuch:addr=0,size=4K'
same "info: region table" info "$CFG3"
same "dump: zeroes across the seam" dump "$CFG3" 0xff0 0x20
same "dump: unbacked start" dump "$CFG3" 0x2000 4
same "dump: runs into the hole" dump "$CFG3" 0x1ff0 0x20
same "checksum: FNV-1a 64 of 8 KiB" checksum "$CFG3" 0 0x2000
same "fill: then nothing printed" fill "$CFG3" 0x10 0x100 0xab
same "fill: into the hole" fill "$CFG3" 0x1f00 0x200 1
same "demo" demo
same "read-only region refuses fill" fill 'mmap:addr=0,size=4K,prot=r' 0 1 1
expect "hugetlb is unsupported on Windows" 1 "not supported on Windows" info 'mmap:addr=0,size=2M,hugetlb'
expect "error names the column" 1 "column 21" info 'mmap:addr=0,size=4K,bogus=1'

echo "== file provider (CreateFileMapping)"
head -c 65536 /dev/zero | tr '\0' 'A' >"$tmp/img"
printf 'hello, windows' | dd of="$tmp/img" bs=1 seek=4096 conv=notrunc 2>/dev/null
wimg="Z:$tmp/img"
same "file: dump (Linux path vs Z: path)" dump "file:addr=0,size=64K,path=$tmp/img,prot=r" 0x1000 16 2>/dev/null || true
expect "file: dump" 0 "" dump "file:addr=0,size=64K,path=$wimg,prot=r" 0x1000 16
grep -q "hello, windows" "$tmp/w.out" && ok "file: dump shows the file's bytes" || bad "file: dump shows the file's bytes"
expect "file: offset=4K" 0 "" dump "file:addr=0x10000,size=8K,path=$wimg,offset=4K,prot=r" 0x10000 14 --raw
[ "$(cat "$tmp/w.out")" = "hello, windows" ] && ok "file: offset maps the right bytes" || bad "file: offset maps the right bytes"
expect "file: too short is ERANGE" 1 "shorter than offset + size" info "file:addr=0,size=128K,path=$wimg"
expect "file: missing file" 1 "does not exist" info "file:addr=0,size=4K,path=Z:$tmp/nope"
expect "file: memfd is Linux-only" 1 "Linux-only" info 'file:addr=0,size=4K,memfd=x'
expect "file: fill (shared)" 0 "" fill "file:addr=0,size=64K,path=$wimg" 0x2000 0x10 0x42
[ "$(dd if="$tmp/img" bs=1 skip=8192 count=16 2>/dev/null)" = "BBBBBBBBBBBBBBBB" ] \
    && ok "file: the fill reached the file" || bad "file: the fill reached the file"
expect "file: private fill stays private" 0 "" fill "file:addr=0,size=64K,path=$wimg,private" 0 0x10 0x43
[ "$(head -c 1 "$tmp/img")" = "A" ] && ok "file: private left the file alone" || bad "file: private left the file alone"
expect "file: create" 0 "" fill "file:addr=0,size=8K,path=Z:$tmp/new.img,create" 0 0x2000 0x44
[ "$(stat -c %s "$tmp/new.img" 2>/dev/null)" = 8192 ] && ok "file: create made an 8 KiB file" || bad "file: create made an 8 KiB file"
same "checksum: file image" checksum "file:addr=0,size=8K,path=$tmp/new.img,prot=r" 0 0x2000 2>/dev/null || true
printf 'kernel' >"$tmp/blob"
expect "load: a blob into a file region" 0 "" load "file:addr=0,size=8K,path=Z:$tmp/new.img" "Z:$tmp/blob" 0x100
[ "$(dd if="$tmp/new.img" bs=1 skip=256 count=6 2>/dev/null)" = kernel ] && ok "load: bytes landed" || bad "load: bytes landed"

echo "== example programs"
for e in "$win"/examples/*.exe; do
    if wine "$e" >"$tmp/e.out" 2>&1; then ok "examples/$(basename "$e")"
    else bad "examples/$(basename "$e")"; head -5 "$tmp/e.out"; fi
done
echo "windows: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
