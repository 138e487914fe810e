#!/usr/bin/env python3
"""Signatures per second through SoftHSM2: `conclave sign` next to `pkcs11-tool --sign`.

Usage: token_bench.py --conclave BIN [--runs 40] [--module /usr/lib/softhsm/libsofthsm2.so]
                      [--tmpdir DIR]

Standard library only. Makes practice tokens in a temporary directory (one per key type,
`conclave token init-practice`), a root naming the three keys for the targets role, and one
targets file per key type (so each run signs a file holding only that key's signature, as
pkcs11-tool signs the same bytes every time). Then, for each key type, it runs RUNS rounds; each
round runs one process of each tool, one signature per process, alternating which goes first:

  conclave:    BIN sign --token T --key T --in targets-T.json --out targets-T.json
                   --trusted-root root.json --pin-stdin
               (load module, find token and key, check the trusted root and that its targets
                role names the key, login, sign, verify the signature in software, count the
                role's signatures in the output as written (the new one, already verified, by
                its key material and exact bytes; any others are verified), write the file
                atomically: temporary file, fsync, rename, fsync of the directory)
  pkcs11-tool: pkcs11-tool --module M --token-label T --login --pin P --sign -m MECH
                   --label T -i IN -o OUT
               (load module, login, sign, write the signature without fsync; IN is the canonical
                bytes of `signed` for Ed25519 and their SHA-256 / SHA-384 digest for ECDSA,
                which is what Conclave sends the token)

Both tools therefore do the same session handling: one module load, one login, one C_Sign per
process. Wall time and CPU time (user + system, from the child's rusage) are taken around each
process; the medians are reported, as signatures per second (1 / median wall time) and as
Conclave's overhead over pkcs11-tool in percent (goal: below 20%; reported, not enforced).
The files live in --tmpdir (default: the system temporary directory), so the fsync cost is that
file system's.

Then `conclave token bench` measures inside one logged-in session: bare C_Sign over prepared
input against Conclave's signing path (digest, C_Sign, DER, software verification).
Exit status 0 when every run succeeded, 1 otherwise, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

TYPES = [
    ("ed25519", "ed", "EDDSA", None),
    ("ecdsa-p256", "p256", "ECDSA", hashlib.sha256),
    ("ecdsa-p384", "p384", "ECDSA", hashlib.sha384),
]


def run(cmd: list[str], env: dict, stdin: bytes = b"") -> tuple[float, float]:
    """Run one process; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(f"failed: {' '.join(cmd)}\n{proc.stdout.decode()}{proc.stderr.decode()}\n")
        raise SystemExit(1)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return took, cpu


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conclave", required=True)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--module", default="/usr/lib/softhsm/libsofthsm2.so")
    ap.add_argument("--tmpdir", default=None)
    args = ap.parse_args()
    if "/release/" not in os.path.realpath(args.conclave):
        print(f"token bench: warning: {args.conclave} does not look like a release build",
              file=sys.stderr)
    if not shutil.which("pkcs11-tool"):
        print("token bench: pkcs11-tool missing (Debian package opensc)", file=sys.stderr)
        return 2
    if not os.path.isfile(args.module):
        print(f"token bench: {args.module} missing (Debian package softhsm2)", file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="conclave-token-bench-", dir=args.tmpdir)
    try:
        env = dict(os.environ)
        env.pop("SOFTHSM2_CONF", None)
        out = subprocess.run(
            [args.conclave, "token", "init-practice", "--json", "--module", args.module,
             "--dir", os.path.join(tmp, "p"), "--keyholders", ",".join(t[1] for t in TYPES),
             "--type", ",".join(t[0] for t in TYPES)],
            env=env, capture_output=True, check=True,
        )
        practice = json.loads(out.stdout)
        env["SOFTHSM2_CONF"] = practice["conf"]
        tokens = {t["label"]: t for t in practice["tokens"]}

        # Root: every key in every role, threshold 1; signed once by "ed" so it verifies.
        keys = {t["key"]["keyid"]: t["key"]["key"] for t in practice["tokens"]}
        ids = sorted(keys)
        role = {"keyids": ids, "threshold": 1}
        root = {"signed": {"_type": "root", "spec_version": "1.0.31", "version": 1,
                           "expires": "2036-01-01T00:00:00Z", "consistent_snapshot": True,
                           "keys": keys, "roles": {r: role for r in
                                                   ("root", "targets", "snapshot", "timestamp")}},
                "signatures": []}
        root_path = os.path.join(tmp, "root.json")
        with open(root_path, "w") as f:
            json.dump(root, f, indent=2)
        run([args.conclave, "sign", "--module", args.module, "--token", "ed", "--key", "ed",
             "--in", root_path, "--out", root_path, "--pin-stdin"], env,
            (tokens["ed"]["pin"] + "\n").encode())

        signed = {"_type": "targets", "spec_version": "1.0.31", "version": 1,
                  "expires": "2036-01-01T00:00:00Z", "targets": {}}
        # Canonical JSON of this ASCII-only document (securesystemslib's form).
        canonical = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()

        load = os.getloadavg()
        print(f"load average {load[0]:.2f} on {os.cpu_count()} CPUs (other work on the machine "
              "skews wall time, fsync latency most)")
        print(f"token signing through SoftHSM2 ({args.module}), {args.runs} rounds, one process "
              "of each tool per round (module load + login + one C_Sign), medians; files in "
              f"{tmp}")
        print(f"{'key type':<12} {'conclave sig/s':>15} {'pkcs11-tool sig/s':>18} {'overhead':>9}"
              f" {'conclave CPU':>13} {'pkcs11-tool CPU':>16} {'CPU overhead':>13}")
        worst = 0.0
        for ktype, label, mech, digest in TYPES:
            pin = tokens[label]["pin"]
            targets_path = os.path.join(tmp, f"targets-{label}.json")
            with open(targets_path, "w") as f:
                json.dump({"signed": signed, "signatures": []}, f, indent=2)
            data = canonical if digest is None else digest(canonical).digest()
            data_path = os.path.join(tmp, f"in-{label}")
            with open(data_path, "wb") as f:
                f.write(data)
            sig_path = os.path.join(tmp, f"sig-{label}")
            c_cmd = [args.conclave, "sign", "--module", args.module, "--token", label,
                     "--key", label, "--in", targets_path, "--out", targets_path,
                     "--trusted-root", root_path, "--pin-stdin"]
            p_cmd = ["pkcs11-tool", "--module", args.module, "--token-label", label, "--login",
                     "--pin", pin, "--sign", "-m", mech, "--label", label, "-i", data_path,
                     "-o", sig_path]
            c_in = (pin + "\n").encode()
            # One warm-up each (page cache, first load).
            run(c_cmd, env, c_in)
            run(p_cmd, env)
            c, p = [], []
            for i in range(args.runs):
                if i % 2 == 0:
                    c.append(run(c_cmd, env, c_in))
                    p.append(run(p_cmd, env))
                else:
                    p.append(run(p_cmd, env))
                    c.append(run(c_cmd, env, c_in))
            cw = statistics.median(x[0] for x in c)
            pw = statistics.median(x[0] for x in p)
            cc = statistics.median(x[1] for x in c)
            pc = statistics.median(x[1] for x in p)
            overhead = (cw / pw - 1.0) * 100.0
            worst = max(worst, overhead)
            print(f"{ktype:<12} {1 / cw:>15.1f} {1 / pw:>18.1f} {overhead:>8.1f}%"
                  f" {cc * 1000:>10.2f} ms {pc * 1000:>13.2f} ms {(cc / pc - 1.0) * 100.0:>12.1f}%")
        verdict = "met" if worst < 20.0 else "NOT met"
        print(f"goal (Conclave overhead below 20%), per process, wall time: {verdict} "
              f"(worst {worst:.1f}%)")
        print("  (per process, Conclave also verifies the trusted root, checks the role's keys,")
        print("   verifies the signature, counts the role's signatures in the output and writes")
        print("   the file durably (two fsyncs);")
        print("   pkcs11-tool does none of that)")
        print()
        print("in one session (`conclave token bench`, 1 KiB message):")
        print(f"{'key type':<12} {'C_Sign sig/s':>13} {'conclave sig/s':>15} {'overhead':>9} "
              f"{'sw verify/s':>12}")
        for ktype, label, _, _ in TYPES:
            out = subprocess.run(
                [args.conclave, "token", "bench", "--module", args.module, "--token", label,
                 "--key", label, "--count", str(max(args.runs * 10, 100)), "--pin-stdin",
                 "--json"],
                input=(tokens[label]["pin"] + "\n").encode(), env=env, capture_output=True,
                check=True)
            b = json.loads(out.stdout)
            print(f"{ktype:<12} {b['bare_c_sign_per_s']:>13.1f} {b['conclave_sign_per_s']:>15.1f} "
                  f"{b['overhead_percent']:>8.1f}% {b['software_verify_per_s']:>12.1f}")
        print("  (the in-session overhead is the mandatory software verification of every")
        print("   signature; on a hardware token signing takes milliseconds and it vanishes)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
