#!/bin/bash
# Run each libFuzzer target for a bounded time; fail on any crash, leak,
# sanitizer report, failed model check or timeout.
#
#   fuzz/run.sh                  all targets, FUZZ_SECONDS (default 60) each
#   fuzz/run.sh fuzz_access      one target
#   FUZZ_SECONDS=600 fuzz/run.sh
#
# Builds the fuzzers first (`scons -Q fuzz`, which needs clang and
# libclang-rt; tools/deps-hardening.sh installs them) unless FUZZ_NO_BUILD=1.
# Seeds: fuzz/corpus/<target>/ (read only); what a run finds goes to
# build/fuzz/work/<target>/; crash inputs are saved as
# fuzz/crashes/<target>-crash-<sha1> (reproduce: build/fuzz/<target> FILE).
# Prints "<target>: N executions in S s" per target and a closing line.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_access fuzz_vhost)

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    scons -Q fuzz >build/fuzz-build.log 2>&1 || { cat build/fuzz-build.log; echo "fuzz: build failed"; exit 1; }
fi
export VMMEM_PLUGIN_PATH=${VMMEM_PLUGIN_PATH:-$PWD/build/release/plugins}
# Leaks are checked per input; report UB with a stack and stop at the first.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p fuzz/crashes build/fuzz/work

failed=()
for t in "${targets[@]}"; do
    bin=build/fuzz/$t
    [ -x "$bin" ] || { echo "fuzz: $bin is missing"; failed+=("$t(missing)"); continue; }
    mkdir -p "build/fuzz/work/$t" "fuzz/corpus/$t"
    args=(-max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=4096
          -artifact_prefix="fuzz/crashes/$t-")
    [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
    log=build/fuzz/$t.log
    "$bin" "${args[@]}" "build/fuzz/work/$t" "fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    echo "$t: ${execs:-?} executions in ${secs} s (${cov:-no coverage line}), exit $rc"
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        echo "---- $t: last lines of $log"
        tail -40 "$log"
        ls -1 fuzz/crashes/"$t"-* 2>/dev/null | sed 's/^/saved: /'
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs} s each, no crash"
