#!/usr/bin/env bash
# `make bench`: build the release binary and the bench test binary (tests/bench_tough.rs),
# generate the three benchmark repositories once into bench-out/ (regenerated when missing or
# incomplete) with python-tuf, then print one table: conclave verify, python-tuf 7.0.1, tough
# 0.24 and the floor on the same files (tests/bench/compare.py).
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
BENCH_TEST=$("$CARGO" test --release --locked --test bench_tough --no-run --message-format=json \
  | "$PY" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "bench_tough":
        print(m["executable"])')

mkdir -p "$OUT"
# (name, arguments of make_bench_repo.py)
for spec in "root-chain:--root-versions 30 --targets 10" \
            "targets:--root-versions 1 --targets 100000" \
            "delegations:--root-versions 1 --targets 10 --delegated-roles 1000"; do
  name=${spec%%:*}
  if [ ! -f "$OUT/$name/bench.json" ]; then
    echo "bench: generating $OUT/$name (${spec#*:}) with python-tuf..."
    rm -rf "$OUT/$name" "$OUT/$name.tmp"
    # shellcheck disable=SC2086
    "$PY" tests/python/make_bench_repo.py "$OUT/$name.tmp" ${spec#*:} >/dev/null
    mv "$OUT/$name.tmp" "$OUT/$name"
  fi
done

exec "$PY" tests/bench/compare.py --conclave "$BIN" --bench-test "$BENCH_TEST" \
  --bench-root "$OUT" --runs "$RUNS"
