#!/usr/bin/env bash
# Draw bench/chart.png from the output of bench/compare.sh (ratios.dat):
# per scenario, C/Rust and C/limit (ns per op, lower is better) on a log
# scale, with the issue-8 target (C/Rust) and the issue-14/18 goal (C/limit)
# of each scenario as markers.
#
#   bench/chart.sh [ratios.dat] [out.png]
# Needs gnuplot (Debian: gnuplot-nox), installed when missing unless NO_INSTALL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
dat=${1:-$root/build/bench-compare/ratios.dat}
png=${2:-$here/chart.png}
[ -f "$dat" ] || { echo "chart: no $dat; run bench/compare.sh first" >&2; exit 1; }
if ! command -v gnuplot >/dev/null 2>&1; then
    [ -z "${NO_INSTALL:-}" ] || { echo "chart: gnuplot missing" >&2; exit 1; }
    apt-get install -y gnuplot-nox >&2
fi
title="libvmmem vs vm-memory 0.10: median per-pair ratio of ns/op (lower is better)"
hdr=$root/build/bench-compare/header.txt
sub=""
[ -f "$hdr" ] && sub=$(sed -n 's/^# machine: //p' "$hdr" | head -1)

gnuplot <<EOF
set terminal pngcairo size 1200,620 noenhanced font "sans,10"
set output "$png"
set title "$title\n$sub"
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.0625:32]
set ytics ("1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32)
set grid ytics
set xtics rotate by -35 nomirror
set key top left
set datafile missing "-"
set ylabel "ratio (C time / other time)"
plot "$dat" using 2:xtic(1) title "C / Rust" lc rgb "#3366cc", \
     "" using 3 title "C (static lib) / Rust" lc rgb "#88aaee", \
     "" using 4 title "C / raw-pointer limit" lc rgb "#dd7733", \
     "" using (\$0):5 with points pt 9 ps 2 lc rgb "#cc0000" title "target C/Rust (at most)", \
     "" using (\$0+0.3):6 with points pt 11 ps 2 lc rgb "#663300" title "goal C/limit (at most)", \
     1 with lines dt 2 lc rgb "black" notitle
EOF
echo "chart: wrote $png" >&2
