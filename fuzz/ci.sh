#!/usr/bin/env bash
# CI smoke for the fuzz targets: build every target without a sanitizer (stable toolchain), replay
# the committed regressions, then fuzz each target for FUZZ_SECONDS (default 20) starting from
# its committed seeds. Exits non-zero on any crash; the crashing input is in
# fuzz/artifacts/<target>/. New inputs go to a scratch directory, so the seeds stay as committed.
# The random seed is fixed (FUZZ_SEED, default 1) so a CI run explores the same inputs that were
# checked before the commit; exploring new ground is the job of scripts/fuzz-release.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-20}
flags=(-s none --codegen-units 16 --target-dir fuzz/target/none)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
start=$SECONDS
cargo fuzz build "${flags[@]}"
echo "fuzz: build took $((SECONDS - start)) s"
for t in $(cargo fuzz list); do
  mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
  extra=()
  [ -f "fuzz/$t.dict" ] && extra+=("-dict=fuzz/$t.dict")
  if [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
    cargo fuzz run "${flags[@]}" "$t" "fuzz/regressions/$t" -- -runs=0
  fi
  work=$(mktemp -d)
  log="$work.log"
  if cargo fuzz run "${flags[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
    -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
    >"$log" 2>&1; then
    echo "fuzz: $t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs, no crash"
    rm -rf "$work" "$log"
  else
    tail -n 60 "$log" >&2
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: all targets passed in $((SECONDS - start)) s"
