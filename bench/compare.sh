#!/usr/bin/env bash
# Side-by-side comparison of libvmmem (bench/bench.c) with the Rust crate
# vm-memory 0.10 (../shared/bench/rust-anchor) and the raw-pointer limit
# (../shared/bench/limit/limit.c), on this machine, in one run.
#
#   bench/compare.sh [pairs]          # default 5 pairs, about 5 minutes on 2 cores
#
# Each pair runs the Rust harness, the C bench (shared and static library
# builds) and the limit program once, in alternating order (odd pairs C
# first, even pairs Rust first).  Per scenario it prints the median of the
# per-pair ratios C/Rust and C/limit (ns_per_op, lower is better) and marks
# the targets of issue 8.  The first pair uses the default iteration counts
# and its check= values are compared line by line with Rust's (they must be
# equal: SCENARIOS.md part D).
#
# Environment:
#   PAIRS=n                 pairs to run (default 5; at least 5 for a report)
#   ITERS=n                 iteration override for pairs 2.. (default: scenario defaults)
#   VMMEM_SHARED_DIR=dir    the shared folder (default: <repo>/../shared)
#   OUT=dir                 where outputs go (default: <repo>/build/bench-compare)
#   C_OPT="-O3 -flto"       instead of the scons -O2 build, compile core + bench into
#                           one program with these flags (no -march=native, ever)
#   NO_INSTALL=1            never apt-get install missing tools
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=${VMMEM_SHARED_DIR:-$root/../shared}
anchor=$shared/bench/rust-anchor
limit_src=$shared/bench/limit/limit.c
out=${OUT:-$root/build/bench-compare}
pairs=${PAIRS:-${1:-5}}
iters=${ITERS:--}
mkdir -p "$out"
log() { echo "compare: $*" >&2; }

[ -d "$anchor" ] || { log "no Rust harness at $anchor (set VMMEM_SHARED_DIR)"; exit 1; }

# ---- tools ----
need_apt=()
command -v cargo >/dev/null 2>&1 || need_apt+=(cargo)
[ -d /usr/share/cargo/registry/vm-memory-0.10.0 ] || need_apt+=(librust-vm-memory-dev)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v scons >/dev/null 2>&1 || need_apt+=(scons)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ -n "${NO_INSTALL:-}" ]; then
        log "missing: ${need_apt[*]} (NO_INSTALL is set)"; exit 1
    fi
    log "installing ${need_apt[*]}"
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2
fi

# ---- builds ----
log "building the Rust harness (offline, Debian's vm-memory 0.10)"
(cd "$anchor" && CARGO_TARGET_DIR="$root/build/rust-anchor" cargo build --release --offline -q)
rust_bin=$root/build/rust-anchor/release/vmm-anchor-bench

log "building the C bench"
(cd "$root" && scons -Q build/release/bench build/release/plugins build/release/tests/xensim >&2)
plugdir=$root/build/release/plugins
if [ -n "${C_OPT:-}" ]; then
    case " $C_OPT " in *march=native*|*mtune=native*) log "no -march=native: parity with Rust"; exit 1;; esac
    cb=$out/cbuild
    mkdir -p "$cb"
    # no -Werror here: -flto moves some warnings across files the bench does not own
    cflags=(-std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
            -fno-strict-aliasing -fvisibility=hidden -pthread -D_GNU_SOURCE -I"$root/include")
    # shellcheck disable=SC2206
    opt=($C_OPT)
    gcc "${cflags[@]}" "${opt[@]}" -DVMMEM_BUILDING=1 -I"$root/core" \
        "$root"/core/*.c "$root/bench/bench.c" -falign-loops=32 -o "$cb/vmmem-bench" -ldl -pthread
    c_bin=$cb/vmmem-bench
    cs_bin=$cb/vmmem-bench   # already one static program
    c_flags_desc="gcc $C_OPT, core and bench in one program"
else
    c_bin=$root/build/release/bench/vmmem-bench
    cs_bin=$root/build/release/bench/vmmem-bench-static
    c_flags_desc="scons release build (OPT=-O2 -g; bench linked to libvmmem.so, static column: libvmmem.a)"
fi
limit_bin=$out/limit
gcc -std=gnu11 -O2 -o "$limit_bin" "$limit_src"

# ---- runs ----
run_c()      { VMMEM_PLUGIN_PATH=$plugdir "$c_bin" all "$1" 2>/dev/null; }
run_cs()     { VMMEM_PLUGIN_PATH=$plugdir "$cs_bin" all "$1" 2>/dev/null; }
run_rust()   { "$rust_bin" all "$1" 2>/dev/null; }
run_limit()  { "$limit_bin"; }

t_start=$(date +%s)
for ((p = 1; p <= pairs; p++)); do
    it=$iters
    [ "$p" -eq 1 ] && it=-
    log "pair $p/$pairs (iters ${it})"
    if ((p % 2)); then
        run_c "$it" > "$out/c-$p.txt"; run_rust "$it" > "$out/rust-$p.txt"
        run_cs "$it" > "$out/cs-$p.txt"; run_limit > "$out/limit-$p.txt"
    else
        run_rust "$it" > "$out/rust-$p.txt"; run_c "$it" > "$out/c-$p.txt"
        run_limit > "$out/limit-$p.txt"; run_cs "$it" > "$out/cs-$p.txt"
    fi
done
log "C extra scenarios"
VMMEM_PLUGIN_PATH=$plugdir "$c_bin" extra > "$out/c-extra.txt" 2>/dev/null
# grant map-on-access runs under the Xen device simulator (tests/xensim)
LD_PRELOAD=$root/build/release/tests/xensim/xensim.so VMMEM_PLUGIN_PATH=$plugdir \
    "$c_bin" xen_grant >> "$out/c-extra.txt" 2>/dev/null
t_end=$(date +%s)

# ---- table ----
{
    echo "# command: bench/compare.sh (PAIRS=$pairs ITERS=$iters${C_OPT:+ C_OPT=\"$C_OPT\"})"
    echo "# C build: $c_flags_desc; Rust: cargo --release (opt-level 3, fat LTO, x86-64)"
    echo "# machine: nproc=$(nproc), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    echo "# runs took $((t_end - t_start)) s"
} > "$out/header.txt"

python3 - "$out" "$pairs" <<'EOF'
import os, re, statistics, sys

out, pairs = sys.argv[1], int(sys.argv[2])

def parse(path):
    d = {}
    for line in open(path):
        f = line.split()
        if not f or '=' in f[0]:
            continue
        kv = dict(x.split('=', 1) for x in f[1:] if '=' in x)
        if 'ns_per_op' in kv:
            d[f[0]] = kv
    return d

runs = []
for p in range(1, pairs + 1):
    runs.append({k: parse(os.path.join(out, '%s-%d.txt' % (k, p)))
                 for k in ('c', 'cs', 'rust', 'limit')})

# check= and dirty_pages= of the default-iteration pair must be identical.
bad = []
c1, r1 = runs[0]['c'], runs[0]['rust']
for name, kv in r1.items():
    for key in ('check', 'dirty_pages'):
        if key in kv and c1.get(name, {}).get(key) != kv[key]:
            bad.append('%s %s: C %s, Rust %s' % (name, key, c1.get(name, {}).get(key), kv[key]))
for name in runs[0]['cs']:
    for key in ('check', 'dirty_pages'):
        if key in r1.get(name, {}) and runs[0]['cs'][name].get(key) != r1[name][key]:
            bad.append('%s %s (static): differs' % (name, key))

targets = {
    'write_obj_u64': ('<=', 0.8), 'cross_region_64': ('<=', 0.8),
    'store_atomic_u32': ('<=', 0.8), 'read_obj_u64': ('<=', 1.0),
    'load_atomic_u32': ('<=', 1.0), 'read_slice_4k': ('<=', 1.0),
    'write_slice_4k': ('<=', 1.0), 'find_region_many': ('<=', 0.7),
    'dirty_mark': ('<=', 0.6), 'dirty_scan': ('<=', 0.5),
    'dirty_get_and_reset': ('<=', 1.0),
}
# the raw-pointer-limit goals: issue 14 (untracked write_obj) and issue 18
limit_goals = {
    'write_obj_u64': 1.05, 'read_obj_u64': 1.3, 'load_atomic_u32': 1.3,
    'store_atomic_u32': 1.3, 'dirty_mark': 1.3, 'cross_region_64': 2.0,
}
order = ['write_obj_u64', 'read_obj_u64', 'write_slice_4k', 'read_slice_4k', 'cross_region_64',
         'memcpy_1m', 'baseline_memcpy_1m', 'find_region_many', 'dirty_mark', 'dirty_scan',
         'dirty_get_and_reset', 'store_atomic_u32', 'load_atomic_u32']

def ns(run, prog, name):
    v = run[prog].get(name)
    return float(v['ns_per_op']) if v else None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def ratio(a, b):
    return a / b if a is not None and b else None

def fmt(x, nd=3):
    return '-' if x is None else ('%.*f' % (nd, x))

rows, dat = [], []
for name in order:
    c = [ns(r, 'c', name) for r in runs]
    rs = [ns(r, 'rust', name) for r in runs]
    cs = [ns(r, 'cs', name) for r in runs]
    li = [ns(r, 'limit', name) for r in runs]
    cr = med([ratio(a, b) for a, b in zip(c, rs)])
    csr = med([ratio(a, b) for a, b in zip(cs, rs)])
    cl = med([ratio(a, b) for a, b in zip(c, li)])
    tgt, met = '-', '-'
    if name in targets:
        op, v = targets[name]
        tgt = '%s %.1f' % (op, v)
        met = 'met' if cr is not None and cr <= v else 'MISSED'
    if name == 'memcpy_1m':
        # throughput of memcpy_1m as a fraction of the plain-memcpy baseline, same C run
        frac = med([ratio(ns(r, 'c', 'baseline_memcpy_1m'), ns(r, 'c', 'memcpy_1m')) for r in runs])
        tgt = '>= 0.95 of baseline (got %.3f)' % frac
        met = 'met' if frac >= 0.95 else 'MISSED'
    lg, lmet = limit_goals.get(name), '-'
    if lg is not None:
        lmet = 'met' if cl is not None and cl <= lg else 'MISSED'
    rows.append((name, fmt(med(rs), 2), fmt(med(c), 2), fmt(cr), fmt(csr), fmt(med(li), 2),
                 fmt(cl), tgt, met, '-' if lg is None else '<= %.2f' % lg, lmet))
    dat.append((name, cr, csr, cl, targets.get(name, (None, None))[1], lg))

hdr = ('scenario', 'Rust ns/op', 'C ns/op', 'C/Rust', 'C static/Rust', 'limit ns/op', 'C/limit',
       'target (C/Rust)', 'status', 'goal (C/limit)', 'status (limit)')
lines = ['| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
lines.append('')
lines.append('ns/op columns: medians over the pairs of each program\'s best-of-5 figure; '
             'ratios: median of the per-pair ratios.')
lines.append('checks (pair 1, default iterations): ' +
             ('all check= and dirty_pages= values equal to Rust\'s' if not bad
              else 'MISMATCH: ' + '; '.join(bad)))

extra = os.path.join(out, 'c-extra.txt')
if os.path.exists(extra):
    lines.append('')
    lines.append('C-only scenarios (one run of `vmmem-bench extra`):')
    lines.append('```')
    lines += [l.rstrip() for l in open(extra) if l.strip()]
    lines.append('```')

header = open(os.path.join(out, 'header.txt')).read().rstrip()
text = header + '\n\n' + '\n'.join(lines) + '\n'
open(os.path.join(out, 'ratios.md'), 'w').write(text)
with open(os.path.join(out, 'ratios.dat'), 'w') as f:
    f.write('# scenario c_over_rust cstatic_over_rust c_over_limit target limit_goal\n')
    for name, cr, csr, cl, t, lg in dat:
        f.write('%s %s %s %s %s %s\n' % (name, fmt(cr, 4), fmt(csr, 4), fmt(cl, 4),
                                          '-' if t is None else t, '-' if lg is None else lg))
print(text, end='')
sys.exit(1 if bad else 0)
EOF
