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
limit_src=${VMMEM_SHARED_DIR:-$root/../shared}/bench/limit/limit.c
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

# The limit program runs fixed counts; a copy of it whose timed loops take
# their counts from LN0..LN6 (in source order: write, read, cross, find,
# dirty_mark, store, load; unset = 0) is counted the same way, one loop at
# a time.  Its loop bodies are untouched; each loop runs 5 repetitions.
limit_bin=$out/limit-counted
python3 - "$limit_src" "$limit_bin.c" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
k = 0
def per_loop(m):
    global k
    k += 1
    return 'i < ln%d' % (k - 1)
out = re.sub(r'i < (n|5000000)(?=;)', per_loop, src)
assert k == 7, k
env = ''.join('const uint64_t ln%d = getenv("LN%d") ? strtoull(getenv("LN%d"), NULL, 0) : 0;\n'
              % (j, j, j) for j in range(7))
out = out.replace('int main(void) {\n', 'int main(void) {\n' + env, 1)
open(sys.argv[2], 'w').write(out)
PY
gcc -std=gnu11 -O2 -o "$limit_bin" "$limit_bin.c"
limit_loops() { # scenario -> loop indices in the limit program
    case $1 in
    write_obj_u64) echo 0 ;; read_obj_u64) echo 1 ;; cross_region_64) echo 2 ;;
    find_region_many) echo 3 ;; dirty_mark) echo 4 ;; load_store_atomic_u32) echo 5 6 ;;
    esac
}
count_limit() { # loop iters -> total Ir
    env "LN$1=$2" valgrind --tool=callgrind --callgrind-out-file="$out/cg.tmp" "$limit_bin" \
        >/dev/null 2>&1
    total_ir "$out/cg.tmp"
}

printf '%-24s %10s %10s %10s %8s %8s\n' scenario C_Ir/op Rust_Ir/op limit_Ir/op C/Rust C/limit
for s in "${scen[@]}"; do
    n1=100000 n2=200000
    case $s in dirty_mark) n1=10000 n2=19999 ;; esac  # one dirty_scan pass in both runs
    c1=$(count "$c_bin" "$s" $n1 "$out/cg.tmp")
    c2=$(count "$c_bin" "$s" $n2 "$out/callgrind.$s.c")
    r1=$(count "$rust_bin" "$s" $n1 "$out/cg.tmp")
    r2=$(count "$rust_bin" "$s" $n2 "$out/callgrind.$s.rust")
    # The limit: 5 repetitions of each loop, m1 and 2 * m1 iterations.  Its
    # dirty_scan loop pops every dirty bit, so dirty_mark runs enough writes
    # to dirty every page in both runs (the count is then the loop's alone:
    # a write to a page already dirty, the steady state).
    l=0 m1=10000
    [ "$s" = dirty_mark ] && m1=1000000
    for k in $(limit_loops "$s"); do
        l1=$(count_limit "$k" $m1)
        l2=$(count_limit "$k" $((2 * m1)))
        l=$(awk -v l="$l" -v a="$l1" -v b="$l2" -v d=$((5 * m1)) \
            'BEGIN { printf "%.3f", l + (b - a) / d }')
    done
    awk -v s="$s" -v c1="$c1" -v c2="$c2" -v r1="$r1" -v r2="$r2" -v d=$((n2 - n1)) -v l="$l" \
        'BEGIN { c = (c2 - c1) / d; r = (r2 - r1) / d;
                 printf "%-24s %10.1f %10.1f %10.1f %8.2f %8s\n", s, c, r, l, c / r,
                        (l > 0 ? sprintf("%.2f", c / l) : "-") }'
done
rm -f "$out/cg.tmp"
echo "(load_store_atomic_u32 counts one store plus one load per iteration;" \
     "dirty_mark counts one marked write_obj: for C and Rust over 10000 writes," \
     "most of them the first to their page; for the limit a page already dirty)"
