#!/usr/bin/env bash
# Fuzzes the request decoder and the link template parser for a bounded
# time each (default 60 seconds): scripts/fuzz.sh [seconds]
#
# Needs cargo-fuzz (cargo install cargo-fuzz). Runs without a sanitizer so
# the machine's stable toolchain suffices. A crash stops the run and leaves
# its input in fuzz/artifacts/<target>/; turn it into a regression test
# beside the code it broke (see shared/src/link_request.rs and
# shared/src/link_template.rs) before fixing it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PASSLINK_ROOT/fuzz"

seconds=${1:-60}
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is missing: cargo install cargo-fuzz"

for target in request_decoder link_template; do
  say "fuzzing $target for ${seconds}s"
  mkdir -p "corpus/$target"
  cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ +(DONE|INITED)|stat::number_of_executed_units|==|SUMMARY|Test unit written)" || true
  if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
    die "$target crashed; inputs in fuzz/artifacts/$target/"
  fi
done
say "no crashes"
