#!/usr/bin/env bash
# Runs one libFuzzer target of tests/fuzz/ for a while:  tests/fuzz/run.sh TARGET SECONDS
# The committed seeds (tests/fuzz/corpus/TARGET) are read, never written: what the run finds
# goes to build/fuzz/corpus/TARGET, and a crashing input to build/fuzz/artifacts/TARGET-*.
# Exit status 0 when the target ran clean for SECONDS, non-zero after a crash, leak, timeout
# or a broken invariant (the target aborts); the last lines of its output say which.
set -euo pipefail
cd "$(dirname "$0")/../.."
t=${1:?target} secs=${2:-60}
bin=build/fuzz/bin/$t
[ -x "$bin" ] || { echo "$bin is not built (make fuzz-build)" >&2; exit 2; }
mkdir -p "build/fuzz/corpus/$t" build/fuzz/artifacts
seeds=tests/fuzz/corpus/$t
[ -d "$seeds" ] || { echo "no seed corpus $seeds" >&2; exit 2; }
dict=()
[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$t-" "${dict[@]}" \
    "build/fuzz/corpus/$t" "$seeds"
