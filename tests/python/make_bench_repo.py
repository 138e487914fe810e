#!/usr/bin/env python3
"""Build the benchmark repository for `make bench` with python-tuf 7.

Usage: make_bench_repo.py OUT [--root-versions 30] [--targets 100000] [--delegated-roles 0]
                            [--targets-per-role 10] [--seed TEXT]

OUT must not exist or be empty. It receives OUT/metadata/ with 1.root.json .. 30.root.json
(keys and threshold change at every version, each signed by the old and the new threshold: the
root chain of tests/python/make_repo.py, Ed25519 and ECDSA P-256 keys mixed), root.json,
1.targets.json with 100,000 targets (a sha256 hash, a length and a small custom field per
target; no target files are written), 1.snapshot.json and timestamp.json (both listing length
and hashes), and OUT/bench.json describing it (file sizes, versions, a reference time inside the
validity). About 27 MB in all. Deterministic apart from ECDSA signatures.

With --delegated-roles N, targets.json also delegates N roles role-0000 .. role-NNNN (paths
"delegated/role-I/*", one Ed25519 key shared by all, threshold 1), each written as
1.role-I.json with --targets-per-role targets and listed in the snapshot with length and hashes.
`make bench` builds three such repositories: a 30-version root chain, 100,000 targets, and
1,000 delegated roles (tests/bench/run.sh).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

import make_repo

EXPIRES = "2036-01-01T00:00:00Z"
AT = "2030-01-01T00:00:00Z"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--root-versions", type=int, default=30)
    p.add_argument("--targets", type=int, default=100_000)
    p.add_argument("--delegated-roles", type=int, default=0)
    p.add_argument("--targets-per-role", type=int, default=10)
    p.add_argument("--seed", default="conclave-bench")
    args = p.parse_args(argv)
    if args.root_versions < 1 or args.targets < 0:
        p.error("--root-versions must be >= 1 and --targets >= 0")
    if os.path.exists(args.out) and os.listdir(args.out):
        print(f"make_bench_repo.py: {args.out} exists and is not empty", file=sys.stderr)
        return 2
    metadata_dir = os.path.join(args.out, "metadata")
    os.makedirs(metadata_dir, exist_ok=True)

    expires = make_repo.fixed_time(EXPIRES)
    factory = make_repo.KeyFactory(["ed25519", "ecdsa"], args.seed)
    for version in range(1, args.root_versions + 1):
        for name in make_repo.root_key_names(version):
            factory.get(name)
    online = {
        Targets.type: [factory.get("targets")],
        Snapshot.type: [factory.get("snapshot")],
        Timestamp.type: [factory.get("timestamp")],
    }
    summary: dict = {"roots": [], "roles": {}, "targets": {}}
    make_repo.build_root_chain(
        factory, online, args.root_versions, expires, metadata_dir, summary
    )

    targets = {}
    for i in range(args.targets):
        path = f"packages/pkg-{i:06d}/pkg_{i:06d}-1.{i % 7}.0-py3-none-any.whl"
        seed = f"bench-target-{i}".encode()
        targets[path] = TargetFile(
            length=1000 + i,
            hashes={"sha256": hashlib.sha256(seed).hexdigest()},
            path=path,
            unrecognized_fields={"custom": {"build": i, "platform": "linux-x86_64"}},
        )
    top = Targets(version=1, expires=expires, targets=targets)
    delegated_meta = {}
    if args.delegated_roles:
        key = factory.get("delegated")
        roles = {}
        for r in range(args.delegated_roles):
            name = f"role-{r:04d}"
            roles[name] = DelegatedRole(
                name=name,
                keyids=[key.keyid],
                threshold=1,
                terminating=False,
                paths=[f"delegated/{name}/*"],
            )
            role_targets = {}
            for i in range(args.targets_per_role):
                path = f"delegated/{name}/pkg_{i:03d}-1.0.tar.gz"
                digest = hashlib.sha256(f"{name}-{i}".encode()).hexdigest()
                role_targets[path] = TargetFile(
                    length=2000 + i, hashes={"sha256": digest}, path=path
                )
            md = Metadata(Targets(version=1, expires=expires, targets=role_targets))
            make_repo.sign(md, [key])
            data = make_repo.write_metadata(md, os.path.join(metadata_dir, f"1.{name}.json"))
            delegated_meta[f"{name}.json"] = make_repo.meta_file(1, data, True)
        top.delegations = Delegations(keys={key.keyid: key.public}, roles=roles)
    targets_md = Metadata(top)
    make_repo.sign(targets_md, online[Targets.type])
    targets_bytes = make_repo.write_metadata(
        targets_md, os.path.join(metadata_dir, "1.targets.json")
    )

    snapshot = Snapshot(version=1, expires=expires, meta={})
    snapshot.meta["targets.json"] = make_repo.meta_file(1, targets_bytes, True)
    snapshot.meta.update(delegated_meta)
    snap_md = Metadata(snapshot)
    make_repo.sign(snap_md, online[Snapshot.type])
    snap_bytes = make_repo.write_metadata(snap_md, os.path.join(metadata_dir, "1.snapshot.json"))

    ts_md = Metadata(
        Timestamp(
            version=1,
            expires=expires,
            snapshot_meta=make_repo.meta_file(1, snap_bytes, True),
        )
    )
    make_repo.sign(ts_md, online[Timestamp.type])
    make_repo.write_metadata(ts_md, os.path.join(metadata_dir, "timestamp.json"))

    files = {
        name: os.path.getsize(os.path.join(metadata_dir, name))
        for name in sorted(os.listdir(metadata_dir))
    }
    bench = {
        "root_versions": args.root_versions,
        "targets": args.targets,
        "delegated_roles": args.delegated_roles,
        "signatures": sum(
            len(json.load(open(os.path.join(metadata_dir, n)))["signatures"])
            for n in os.listdir(metadata_dir)
            if n != "root.json"
        ),
        "expires": EXPIRES,
        "at": AT,
        "files": files,
        "total_bytes": sum(files.values()),
        # what `conclave verify` reads: every file except the root.json copy
        "verified_bytes": sum(v for k, v in files.items() if k != "root.json"),
    }
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(bench, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps({k: bench[k] for k in ("root_versions", "targets", "total_bytes")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
