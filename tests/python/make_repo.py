#!/usr/bin/env python3
"""Build a complete, signed TUF repository with python-tuf 7 (the reference implementation).

Usage:
  make_repo.py OUTDIR [--key-types ed25519,ecdsa,ecdsa-p384] [--root-rotations N]
                      [--no-delegations] [--targets N] [--expires RFC3339] [--seed TEXT]
                      [--random-keys] [--no-meta-hashes]

OUTDIR must not exist or be empty. It receives:

  metadata/1.root.json ... N.root.json   every root version (N = rotations + 1)
  metadata/root.json                     copy of the newest root
  metadata/timestamp.json
  metadata/1.snapshot.json, 1.targets.json
  metadata/1.ROLE.json                   delegated roles (consistent snapshot names; see below)
  targets/DIR/SHA256.NAME                target files, named as ngclient downloads them with
                                         consistent snapshots (hash prefix on the base name)
  keys/NAME.pem                          every private key, unencrypted PKCS#8 PEM
  keys/keys.json                         {NAME: {keyid, keytype, scheme, public, private_pem,
                                         roles}}: which key serves which role (root@V for root V)
  repo.json                              summary: root versions, roles (file, version, keyids,
                                         threshold), targets (role, length, sha256, file), expires

Root chain: root version v lists keys root-v, root-(v+1), root-(v+2) with threshold 2 for odd v
and 1 for even v, so every rotation drops one key, adds one, and changes the threshold. Version
v+1 is signed by the first threshold(v) keys of root v (including the key being dropped) and the
last threshold(v+1) keys of root v+1 (including the key being added): exactly what the
specification requires, and no more.

Delegations (unless --no-delegations), all from the top-level targets role:
  "release team"  paths ["files/*"], threshold 1 (a role name that URL quoting changes)
  "hashed"        path_hash_prefixes covering the hashed/* targets, threshold 2 of 2 keys
  "frozen"        paths ["term/*"], terminating
  "bins"          paths ["bins/*"], which delegates with TAP 15 succinct_roles: bit_length 2,
                  name_prefix "bin" -> roles bin-0 .. bin-3, threshold 1
Targets are spread round-robin over top-level ("readme-I.txt"), files/, hashed/, term/ and
bins/ (with --no-delegations all are top-level).

Delegated role files are written as "V.<role name>.json" with the role name as is: ngclient
requests "V.<urllib.parse.quote(name, '')>.json" and a static HTTP server (python's http.server,
nginx) URL-decodes that back to the name, so "1.release team.json" on disk is what the reference
client fetches as "1.release%20team.json".

Keys: --key-types is a comma-separated list cycled over the keys in creation order (root keys
first, then targets, snapshot, timestamp, delegated roles): ed25519 (hex public key), ecdsa
(keytype "ecdsa", scheme "ecdsa-sha2-nistp256", PEM public key), ecdsa-p384 (keytype "ecdsa",
scheme "ecdsa-sha2-nistp384"). With --seed (default "conclave") every private key is derived
from SHA-256/512 of the seed and the key name, so key ids are reproducible; Ed25519 signatures are
then byte-for-byte reproducible, ECDSA ones are not (random nonces). --random-keys uses fresh keys.

Every role expires at --expires (default 2036-01-01T00:00:00Z); all versions of the
non-root roles are 1. Exit status 0 on success, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

KEY_TYPES = {
    # name: (keytype, scheme)
    "ed25519": ("ed25519", "ed25519"),
    "ecdsa": ("ecdsa", "ecdsa-sha2-nistp256"),
    "ecdsa-p384": ("ecdsa", "ecdsa-sha2-nistp384"),
}
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)
PRETTY = JSONSerializer(compact=False)


@dataclass
class TestKey:
    """A private key with its python-tuf public key and signer."""

    name: str
    kind: str
    private: object
    public: SSlibKey
    signer: CryptoSigner
    roles: list[str] = field(default_factory=list)

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class KeyFactory:
    """Makes keys, cycling key types; deterministic from a seed unless seed is None."""

    def __init__(self, kinds: list[str], seed: str | None):
        self.kinds = kinds
        self.seed = seed
        self.keys: dict[str, TestKey] = {}

    def get(self, name: str) -> TestKey:
        if name not in self.keys:
            kind = self.kinds[len(self.keys) % len(self.kinds)]
            self.keys[name] = make_key(name, kind, self.seed)
        return self.keys[name]


def make_key(name: str, kind: str, seed: str | None) -> TestKey:
    keytype, scheme = KEY_TYPES[kind]
    material = None
    if seed is not None:
        material = hashlib.sha512(f"conclave-test-key|{seed}|{name}".encode()).digest()
    if kind == "ed25519":
        private = (
            ed25519.Ed25519PrivateKey.from_private_bytes(material[:32])
            if material
            else ed25519.Ed25519PrivateKey.generate()
        )
    else:
        curve, order = (
            (ec.SECP256R1(), P256_ORDER) if kind == "ecdsa" else (ec.SECP384R1(), P384_ORDER)
        )
        if material:
            scalar = int.from_bytes(material, "big") % (order - 1) + 1
            private = ec.derive_private_key(scalar, curve)
        else:
            private = ec.generate_private_key(curve)
    public = SSlibKey.from_crypto(private.public_key(), scheme=scheme)
    assert public.keytype == keytype, (public.keytype, keytype)
    return TestKey(name, kind, private, public, CryptoSigner(private, public))


def fixed_time(text: str) -> datetime:
    value = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    return value.replace(tzinfo=timezone.utc)


def root_key_names(version: int) -> list[str]:
    return [f"root-{version + i}" for i in range(3)]


def root_threshold(version: int) -> int:
    return 2 if version % 2 == 1 else 1


def sign(md: Metadata, signers: list[TestKey]) -> None:
    for key in signers:
        md.sign(key.signer, append=True)


def write_metadata(md: Metadata, path: str) -> bytes:
    data = md.to_bytes(PRETTY)
    with open(path, "wb") as f:
        f.write(data)
    return data


def meta_file(version: int, data: bytes, with_hashes: bool) -> MetaFile:
    if not with_hashes:
        return MetaFile(version=version)
    return MetaFile(
        version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()}
    )


def build_root_chain(
    factory: KeyFactory,
    online: dict[str, list[TestKey]],
    versions: int,
    expires: datetime,
    metadata_dir: str,
    summary: dict,
) -> None:
    """Write 1.root.json .. VERSIONS.root.json and root.json (a copy of the newest)."""
    previous: Metadata[Root] | None = None
    data = b""
    for version in range(1, versions + 1):
        root = Root(version=version, expires=expires, consistent_snapshot=True)
        names = root_key_names(version)
        keys = [factory.get(n) for n in names]
        for key in keys:
            root.add_key(key.public, Root.type)
            key.roles.append(f"root@{version}")
        root.roles[Root.type].threshold = root_threshold(version)
        for role, role_keys in online.items():
            for key in role_keys:
                root.add_key(key.public, role)
        md = Metadata(root)
        signers = keys[len(keys) - root_threshold(version) :]
        if previous is not None:
            old_names = root_key_names(version - 1)[: root_threshold(version - 1)]
            signers = [factory.get(n) for n in old_names] + [
                k for k in signers if k.name not in old_names
            ]
        sign(md, signers)
        data = write_metadata(md, os.path.join(metadata_dir, f"{version}.root.json"))
        summary["roots"].append(
            {
                "version": version,
                "file": f"metadata/{version}.root.json",
                "keyids": [k.keyid for k in keys],
                "threshold": root_threshold(version),
                "signed_by": [k.keyid for k in signers],
            }
        )
        previous = md
    with open(os.path.join(metadata_dir, "root.json"), "wb") as f:
        f.write(data)


def target_layout(count: int, delegations: bool) -> list[tuple[str, str]]:
    """(path, category) for every target."""
    categories = ["top", "files", "hashed", "term", "bins"] if delegations else ["top"]
    out = []
    for i in range(count):
        cat = categories[i % len(categories)]
        path = f"readme-{i}.txt" if cat == "top" else f"{cat}/t{i}.txt"
        out.append((path, cat))
    return out


def target_content(i: int, path: str) -> bytes:
    return (f"Conclave test target {i}: {path}\n" * (1 + i % 3)).encode()


def write_target(targets_dir: str, path: str, data: bytes, info: TargetFile) -> str:
    dirname, sep, base = path.rpartition("/")
    rel = ""
    for digest in info.hashes.values():
        rel = f"{dirname}{sep}{digest}.{base}"
        full = os.path.join(targets_dir, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return "targets/" + rel


def build(args: argparse.Namespace) -> dict:
    out = args.outdir
    if os.path.exists(out) and os.listdir(out):
        raise UsageError(f"{out} exists and is not empty")
    metadata_dir = os.path.join(out, "metadata")
    targets_dir = os.path.join(out, "targets")
    keys_dir = os.path.join(out, "keys")
    for d in (metadata_dir, targets_dir, keys_dir):
        os.makedirs(d, exist_ok=True)

    expires = fixed_time(args.expires)
    versions = args.root_rotations + 1
    factory = KeyFactory(args.key_types, None if args.random_keys else args.seed)
    # root keys first so that the key type cycle is easy to predict
    for version in range(1, versions + 1):
        for name in root_key_names(version):
            factory.get(name)
    online = {
        Targets.type: [factory.get("targets")],
        Snapshot.type: [factory.get("snapshot")],
        Timestamp.type: [factory.get("timestamp")],
    }
    for role, keys in online.items():
        for key in keys:
            key.roles.append(role)

    summary: dict = {
        "expires": args.expires,
        "root_versions": versions,
        "consistent_snapshot": True,
        "roots": [],
        "roles": {},
        "targets": {},
        "keys": "keys/keys.json",
    }
    build_root_chain(factory, online, versions, expires, metadata_dir, summary)

    # targets payloads per role
    role_targets: dict[str, dict[str, TargetFile]] = {"targets": {}}
    layout = target_layout(args.targets, not args.no_delegations)
    bins = SuccinctRoles(keyids=[], threshold=1, bit_length=2, name_prefix="bin")
    category_role = {"top": "targets", "files": "release team", "hashed": "hashed", "term": "frozen"}
    for i, (path, cat) in enumerate(layout):
        data = target_content(i, path)
        info = TargetFile.from_data(path, data, ["sha256"])
        role = bins.get_role_for_target(path) if cat == "bins" else category_role[cat]
        role_targets.setdefault(role, {})[path] = info
        summary["targets"][path] = {
            "role": role,
            "length": len(data),
            "sha256": info.hashes["sha256"],
            "file": write_target(targets_dir, path, data, info),
        }

    delegated: list[tuple[str, Metadata, list[TestKey]]] = []  # (role, metadata, signers)
    top = Targets(version=1, expires=expires, targets=role_targets["targets"])
    if not args.no_delegations:
        k_release = factory.get("delegate-release")
        k_hashed = [factory.get("delegate-hashed-1"), factory.get("delegate-hashed-2")]
        k_frozen = factory.get("delegate-frozen")
        k_bins = factory.get("delegate-bins")
        k_bin = factory.get("delegate-bin")
        hashed_paths = [p for p, c in layout if c == "hashed"] or ["hashed/none"]
        prefixes = sorted({hashlib.sha256(p.encode()).hexdigest()[:4] for p in hashed_paths})
        roles = {
            "release team": DelegatedRole(
                "release team", [k_release.keyid], 1, False, paths=["files/*"]
            ),
            "hashed": DelegatedRole(
                "hashed", [k.keyid for k in k_hashed], 2, False, path_hash_prefixes=prefixes
            ),
            "frozen": DelegatedRole("frozen", [k_frozen.keyid], 1, True, paths=["term/*"]),
            "bins": DelegatedRole("bins", [k_bins.keyid], 1, False, paths=["bins/*"]),
        }
        all_keys = [k_release, *k_hashed, k_frozen, k_bins]
        top.delegations = Delegations(
            keys={k.keyid: k.public for k in all_keys}, roles=roles
        )
        signers_for = {
            "release team": [k_release],
            "hashed": k_hashed,
            "frozen": [k_frozen],
            "bins": [k_bins],
        }
        for key, role in [
            (k_release, "release team"),
            (k_hashed[0], "hashed"),
            (k_hashed[1], "hashed"),
            (k_frozen, "frozen"),
            (k_bins, "bins"),
            (k_bin, "bin-*"),
        ]:
            key.roles.append(role)
        bins.keyids = [k_bin.keyid]
        for name in roles:
            payload = Targets(version=1, expires=expires, targets=role_targets.get(name, {}))
            if name == "bins":
                payload.delegations = Delegations(
                    keys={k_bin.keyid: k_bin.public}, roles=None, succinct_roles=bins
                )
            delegated.append((name, Metadata(payload), signers_for[name]))
        for bin_name in bins.get_roles():
            payload = Targets(version=1, expires=expires, targets=role_targets.get(bin_name, {}))
            delegated.append((bin_name, Metadata(payload), [k_bin]))

    snapshot = Snapshot(version=1, expires=expires, meta={})
    top_md = Metadata(top)
    sign(top_md, online[Targets.type])
    for name, md, signers in [("targets", top_md, online[Targets.type]), *delegated]:
        if name != "targets":
            sign(md, signers)
        fname = f"{md.signed.version}.{name}.json"
        data = write_metadata(md, os.path.join(metadata_dir, fname))
        snapshot.meta[f"{name}.json"] = meta_file(md.signed.version, data, not args.no_meta_hashes)
        summary["roles"][name] = {
            "file": f"metadata/{fname}",
            "version": md.signed.version,
            "signed_by": sorted(md.signatures),
        }

    snap_md = Metadata(snapshot)
    sign(snap_md, online[Snapshot.type])
    snap_name = f"{snapshot.version}.snapshot.json"
    snap_data = write_metadata(snap_md, os.path.join(metadata_dir, snap_name))
    summary["roles"]["snapshot"] = {
        "file": f"metadata/{snap_name}",
        "version": snapshot.version,
        "signed_by": sorted(snap_md.signatures),
    }

    ts = Timestamp(
        version=1,
        expires=expires,
        snapshot_meta=meta_file(snapshot.version, snap_data, not args.no_meta_hashes),
    )
    ts_md = Metadata(ts)
    sign(ts_md, online[Timestamp.type])
    write_metadata(ts_md, os.path.join(metadata_dir, "timestamp.json"))
    summary["roles"]["timestamp"] = {
        "file": "metadata/timestamp.json",
        "version": ts.version,
        "signed_by": sorted(ts_md.signatures),
    }

    index = {}
    for key in factory.keys.values():
        pem_name = f"{key.name}.pem"
        path = os.path.join(keys_dir, pem_name)
        with open(path, "wb") as f:
            f.write(key.private_pem())
        os.chmod(path, 0o600)
        index[key.name] = {
            "keyid": key.keyid,
            "keytype": key.public.keytype,
            "scheme": key.public.scheme,
            "public": key.public.keyval["public"],
            "private_pem": pem_name,
            "roles": key.roles,
        }
    with open(os.path.join(keys_dir, "keys.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "repo.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    return summary


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Build a signed TUF repository with python-tuf 7 (see module docstring).",
    )
    p.add_argument("outdir")
    p.add_argument(
        "--key-types",
        default="ed25519,ecdsa",
        help="comma-separated, cycled over keys: " + ", ".join(KEY_TYPES),
    )
    p.add_argument("--root-rotations", type=int, default=2)
    p.add_argument("--no-delegations", action="store_true")
    p.add_argument("--targets", type=int, default=10, help="number of target files")
    p.add_argument("--expires", default="2036-01-01T00:00:00Z", help="YYYY-MM-DDTHH:MM:SSZ")
    p.add_argument("--seed", default="conclave", help="derive keys from this text")
    p.add_argument("--random-keys", action="store_true", help="fresh random keys")
    p.add_argument(
        "--no-meta-hashes",
        action="store_true",
        help="snapshot/timestamp list versions only (no length and hashes)",
    )
    args = p.parse_args(argv)
    args.key_types = [k.strip() for k in args.key_types.split(",") if k.strip()]
    bad = [k for k in args.key_types if k not in KEY_TYPES]
    if bad or not args.key_types:
        p.error(f"unknown key types {bad}; choose from {', '.join(KEY_TYPES)}")
    if args.root_rotations < 0 or args.targets < 0:
        p.error("--root-rotations and --targets must be >= 0")
    try:
        fixed_time(args.expires)
    except ValueError:
        p.error("--expires must look like 2036-01-01T00:00:00Z")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        summary = build(args)
    except UsageError as e:
        print(f"make_repo.py: {e}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "outdir": args.outdir,
                "root_versions": summary["root_versions"],
                "roles": sorted(summary["roles"]),
                "targets": len(summary["targets"]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

