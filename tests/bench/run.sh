#!/usr/bin/env bash
# `make bench`: build the release binary, generate the benchmark repository once into bench-out/
# (regenerated when missing or incomplete), then time `conclave verify` against python-tuf 7.0.1
# on the same files (tests/bench/compare.py prints both, the ratio, and peak memory vs file size).
# Environment: CONCLAVE_PYTHON (default .venv/bin/python), CARGO, CARGO_TARGET_DIR, BENCH_OUT,
# BENCH_RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."

PY="${CONCLAVE_PYTHON:-.venv/bin/python}"
CARGO="${CARGO:-cargo}"
OUT="${BENCH_OUT:-bench-out}"
RUNS="${BENCH_RUNS:-3}"
BIN="${CARGO_TARGET_DIR:-target}/release/conclave"

if ! "$PY" -c 'import tuf' 2>/dev/null; then
  echo "bench: no python-tuf at $PY: run 'make venv' or set CONCLAVE_PYTHON" >&2
  exit 2
fi

"$CARGO" build --release --locked --bin conclave

if [ ! -f "$OUT/bench.json" ]; then
  echo "bench: generating $OUT (30 root versions, 100,000 targets) with python-tuf..."
  rm -rf "$OUT"
  rm -rf "$OUT.tmp"
  "$PY" tests/python/make_bench_repo.py "$OUT.tmp" >/dev/null
  mv "$OUT.tmp" "$OUT"
fi

exec "$PY" tests/bench/compare.py --conclave "$BIN" --bench-dir "$OUT" --runs "$RUNS"
