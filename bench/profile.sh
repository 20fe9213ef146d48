#!/usr/bin/env bash
# Instructions per operation, C against Rust, with valgrind's callgrind: the
# count does not depend on machine noise.  Each scenario runs twice with 1
# repetition and two iteration counts; the difference of the two totals,
# divided by the difference of the counts, is the cost of one loop iteration
# (setup, fill and checksum cancel out).  Needs the builds made by
# bench/compare.sh.  Also writes a callgrind profile of the larger C run of
# each scenario to build/bench-compare/callgrind.<scenario>.c for
# callgrind_annotate.
#
#   bench/profile.sh [scenario ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${OUT:-$root/build/bench-compare}
c_bin=${C_BIN:-$root/build/release/bench/vmmem-bench}
rust_bin=$root/build/rust-anchor/release/vmm-anchor-bench
export VMMEM_PLUGIN_PATH=$root/build/release/plugins
command -v valgrind >/dev/null || apt-get install -y valgrind >&2
mkdir -p "$out"

scen=("$@")
[ ${#scen[@]} -gt 0 ] || scen=(write_obj_u64 read_obj_u64 cross_region_64 find_region_many
                               dirty_mark load_store_atomic_u32)

total_ir() { # file -> total Ir
    sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$1" | head -1
}
count() { # prog scenario iters outfile
    valgrind --tool=callgrind --callgrind-out-file="$4" "$1" "$2" "$3" 1 >/dev/null 2>&1
    total_ir "$4"
}

printf '%-24s %10s %10s %8s\n' scenario C_Ir/op Rust_Ir/op C/Rust
for s in "${scen[@]}"; do
    n1=100000 n2=200000
    case $s in dirty_mark) n1=10000 n2=19999 ;; esac  # one dirty_scan pass in both runs
    c1=$(count "$c_bin" "$s" $n1 "$out/cg.tmp")
    c2=$(count "$c_bin" "$s" $n2 "$out/callgrind.$s.c")
    r1=$(count "$rust_bin" "$s" $n1 "$out/cg.tmp")
    r2=$(count "$rust_bin" "$s" $n2 "$out/callgrind.$s.rust")
    awk -v s="$s" -v c1="$c1" -v c2="$c2" -v r1="$r1" -v r2="$r2" -v d=$((n2 - n1)) \
        'BEGIN { c = (c2 - c1) / d; r = (r2 - r1) / d;
                 printf "%-24s %10.1f %10.1f %8.2f\n", s, c, r, c / r }'
done
rm -f "$out/cg.tmp"
echo "(load_store_atomic_u32 counts one store plus one load per iteration;" \
     "dirty_mark counts one marked write_obj)"
