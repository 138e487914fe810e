#!/usr/bin/env python3
"""Time python-tuf 7's client state machine verifying a repository folder like `conclave verify`.

Usage: bench_verify.py --trusted-root FILE --repo METADATA_DIR [--at RFC3339]

Drives ``tuf.ngclient``'s own ``TrustedMetadataSet`` (the state machine behind ``Updater``,
without its HTTP fetcher, which is what an offline client cannot use): the trusted root, then
``update_root`` for each N+1.root.json present, ``update_timestamp``, ``update_snapshot`` on the
snapshot the timestamp names, ``update_targets``, and ``update_delegated_targets`` for every
delegated role in the order the specification searches them (pre-order, depth first), each file
named as consistent snapshots name it when root says so. Expiry is judged at --at (the state
machine's reference time; default now).

Prints one JSON line on stdout: {"tool", "valid", "seconds" (verification only, after imports),
"peak_rss_bytes" (ru_maxrss of this process), "baseline_rss_bytes" (after imports, before
verification), "bytes_read", "root_versions", "targets", "delegated_roles"}. Exit status 0
valid, 1 invalid (reason on stderr), 2 usage error.
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
from tuf.api.metadata import Root, Snapshot, Targets
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet
from tuf.ngclient.config import EnvelopeType


def rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def verify(trusted_root: str, repo: str, at: datetime) -> dict:
    read = 0

    def data(path: str) -> bytes:
        nonlocal read
        with open(path, "rb") as f:
            b = f.read()
        read += len(b)
        return b

    trusted = TrustedMetadataSet(data(trusted_root), EnvelopeType.METADATA)
    trusted.reference_time = at
    while True:
        path = os.path.join(repo, f"{trusted.root.version + 1}.root.json")
        if not os.path.exists(path):
            break
        trusted.update_root(data(path))
    trusted.update_timestamp(data(os.path.join(repo, "timestamp.json")))

    def named(role: str, version: int) -> str:
        if trusted.root.consistent_snapshot:
            return os.path.join(repo, f"{version}.{role}.json")
        return os.path.join(repo, f"{role}.json")

    trusted.update_snapshot(
        data(named(Snapshot.type, trusted.timestamp.snapshot_meta.version))
    )
    targets = trusted.update_targets(
        data(named(Targets.type, trusted.snapshot.meta["targets.json"].version))
    )
    delegated = 0
    stack = [(Targets.type, targets)]
    while stack:
        parent, md = stack.pop()
        if md.delegations is None or md.delegations.roles is None:
            continue
        children = []
        for role in md.delegations.roles.values():
            if trusted.contains(role.name, parent):
                continue
            meta = trusted.snapshot.meta.get(f"{role.name}.json")
            if meta is None:
                continue
            child = trusted.update_delegated_targets(
                data(named(role.name, meta.version)), role.name, parent
            )
            delegated += 1
            children.append((role.name, child))
        stack.extend(reversed(children))
    return {
        "bytes_read": read,
        "root_versions": trusted.root.version,
        "targets": len(targets.targets),
        "delegated_roles": delegated,
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
