#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets (cargo fuzz, libFuzzer), writes the seed corpus from
# tests/data and ceremony-scripts, then runs each target for FUZZ_SECONDS (default 60) and
# prints one line per target: executions, coverage, corpus size, crashes.
# FUZZ_TARGETS="metadata key" limits the run; FUZZ_WORK is where corpora, logs and crash
# inputs go (default $CARGO_TARGET_DIR/fuzz-work, else target/fuzz-work).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-metadata canonical key repository repository_signed script transcript qr_frames qr_png bundle}
work=${FUZZ_WORK:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz-work}
cargo=${CARGO:-cargo}

if ! $cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  $cargo install cargo-fuzz --locked
fi
# cargo fuzz passes nightly-only -Z flags to rustc (sanitizer coverage); the stable toolchain
# accepts them when RUSTC_BOOTSTRAP=1. No sanitizer: Conclave forbids unsafe code, and the
# build runs about twice as many executions per second without AddressSanitizer; debug
# assertions and overflow checks stay on (cargo fuzz's default).
export RUSTC_BOOTSTRAP=1
opts=(--fuzz-dir tests/fuzz -s none)
$cargo fuzz build "${opts[@]}"
rm -rf "$work/seeds"
$cargo run -q --locked --manifest-path tests/fuzz/Cargo.toml --example seeds -- . "$work/seeds"

status=0
summary=()
for t in $targets; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t" "$work/seeds/$t"
  log="$work/$t.log"
  echo "== fuzz $t for ${seconds}s (log: $log)"
  if $cargo fuzz run "${opts[@]}" "$t" "$work/corpus/$t" "$work/seeds/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED: $(ls "$work/artifacts/$t" | tr '\n' ' ')"
    status=1
    grep -m1 -A2 -E "panicked at|ERROR: libFuzzer" "$log" | cut -c1-400 || true
  fi
  execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  corpus=$(ls "$work/corpus/$t" | wc -l)
  summary+=("$(printf '%-18s %12s execs  cov %6s  corpus %6s  %s' "$t" "${execs:-?}" "${cov:-?}" "$corpus" "$result")")
done
echo
echo "fuzz summary (${seconds}s per target; corpora in $work/corpus):"
printf '%s\n' "${summary[@]}"
exit $status
