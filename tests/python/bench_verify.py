#!/usr/bin/env python3
"""Time python-tuf 7 verifying a repository the way `conclave verify` does.

Usage: bench_verify.py --trusted-root FILE --repo METADATA_DIR [--at RFC3339]

Steps, all with python-tuf's Metadata API: load the trusted root and check it is signed by
itself; for each N+1.root.json in the directory, load it, check the version, and
``verify_delegate`` with both the previous root (old threshold) and itself (new threshold); the
newest root must not be expired at --at (default now); then timestamp.json (verified by root,
expiry), the snapshot it names (length and hashes as timestamp lists them, verified by root,
version, expiry), and the targets file snapshot names (length and hashes, verified by root,
version, expiry). Delegated roles are not walked (the benchmark repository has none).

Prints one JSON line on stdout: {"tool", "valid", "seconds" (verification only, after imports),
"peak_rss_bytes" (ru_maxrss of this process), "baseline_rss_bytes" (after imports, before
verification), "bytes_read", "root_versions", "targets"}. Exit status 0 valid, 1 invalid (reason
on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import datetime, timezone

import tuf
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp


class Invalid(Exception):
    pass


def rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def verify(trusted_root: str, repo: str, at: datetime) -> dict:
    read = 0

    def load(path: str, typ: str) -> tuple[Metadata, bytes]:
        nonlocal read
        with open(path, "rb") as f:
            data = f.read()
        read += len(data)
        md = Metadata.from_bytes(data)
        if md.signed.type != typ:
            raise Invalid(f"{path}: expected {typ}, got {md.signed.type}")
        return md, data

    def check(delegator, role: str, md: Metadata, path: str) -> None:
        try:
            delegator.verify_delegate(role, md.signed_bytes, md.signatures)
        except Exception as e:  # noqa: BLE001
            raise Invalid(f"{path}: {role}: {e}") from e
        if md.signed.is_expired(at) and role != Root.type:
            raise Invalid(f"{path}: {role} expired")

    root, _ = load(trusted_root, Root.type)
    check(root.signed, Root.type, root, trusted_root)
    while True:
        path = os.path.join(repo, f"{root.signed.version + 1}.root.json")
        if not os.path.exists(path):
            break
        new, _ = load(path, Root.type)
        if new.signed.version != root.signed.version + 1:
            raise Invalid(f"{path}: version {new.signed.version}")
        check(root.signed, Root.type, new, path)
        check(new.signed, Root.type, new, path)
        root = new
    if root.signed.is_expired(at):
        raise Invalid(f"root version {root.signed.version} expired")

    def named(role: str, version: int) -> str:
        if root.signed.consistent_snapshot:
            return os.path.join(repo, f"{version}.{role}.json")
        return os.path.join(repo, f"{role}.json")

    ts_path = os.path.join(repo, "timestamp.json")
    ts, _ = load(ts_path, Timestamp.type)
    check(root.signed, Timestamp.type, ts, ts_path)

    snap_meta = ts.signed.snapshot_meta
    snap_path = named(Snapshot.type, snap_meta.version)
    snap, snap_bytes = load(snap_path, Snapshot.type)
    snap_meta.verify_length_and_hashes(snap_bytes)
    if snap.signed.version != snap_meta.version:
        raise Invalid(f"{snap_path}: version {snap.signed.version}")
    check(root.signed, Snapshot.type, snap, snap_path)

    targets_meta = snap.signed.meta["targets.json"]
    targets_path = named(Targets.type, targets_meta.version)
    targets, targets_bytes = load(targets_path, Targets.type)
    targets_meta.verify_length_and_hashes(targets_bytes)
    if targets.signed.version != targets_meta.version:
        raise Invalid(f"{targets_path}: version {targets.signed.version}")
    check(root.signed, Targets.type, targets, targets_path)
    return {
        "bytes_read": read,
        "root_versions": root.signed.version,
        "targets": len(targets.signed.targets),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Time python-tuf verifying a repository.")
    p.add_argument("--trusted-root", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--at")
    args = p.parse_args(argv)
    try:
        at = (
            datetime.fromisoformat(args.at.replace("Z", "+00:00"))
            if args.at
            else datetime.now(timezone.utc)
        )
    except ValueError as e:
        p.error(f"--at: {e}")
    if at.tzinfo is None:
        p.error("--at needs a zone")
    if not os.path.isdir(args.repo) or not os.path.isfile(args.trusted_root):
        p.error("--repo must be a directory and --trusted-root a file")
    baseline = rss_bytes()
    start = time.perf_counter()
    try:
        result = verify(args.trusted_root, args.repo, at)
    except Exception as e:  # noqa: BLE001 - every failure is a verdict
        print(f"bench_verify.py: INVALID: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "tool": f"python-tuf {tuf.__version__}",
                "valid": True,
                "seconds": round(seconds, 4),
                "peak_rss_bytes": rss_bytes(),
                "baseline_rss_bytes": baseline,
                **result,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
