#!/usr/bin/env bash
# Before a release: every fuzz target for at least FUZZ_RELEASE_SECONDS (default 600 = 10 min)
# under AddressSanitizer, which also checks the unsafe code inside dependencies (x509-parser,
# roxmltree, base64, ...). Needs only the stable toolchain: RUSTC_BOOTSTRAP=1 is set on the
# cargo-fuzz command lines only (never exported; see fuzz/README.md).
#
#   bash scripts/fuzz-release.sh                 # all targets, 10 min each, 2 workers each
#   FUZZ_RELEASE_SECONDS=3600 bash scripts/fuzz-release.sh cert_facts iis_import
#
# New inputs accumulate in fuzz/work/<target> (ignored by git); refresh the committed seeds from
# it with `cargo fuzz cmin` (fuzz/README.md). Exits non-zero on the first crash, leak or timeout;
# the input is in fuzz/artifacts/<target>/ and becomes a regression (fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_RELEASE_SECONDS:-600}
workers=${FUZZ_RELEASE_WORKERS:-2}
flags=(--codegen-units 16 --target-dir fuzz/target/asan)
command -v cc >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 --no-install-recommends build-essential
}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
RUSTC_BOOTSTRAP=1 cargo fuzz build "${flags[@]}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/corpus/$t" "fuzz/regressions/$t"
  extra=()
  [ -f "fuzz/$t.dict" ] && extra+=("-dict=fuzz/$t.dict")
  if [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz run "${flags[@]}" "$t" "fuzz/regressions/$t" -- -runs=0
  fi
  echo "== $t: ${secs}s, ${workers} workers, ASan"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "${flags[@]}" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -fork="$workers" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${extra[@]}"
done
echo "fuzz-release: ${#targets[@]} target(s) ran ${secs}s each without a crash"
