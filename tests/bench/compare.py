#!/usr/bin/env python3
"""`make bench`: one table from one run: conclave verify, python-tuf 7, tough and the floor on
the same generated repositories.

Usage: compare.py --conclave BIN --bench-test BIN --bench-root DIR [--runs 3]

DIR holds the repositories tests/bench/run.sh generated with tests/python/make_bench_repo.py:
  root-chain    (a) a 30-version root chain (keys and thresholds change at every version)
  targets       (b) one targets.json with 100,000 targets
  delegations   (c) 1,000 delegated roles of 10 targets each
each with DIR/NAME/metadata and DIR/NAME/bench.json. For each, every tool runs --runs times as a
child process; wall time is measured around the process (start-up included). Peak RSS comes
from one more run under GNU time (`/usr/bin/time -f %M`): Linux starts an exec'd child's
ru_maxrss at the RSS of the process that forked it, so os.wait4 from this Python process (about
13 MB) would report at least 13 MB for any tool; GNU time's own RSS, under 3 MB, is the floor of
the figures here instead. The best wall time and that peak RSS are reported.

Tools (all verify everything: root chain, timestamp, snapshot, targets, delegated roles):
  conclave verify   BIN verify --trusted-root DIR/metadata/1.root.json --repo DIR/metadata --at AT
  python-tuf 7.0.1  tests/python/bench_verify.py (ngclient's TrustedMetadataSet, same arguments)
  tough 0.24        BENCH_TEST tough_child (tests/bench_tough.rs, in a process of its own)
  floor             BENCH_TEST floor_child: SHA-256 of every byte plus one signature check per
                    signature, timed inside the process (no start-up, no parsing)

Before timing, a control run of `conclave verify --at 2100-01-01T00:00:00Z` (after every
expiry) must exit 1 on each repository, or the timing would not be of a verifier. The goals
(Conclave >= 10x faster than python-tuf and tough, within 3x of the floor, peak memory <= 3x the
files) are reported, not enforced. Exit status: 0 when every tool accepts every repository and
the controls are rejected, 1 otherwise, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_VERIFY = os.path.join(HERE, "..", "python", "bench_verify.py")
AFTER_EXPIRY = "2100-01-01T00:00:00Z"
SCENARIOS = [
    ("root-chain", "(a) 30-version root chain"),
    ("targets", "(b) 100,000 targets"),
    ("delegations", "(c) 1,000 delegated roles"),
]


def run(cmd: list[str], env: dict | None = None, timeout: float = 900) -> dict:
    # Output goes to files, not pipes: a verifier printing more than a pipe holds (1,000 roles)
    # would block on a pipe nobody reads while we wait for it.
    out_f, err_f = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env={**os.environ, **(env or {})})
    # A blocking wait, so the time is taken the moment the process ends (polling every
    # millisecond added up to a millisecond to every run); a timer kills a process that hangs.
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise SystemExit(f"compare.py: {cmd[0]} ran longer than {timeout} s")
    seconds = time.perf_counter() - start
    out_f.seek(0)
    err_f.seek(0)
    out = out_f.read().decode(errors="replace")
    err = err_f.read().decode(errors="replace")
    out_f.close()
    err_f.close()
    return {
        "code": os.waitstatus_to_exitcode(status),
        "seconds": seconds,
        "rss": usage.ru_maxrss * 1024,
        "stdout": out,
        "stderr": err,
    }


def bench_line(stdout: str) -> dict:
    # The test harness prints "test NAME ... " on the same line before the test's output.
    for line in stdout.splitlines():
        if "BENCH {" in line:
            return json.loads(line[line.index("BENCH {") + len("BENCH ") :])
    raise ValueError("no BENCH line")


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


GNU_TIME = "/usr/bin/time"


def peak_rss(cmd: list[str], env: dict | None = None) -> int:
    """Peak RSS in bytes of one run of `cmd`, measured by GNU time (see the module doc)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        r = run([GNU_TIME, "-f", "%M", "-o", f.name, *cmd], env)
        if r["code"] != 0:
            raise SystemExit(f"compare.py: {cmd[0]} failed under {GNU_TIME}: exit {r['code']}")
        return int(f.read().strip().splitlines()[-1]) * 1024


def measure(name: str, cmd: list[str], runs: int, env: dict | None = None) -> dict:
    results = [run(cmd, env) for _ in range(runs)]
    bad = [r for r in results if r["code"] != 0]
    if bad:
        return {"error": f"exit {bad[0]['code']}: {(bad[0]['stderr'] + bad[0]['stdout']).strip()[-600:]}"}
    out = {"seconds": min(r["seconds"] for r in results), "rss": peak_rss(cmd, env)}
    if name == "floor":
        line = bench_line(results[0]["stdout"])
        out["seconds"] = line["seconds"]
        out["signatures"] = line["signatures"]
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conclave", required=True)
    p.add_argument("--bench-test", required=True)
    p.add_argument("--bench-root", required=True)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    ok = True
    rows = []
    goals = []
    if not os.access(GNU_TIME, os.X_OK):
        print(f"compare.py: {GNU_TIME} (Debian package time) is needed for peak RSS", file=sys.stderr)
        return 2
    baseline = peak_rss([args.conclave, "--version"])
    for key, title in SCENARIOS:
        repo = os.path.abspath(os.path.join(args.bench_root, key))
        metadata = os.path.join(repo, "metadata")
        with open(os.path.join(repo, "bench.json")) as f:
            bench = json.load(f)
        files = bench["verified_bytes"]
        verify_args = ["--trusted-root", os.path.join(metadata, "1.root.json"), "--repo", metadata]
        control = run([args.conclave, "verify", *verify_args, "--at", AFTER_EXPIRY])
        if control["code"] != 1:
            ok = False
            print(f"CONTROL FAILED on {key}: conclave verify --at {AFTER_EXPIRY} exited {control['code']}")
        child = [args.bench_test, "--ignored", "--exact", "--nocapture", "--test-threads=1"]
        tools = [
            ("conclave verify", [args.conclave, "verify", *verify_args, "--at", bench["at"]], None),
            ("python-tuf 7.0.1", [sys.executable, BENCH_VERIFY, *verify_args, "--at", bench["at"]], None),
            ("tough 0.24", [*child, "tough_child"], {"BENCH_REPO": repo}),
            ("floor", [*child, "floor_child"], {"BENCH_REPO": repo}),
        ]
        measured = {}
        for name, cmd, env in tools:
            m = measure(name, cmd, 1 if name == "floor" else args.runs, env)
            if "error" in m:
                ok = False
                print(f"{key}: {name}: {m['error']}")
            measured[name] = m
        rows.append((title, files, bench, measured))
        c = measured["conclave verify"]
        peers = {n: measured[n] for n in ("python-tuf 7.0.1", "tough 0.24") if "error" not in measured[n]}
        if "error" in c or "error" in measured["floor"] or not peers:
            goals.append(f"{title}: goals not evaluated (see the failures above)")
            continue
        fastest = min(peers, key=lambda n: peers[n]["seconds"])
        speedup = {n: peers[n]["seconds"] / c["seconds"] for n in peers}
        floor = c["seconds"] / measured["floor"]["seconds"]
        mem = c["rss"] / files
        goals.append(
            f"{title}: conclave is "
            + ", ".join(f"{speedup[n]:.1f}x faster than {n}" for n in peers)
            + f" (fastest peer: {fastest}); {floor:.1f}x the floor; peak RSS {mem:.1f}x the files "
            f"({(c['rss'] - baseline) / files:.1f}x above its {mb(baseline)} start-up). Goals: "
            f">=10x both peers {'met' if min(speedup.values()) >= 10 else 'NOT met'}; "
            f"<=3x floor {'met' if floor <= 3 else 'NOT met'}; "
            f"memory <=3x files {'met' if mem <= 3 else 'NOT met'}"
        )

    header = f"{'scenario':28} {'files':>9}  {'tool':17} {'time':>9} {'peak RSS':>10} {'RSS/files':>9} {'x conclave':>10} {'x floor':>8}"
    print(f"bench: best of {args.runs} runs per tool, wall time of the process (start-up included; "
          "the floor is timed inside its process); peak RSS of the process")
    print(header)
    print("-" * len(header))
    for title, files, bench, measured in rows:
        c = measured["conclave verify"].get("seconds")
        fl = measured["floor"].get("seconds")
        first = True
        for name, m in measured.items():
            label = name
            if name == "floor":
                label = f"floor ({m.get('signatures', '?')} sigs)"
            lead = f"{title:28} {mb(files):>9}" if first else f"{'':28} {'':>9}"
            first = False
            if "error" in m:
                print(f"{lead}  {label:17} {'FAILED':>9}")
                continue
            xc = f"{m['seconds'] / c:.2f}" if c else "-"
            xf = f"{m['seconds'] / fl:.1f}" if fl else "-"
            print(
                f"{lead}  {label:17} {m['seconds']:>8.3f}s {mb(m['rss']):>10} "
                f"{m['rss'] / files:>8.1f}x {xc:>10} {xf:>8}"
            )
    print()
    for g in goals:
        print(g)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
