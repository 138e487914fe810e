#!/usr/bin/env python3
"""Time `conclave verify` and python-tuf on the benchmark repository; print both and the ratio.

Usage: compare.py --conclave BIN --bench-dir DIR [--runs 3]

DIR is what tests/python/make_bench_repo.py wrote (DIR/metadata, DIR/bench.json). Each tool runs
--runs times as a child process; wall time is measured around the process (start-up included)
and peak RSS is the child's own ru_maxrss from os.wait4. The best (lowest) wall time is reported,
with the peak RSS of all runs.

Commands timed:
  BIN verify --trusted-root DIR/metadata/1.root.json --repo DIR/metadata --at AT
  PYTHON tests/python/bench_verify.py (same arguments; PYTHON is this interpreter)

Before timing, a control run of `conclave verify --at 2100-01-01T00:00:00Z` (after every
expiry) must exit 1, or the timing would not be of a verifier. Exit status: 0 when both tools
accept the repository and the control is rejected, 1 otherwise, 2 on usage errors. The goals
(Conclave >= 10x faster than python-tuf, peak memory <= 3x the files) are reported, not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_VERIFY = os.path.join(HERE, "..", "python", "bench_verify.py")
AFTER_EXPIRY = "2100-01-01T00:00:00Z"


def run(cmd: list[str], timeout: float = 600) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise SystemExit(f"compare.py: {cmd[0]} ran longer than {timeout} s")
        time.sleep(0.002)
    seconds = time.perf_counter() - start
    out = proc.stdout.read().decode(errors="replace")
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "code": proc.returncode,
        "seconds": seconds,
        "rss": usage.ru_maxrss * 1024,
        "stdout": out,
        "stderr": err,
    }


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conclave", required=True)
    p.add_argument("--bench-dir", required=True)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    metadata = os.path.join(args.bench_dir, "metadata")
    with open(os.path.join(args.bench_dir, "bench.json")) as f:
        bench = json.load(f)
    at = bench["at"]
    files = bench["verified_bytes"]
    verify_args = ["--trusted-root", os.path.join(metadata, "1.root.json"), "--repo", metadata]
    conclave = [args.conclave, "verify", *verify_args]
    python = [sys.executable, BENCH_VERIFY, *verify_args]

    print(
        f"bench repository: {bench['root_versions']} root versions, {bench['targets']} targets, "
        f"{mb(files)} of metadata verified ({mb(bench['total_bytes'])} on disk), --at {at}"
    )
    ok = True
    control = run([*conclave, "--at", AFTER_EXPIRY])
    if control["code"] != 1:
        ok = False
        print(
            f"CONTROL FAILED: conclave verify --at {AFTER_EXPIRY} (after every expiry) exited "
            f"{control['code']}, expected 1; its timings below say nothing about verification.\n"
            f"  stderr: {control['stderr'].strip()[:500]}"
        )

    results = {}
    for name, cmd in (("conclave verify", conclave), ("python-tuf 7.0.1", python)):
        runs = [run([*cmd, "--at", at]) for _ in range(args.runs)]
        bad = [r for r in runs if r["code"] != 0]
        if bad:
            ok = False
            print(
                f"{name}: exit {bad[0]['code']} (expected 0 on a valid repository)\n"
                f"  stderr: {bad[0]['stderr'].strip()[:500]}"
            )
        best = min(r["seconds"] for r in runs)
        rss = max(r["rss"] for r in runs)
        results[name] = (best, rss)
        extra = ""
        if name.startswith("python-tuf") and not bad:
            inner = min(json.loads(r["stdout"])["seconds"] for r in runs)
            extra = f" (verification alone: best {inner:.3f} s after imports)"
        print(
            f"{name:17}: best of {args.runs} {best:.3f} s{extra}, peak RSS {mb(rss)} "
            f"= {rss / files:.2f}x the files"
        )
    (c_time, c_rss), (p_time, _) = results["conclave verify"], results["python-tuf 7.0.1"]
    ratio = p_time / c_time if c_time > 0 else float("inf")
    print(f"ratio: conclave is {ratio:.1f}x faster than python-tuf (wall, start-up included)")
    if not ok:
        print("goals: not evaluated (see the failures above)")
    else:
        print(
            f"goals: >= 10x faster: {'met' if ratio >= 10 else 'NOT met'}; "
            f"peak memory <= 3x files: {'met' if c_rss <= 3 * files else 'NOT met'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
