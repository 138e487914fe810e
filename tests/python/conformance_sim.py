#!/usr/bin/env python3
"""A TUF repository that changes between client runs, built with python-tuf 7's Metadata API,
for tests/conformance_client.rs (the TUF client workflow scenarios).

Usage: conformance_sim.py STATE_DIR SERVE_DIR SCENARIO STEP

STEP 0 creates the repository for SCENARIO; each later STEP applies that scenario's next change
(the test runs both clients between steps). The repository state (keys are derived from their
names, metadata as bytes) is kept in STATE_DIR/state.pickle; what a server serves is written to
SERVE_DIR/metadata/ and SERVE_DIR/targets/:

  metadata/N.root.json                   every root version
  metadata/timestamp.json
  metadata/V.snapshot.json, V.ROLE.json  with consistent snapshots (ROLE URL-quoted as
                                         clients request it: urllib.parse.quote(ROLE, ""))
  metadata/snapshot.json, ROLE.json      without
  targets/PATH and targets/DIR/HASH.NAME target files (both names)

Scenarios named NAME=JSON are built from the JSON given (see `root_chain`, `role_keys`,
`graph`). Exit status 0, or 2 for an unknown scenario or step. `conformance_sim.py --list`
prints the fixed scenarios with their number of steps.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import json
import sys
from datetime import datetime, timezone
from urllib import parse

from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

FUTURE = datetime(2036, 1, 1, tzinfo=timezone.utc)
PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)


def signer(name: str) -> CryptoSigner:
    seed = hashlib.sha256(f"conformance key {name}".encode()).digest()
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    public = SSlibKey.from_crypto(private.public_key())
    return CryptoSigner(private, public)


def key(name: str) -> SSlibKey:
    return signer(name).public_key


class Sim:
    """The repository: current metadata of every role, which keys sign it, target contents."""

    def __init__(self, serve: str, consistent: bool = True, meta_hashes: bool = True) -> None:
        self.serve = serve
        self.consistent = consistent
        self.meta_hashes = meta_hashes
        # Which key names sign each role (root: the current root's keys).
        self.signers: dict[str, list[str]] = {}
        self.root = Metadata(Root(expires=FUTURE, consistent_snapshot=consistent))
        for role in ("root", "timestamp", "snapshot", "targets"):
            self.set_keys(role, [f"{role}-1"], 1)
        self.roles: dict[str, Metadata[Targets]] = {"targets": Metadata(Targets(expires=FUTURE))}
        self.snapshot = Metadata(Snapshot(expires=FUTURE))
        self.timestamp = Metadata(Timestamp(expires=FUTURE))
        self.contents: dict[str, bytes] = {}
        os.makedirs(os.path.join(serve, "metadata"), exist_ok=True)
        os.makedirs(os.path.join(serve, "targets"), exist_ok=True)

    # --- keys -------------------------------------------------------------------------------

    def set_keys(self, role: str, names: list[str], threshold: int) -> None:
        """Make `names` the keys of top-level `role` in the (unsigned) current root."""
        r = self.root.signed
        for old in list(r.roles[role].keyids):
            r.revoke_key(old, role)
        for n in names:
            r.add_key(key(n), role)
        r.roles[role].threshold = threshold
        self.signers[role] = list(names)

    # --- writing ----------------------------------------------------------------------------

    def _write(self, name: str, data: bytes) -> None:
        with open(os.path.join(self.serve, "metadata", name), "wb") as f:
            f.write(data)

    def _sign(self, md: Metadata, names: list[str]) -> bytes:
        md.signatures.clear()
        for n in names:
            md.sign(signer(n), append=True)
        return md.to_bytes()

    def publish_root(self, sign_with: list[str] | None = None) -> None:
        """Sign the current root with `sign_with` (default: its own keys) and serve it."""
        names = sign_with if sign_with is not None else self.signers["root"]
        data = self._sign(self.root, names)
        self._write(f"{self.root.signed.version}.root.json", data)

    def bump_root(self) -> None:
        self.root.signed.version += 1

    def add_target(self, role: str, path: str, content: bytes) -> None:
        self.roles[role].signed.targets[path] = TargetFile.from_data(path, content, ["sha256"])
        self.contents[path] = content

    def _meta(self, data: bytes, version: int) -> MetaFile:
        if self.meta_hashes:
            return MetaFile(
                version=version,
                length=len(data),
                hashes={"sha256": hashlib.sha256(data).hexdigest()},
            )
        return MetaFile(version=version)

    def role_file(self, role: str, version: int) -> str:
        # Role names URL-quoted as clients request them (the server does not decode paths).
        q = parse.quote(role, "")
        return f"{version}.{q}.json" if self.consistent else f"{q}.json"

    def publish(self, bump: tuple[str, ...] = ("targets",), sign_as: dict | None = None) -> None:
        """Bump the versions of the roles in `bump`, then serve every targets role, a new
        snapshot and a new timestamp, and every target file. `sign_as` maps a role to the key
        names that sign it this time (default: its own keys)."""
        sign_as = sign_as or {}
        meta: dict[str, MetaFile] = {}
        for role, md in self.roles.items():
            if role in bump:
                md.signed.version += 1
            names = sign_as.get(role, self.signers[role])
            data = self._sign(md, names)
            self._write(self.role_file(role, md.signed.version), data)
            meta[f"{role}.json"] = self._meta(data, md.signed.version)
        self.snapshot.signed.meta = meta
        self.snapshot.signed.version += 1
        self.publish_snapshot(sign_as)
        for path, content in self.contents.items():
            self.serve_target(path, content)

    def publish_snapshot(self, sign_as: dict | None = None) -> bytes:
        """Serve the current snapshot and a new timestamp (version + 1) pinning it."""
        sign_as = sign_as or {}
        data = self._sign(self.snapshot, sign_as.get("snapshot", self.signers["snapshot"]))
        self._write(self.role_file("snapshot", self.snapshot.signed.version), data)
        self.timestamp.signed.snapshot_meta = self._meta(data, self.snapshot.signed.version)
        self.timestamp.signed.version += 1
        self.publish_timestamp(sign_as)
        return data

    def publish_timestamp_bumped(self) -> None:
        self.timestamp.signed.version += 1
        self.publish_timestamp()

    def publish_timestamp(self, sign_as: dict | None = None) -> None:
        sign_as = sign_as or {}
        data = self._sign(self.timestamp, sign_as.get("timestamp", self.signers["timestamp"]))
        self._write("timestamp.json", data)

    def serve_target(self, path: str, content: bytes) -> None:
        digest = hashlib.sha256(content).hexdigest()
        d, _, base = path.rpartition("/")
        for name in (path, f"{d}/{digest}.{base}" if d else f"{digest}.{base}"):
            full = os.path.join(self.serve, "targets", name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(content)

    def delegate(
        self,
        parent: str,
        name: str,
        keys: list[str],
        threshold: int = 1,
        paths: list[str] | None = None,
        prefixes: list[str] | None = None,
        terminating: bool = False,
    ) -> None:
        """`parent` delegates `name` to `keys`; `name` starts as an empty targets role."""
        p = self.roles[parent].signed
        if p.delegations is None:
            p.delegations = Delegations(keys={}, roles={})
        for n in keys:
            k = key(n)
            p.delegations.keys[k.keyid] = k
        p.delegations.roles[name] = DelegatedRole(
            name=name,
            keyids=[key(n).keyid for n in keys],
            threshold=threshold,
            terminating=terminating,
            paths=paths,
            path_hash_prefixes=prefixes,
        )
        self.roles.setdefault(name, Metadata(Targets(expires=FUTURE)))
        self.signers[name] = list(keys)

    def delegate_bins(self, parent: str, key_name: str, bit_length: int, prefix: str) -> list[str]:
        """`parent` delegates to TAP 15 succinct hash bins; returns the bin names."""
        succinct = SuccinctRoles([key(key_name).keyid], 1, bit_length, prefix)
        self.roles[parent].signed.delegations = Delegations(
            keys={key(key_name).keyid: key(key_name)}, roles=None, succinct_roles=succinct
        )
        bins = list(succinct.get_roles())
        for b in bins:
            self.roles[b] = Metadata(Targets(expires=FUTURE))
            self.signers[b] = [key_name]
        return bins

    # --- state ------------------------------------------------------------------------------

    def save(self, state: str) -> None:
        blob = {
            "serve": self.serve,
            "consistent": self.consistent,
            "meta_hashes": self.meta_hashes,
            "signers": self.signers,
            "root": self.root.to_bytes(),
            "roles": {n: md.to_bytes() for n, md in self.roles.items()},
            "snapshot": self.snapshot.to_bytes(),
            "timestamp": self.timestamp.to_bytes(),
            "contents": self.contents,
        }
        with open(os.path.join(state, "state.pickle"), "wb") as f:
            pickle.dump(blob, f)

    @classmethod
    def load(cls, state: str) -> Sim:
        with open(os.path.join(state, "state.pickle"), "rb") as f:
            blob = pickle.load(f)  # noqa: S301 - our own file, written by save()
        sim = cls.__new__(cls)
        sim.serve = blob["serve"]
        sim.consistent = blob["consistent"]
        sim.meta_hashes = blob["meta_hashes"]
        sim.signers = blob["signers"]
        sim.root = Metadata.from_bytes(blob["root"])
        sim.roles = {n: Metadata.from_bytes(b) for n, b in blob["roles"].items()}
        sim.snapshot = Metadata.from_bytes(blob["snapshot"])
        sim.timestamp = Metadata.from_bytes(blob["timestamp"])
        sim.contents = blob["contents"]
        return sim


def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


# --- scenarios --------------------------------------------------------------------------------
# Each scenario is a list of steps; step 0 gets a new Sim (made by `new`), later steps the loaded
# one. Expected verdicts live in tests/conformance_client.rs.


def basic_repo(sim: Sim) -> None:
    sim.publish_root()
    sim.add_target("targets", "readme.txt", b"top-level target\n")
    sim.delegate("targets", "release team", ["rt-1"], paths=["files/*"])
    sim.add_target("release team", "files/app-1.0.tar.gz", b"app 1.0\n")
    sim.delegate("targets", "hashed", ["h-1"], prefixes=[sha256_hex("hashed/h1.txt")[:4]])
    sim.add_target("hashed", "hashed/h1.txt", b"hashed one\n")
    sim.delegate("targets", "bins", ["b-1"], paths=["bins/*"])
    bins = sim.delegate_bins("bins", "bin-key", 3, "bin")
    assert len(bins) == 8
    bin_role = sim.roles["bins"].signed.delegations.succinct_roles.get_role_for_target(
        "bins/b1.txt"
    )
    sim.add_target(bin_role, "bins/b1.txt", b"in its bin\n")
    sim.publish()


def basic_change_target(sim: Sim) -> None:
    sim.add_target("targets", "readme.txt", b"top-level target, second edition\n")
    sim.publish()


def rotate_root(sim: Sim) -> None:
    # v2: two new keys, threshold 2; signed by the old threshold (root-1) and the new one.
    sim.bump_root()
    sim.set_keys("root", ["root-2", "root-3"], 2)
    sim.publish_root(["root-1", "root-2", "root-3"])
    # v3: one key again; signed by v2's threshold and its own.
    sim.bump_root()
    sim.set_keys("root", ["root-4"], 1)
    sim.publish_root(["root-2", "root-3", "root-4"])
    sim.publish()


def root_not_signed_by_old(sim: Sim) -> None:
    sim.bump_root()
    sim.set_keys("root", ["root-2"], 1)
    sim.publish_root(["root-2"])


def root_not_signed_by_new_threshold(sim: Sim) -> None:
    sim.bump_root()
    sim.set_keys("root", ["root-2", "root-3"], 2)
    sim.publish_root(["root-1", "root-2"])


def root_version_skipped(sim: Sim) -> None:
    # "2.root.json" holds version 3.
    sim.root.signed.version = 3
    data = sim._sign(sim.root, ["root-1"])
    sim._write("2.root.json", data)


def expired_intermediate_root(sim: Sim) -> None:
    sim.bump_root()
    sim.root.signed.expires = PAST
    sim.publish_root()
    sim.bump_root()
    sim.root.signed.expires = FUTURE
    sim.publish_root()
    sim.publish()


def expired_final_root(sim: Sim) -> None:
    sim.bump_root()
    sim.root.signed.expires = PAST
    sim.publish_root()
    sim.publish()


def targets_keys_threshold_2_one_signature(sim: Sim) -> None:
    sim.bump_root()
    sim.set_keys("targets", ["targets-2", "targets-3"], 2)
    sim.publish_root(["root-1"])
    sim.publish(sign_as={"targets": ["targets-2"]})


def targets_keys_threshold_2_both(sim: Sim) -> None:
    sim.publish()


def timestamp_v1000(sim: Sim) -> None:
    sim.timestamp.signed.version = 999
    sim.publish_timestamp_bumped()


def timestamp_back_to_1(sim: Sim) -> None:
    sim.timestamp.signed.version = 0
    sim.publish_timestamp_bumped()


def rotate_timestamp_key_and_reset(sim: Sim) -> None:
    sim.bump_root()
    sim.set_keys("timestamp", ["timestamp-2"], 1)
    sim.publish_root(["root-1"])
    sim.timestamp.signed.version = 0
    sim.publish_timestamp_bumped()


def bump_timestamp(sim: Sim) -> None:
    sim.publish_timestamp_bumped()


def timestamp_names_older_snapshot(sim: Sim) -> None:
    sim.timestamp.signed.snapshot_meta.version -= 1
    sim.publish_timestamp_bumped()


def snapshot_lists_older_targets(sim: Sim) -> None:
    # targets goes back a version (the file of that version is still served).
    sim.roles["targets"].signed.version -= 1
    sim.publish(bump=())


def expire(role: str):
    def step(sim: Sim) -> None:
        if role == "timestamp":
            sim.timestamp.signed.expires = PAST
            sim.publish_timestamp_bumped()
        elif role == "snapshot":
            sim.snapshot.signed.expires = PAST
            sim.publish(bump=())
        else:
            sim.roles[role].signed.expires = PAST
            sim.publish(bump=(role,))

    return step


def snapshot_mix_and_match(sim: Sim) -> None:
    # The timestamp pins one snapshot v+1; another snapshot v+1 (also validly signed) is served.
    sim.snapshot.signed.version += 1
    pinned = sim._sign(sim.snapshot, sim.signers["snapshot"])
    sim.timestamp.signed.snapshot_meta = sim._meta(pinned, sim.snapshot.signed.version)
    sim.timestamp.signed.version += 1
    sim.publish_timestamp()
    sim.snapshot.signed.unrecognized_fields["x-other"] = "another snapshot of the same version"
    sim._write(
        sim.role_file("snapshot", sim.snapshot.signed.version),
        sim._sign(sim.snapshot, sim.signers["snapshot"]),
    )


def targets_not_as_pinned(sim: Sim) -> None:
    # snapshot pins targets v+1 by hash; a different targets v+1 is served.
    sim.publish()
    md = sim.roles["targets"]
    md.signed.unrecognized_fields["x-other"] = "not the pinned bytes"
    sim._write(sim.role_file("targets", md.signed.version), sim._sign(md, sim.signers["targets"]))


def oversized_timestamp(sim: Sim) -> None:
    sim.timestamp.signed.unrecognized_fields["x-padding"] = "x" * 20000
    sim.publish_timestamp_bumped()


def snapshot_longer_than_pinned(sim: Sim) -> None:
    # Timestamp pins the snapshot's length (no hashes); the served snapshot is longer.
    sim.snapshot.signed.version += 1
    short = sim._sign(sim.snapshot, sim.signers["snapshot"])
    sim.timestamp.signed.snapshot_meta = MetaFile(
        version=sim.snapshot.signed.version, length=len(short)
    )
    sim.timestamp.signed.version += 1
    sim.publish_timestamp()
    sim.snapshot.signed.unrecognized_fields["x-padding"] = "y" * 1000
    sim._write(
        sim.role_file("snapshot", sim.snapshot.signed.version),
        sim._sign(sim.snapshot, sim.signers["snapshot"]),
    )


def tamper_target(kind: str):
    def step(sim: Sim) -> None:
        content = sim.contents["readme.txt"]
        bad = bytes([content[0] ^ 1]) + content[1:] if kind == "hash" else content + b"more"
        # Under the names clients fetch for the listed content: readme.txt and HASH.readme.txt.
        digest = hashlib.sha256(content).hexdigest()
        for name in ("readme.txt", f"{digest}.readme.txt"):
            with open(os.path.join(sim.serve, "targets", name), "wb") as f:
                f.write(bad)

    return step


def terminating_graph(terminating: bool):
    def step(sim: Sim) -> None:
        sim.publish_root()
        sim.delegate("targets", "a", ["a-1"], paths=["a/*"], terminating=terminating)
        sim.delegate("targets", "b", ["b-1"], paths=["a/*"])
        sim.add_target("a", "a/in-a.txt", b"listed by a\n")
        sim.add_target("b", "a/in-b.txt", b"listed by b\n")
        # A role listing a target outside its paths: never trusted for it.
        sim.delegate("targets", "c", ["c-1"], paths=["c/*"])
        sim.add_target("c", "d/outside.txt", b"outside c's paths\n")
        # Hash prefixes: "h" is trusted for h/ok.txt only.
        prefix = sha256_hex("h/ok.txt")[:4]
        assert not sha256_hex("h/no.txt").startswith(prefix)
        sim.delegate("targets", "h", ["h-1"], prefixes=[prefix])
        sim.add_target("h", "h/ok.txt", b"prefix matches\n")
        sim.add_target("h", "h/no.txt", b"prefix does not match\n")
        sim.publish()

    return step


def bins_graph(sim: Sim) -> None:
    sim.publish_root()
    bins = sim.delegate_bins("targets", "bin-key", 4, "bin")
    succinct = sim.roles["targets"].signed.delegations.succinct_roles
    right = succinct.get_role_for_target("pkg/right.txt")
    sim.add_target(right, "pkg/right.txt", b"in the right bin\n")
    wrong_for = succinct.get_role_for_target("pkg/wrong.txt")
    wrong = next(b for b in bins if b != wrong_for)
    sim.add_target(wrong, "pkg/wrong.txt", b"in another bin\n")
    sim.publish()


def cycle_graph(sim: Sim) -> None:
    sim.publish_root()
    sim.delegate("targets", "a", ["a-1"], paths=["*"])
    sim.delegate("a", "b", ["b-1"], paths=["*"])
    sim.delegate("b", "a", ["a-1"], paths=["*"])
    sim.add_target("b", "in-b.txt", b"in b, below a cycle\n")
    sim.publish()


def delegated_threshold_graph(sim: Sim) -> None:
    sim.publish_root()
    sim.delegate("targets", "two", ["two-1", "two-2"], threshold=2, paths=["two/*"])
    sim.add_target("two", "two/x.txt", b"needs two signatures\n")
    sim.publish(sign_as={"two": ["two-1"]})


def delegated_threshold_fixed(sim: Sim) -> None:
    sim.publish(bump=("two",))


def plain(sim: Sim) -> None:
    sim.publish_root()
    sim.add_target("targets", "readme.txt", b"top-level target\n")
    sim.publish()


def fresh_timestamp(sim: Sim) -> None:
    sim.timestamp.signed.expires = FUTURE
    sim.publish_timestamp_bumped()

def timestamp_same_version_other_content(sim: Sim) -> None:
    # Same timestamp version, different content (names another snapshot version).
    sim.timestamp.signed.snapshot_meta.version = 100
    sim.publish_timestamp()


def custom_fields_in_root(sim: Sim) -> None:
    r = sim.root.signed
    r.unrecognized_fields["custom-field"] = "value"
    keyid = r.roles["root"].keyids[0]
    r.keys[keyid].unrecognized_fields["extra-field"] = {"a": 1, "b": 2}
    r.roles["root"].unrecognized_fields["another-field"] = "value"
    sim.bump_root()
    sim.publish_root()


def unusual_role_names(sim: Sim) -> None:
    sim.publish_root()
    for i, name in enumerate(["?", "#", "/delegatedrole", "../delegatedrole"]):
        sim.delegate("targets", name, [f"unusual-{i}"], paths=["*"])
    sim.add_target("../delegatedrole", "found-last.txt", b"in ../delegatedrole\n")
    sim.publish()


def root_chain(spec: list[dict]):
    """Root versions 1..N from `spec`: each {"keys": [i...], "threshold": t, "sigs": [i...]}
    (keys named rk-i); then the other roles are published."""

    def step(sim: Sim) -> None:
        for i, v in enumerate(spec):
            r = sim.root.signed
            r.version = i + 1
            for old in list(r.roles["root"].keyids):
                r.revoke_key(old, "root")
            for k in v["keys"]:
                r.add_key(key(f"rk-{k}"), "root")
            r.roles["root"].threshold = v["threshold"]
            sim.signers["root"] = [f"rk-{k}" for k in v["keys"]]
            sim.publish_root([f"rk-{k}" for k in v["sigs"]])
        sim.publish()

    return step


def role_keys(spec: dict):
    """Steps 1-3: a new root version gives timestamp, snapshot, then targets the keys and
    threshold of `spec` ({"keys": [i...], "threshold": t, "sigs": [i...]}, keys named
    ROLE-k-i); that role is signed with `sigs` from then on."""

    def rotate(role: str):
        def step(sim: Sim) -> None:
            sim.bump_root()
            names = [f"{role}-k-{k}" for k in spec["keys"]]
            sim.set_keys(role, names, spec["threshold"])
            sim.publish_root()
            sim.signers[role] = [f"{role}-k-{k}" for k in spec["sigs"]]
            sim.publish()

        return step

    return [plain, rotate("timestamp"), rotate("snapshot"), rotate("targets")]


def graph(spec: dict):
    """Delegations {"delegations": [[delegator, role, paths, terminating]...],
    "targets": [[role, path]...]}: each role has one key of its own, threshold 1."""

    def step(sim: Sim) -> None:
        sim.publish_root()
        for delegator, role, paths, terminating in spec["delegations"]:
            sim.delegate(delegator, role, [f"g-{role}"], paths=paths, terminating=terminating)
        for role, path in spec["targets"]:
            sim.add_target(role, path, f"{path} by {role}\n".encode())
        sim.publish()

    return step


def snapshot_v99999(sim: Sim) -> None:
    sim.snapshot.signed.version = 99998
    sim.publish()


def rotate_snapshot_timestamp_keys_and_reset(sim: Sim) -> None:
    sim.bump_root()
    sim.set_keys("snapshot", ["snapshot-2"], 1)
    sim.set_keys("timestamp", ["timestamp-2"], 1)
    sim.publish_root()
    sim.snapshot.signed.version = 0
    sim.timestamp.signed.version = 0
    sim.publish()


def targets_v100(sim: Sim) -> None:
    sim.roles["targets"].signed.version = 99
    sim.publish()


def rotate_snapshot_key_and_reset_targets(sim: Sim) -> None:
    sim.bump_root()
    sim.set_keys("snapshot", ["snapshot-2"], 1)
    sim.publish_root()
    sim.roles["targets"].signed.version = 1
    sim.publish()


def snapshot_not_the_named_version(sim: Sim) -> None:
    # The timestamp names snapshot v+1; the snapshot served is v+2.
    sim.snapshot.signed.version += 1
    sim.timestamp.signed.snapshot_meta = MetaFile(version=sim.snapshot.signed.version)
    sim.publish_timestamp_bumped()
    sim.snapshot.signed.version += 1
    sim._write("snapshot.json", sim._sign(sim.snapshot, sim.signers["snapshot"]))


def stale(sim: Sim, md: Metadata, role: str) -> None:
    """Write a validly signed, expired copy of `md` as SERVE/stale-ROLE.json: what a client
    would hold after time passed (the test puts it in the clients' metadata folders)."""
    expires = md.signed.expires
    md.signed.expires = PAST
    data = sim._sign(md, sim.signers[role])
    md.signed.expires = expires
    with open(os.path.join(sim.serve, f"stale-{role}.json"), "wb") as f:
        f.write(data)


def stale_timestamp(stale_version: int, served_version: int):
    def step(sim: Sim) -> None:
        sim.timestamp.signed.version = stale_version
        stale(sim, sim.timestamp, "timestamp")
        sim.timestamp.signed.version = served_version
        sim.publish_timestamp()

    return step


def stale_snapshot_with_newer_targets(sim: Sim) -> None:
    # A stored snapshot (expired) that listed targets v50; the new snapshot lists targets v3.
    meta = sim.snapshot.signed.meta
    saved = meta["targets.json"]
    meta["targets.json"] = MetaFile(version=50)
    stale(sim, sim.snapshot, "snapshot")
    meta["targets.json"] = saved
    sim.publish()


def stale_snapshot_with_older_targets(sim: Sim) -> None:
    meta = sim.snapshot.signed.meta
    saved = meta["targets.json"]
    meta["targets.json"] = MetaFile(version=1)
    stale(sim, sim.snapshot, "snapshot")
    meta["targets.json"] = saved
    sim.publish()


def expired_delegated_role(sim: Sim) -> None:
    sim.publish_root()
    sim.delegate("targets", "a", ["a-1"], paths=["a/*"])
    sim.add_target("a", "a/x.txt", b"from an expired role\n")
    sim.roles["a"].signed.expires = PAST
    sim.publish()


def snapshot_threshold_above_key_count(sim: Sim) -> None:
    sim.bump_root()
    names = [f"snapshot-{i}" for i in range(1, 6)]
    sim.set_keys("snapshot", names, 6)
    sim.publish_root()
    sim.publish()


def one_key_under_two_key_ids(sim: Sim) -> None:
    # snapshot: threshold 2 over two key ids that are the same public key, signed under both.
    sim.bump_root()
    r = sim.root.signed
    for old in list(r.roles["snapshot"].keyids):
        r.revoke_key(old, "snapshot")
    public = key("snapshot-1")
    ids = []
    for label in ("a", "b"):
        k = SSlibKey(
            hashlib.sha256(f"label {label}".encode()).hexdigest(),
            public.keytype,
            public.scheme,
            dict(public.keyval),
        )
        r.add_key(k, "snapshot")
        ids.append(k.keyid)
    r.roles["snapshot"].threshold = 2
    sim.publish_root()
    sim.roles["targets"].signed.version += 1
    data = sim._sign(sim.roles["targets"], sim.signers["targets"])
    sim._write(sim.role_file("targets", sim.roles["targets"].signed.version), data)
    sim.snapshot.signed.meta["targets.json"] = sim._meta(data, sim.roles["targets"].signed.version)
    sim.snapshot.signed.version += 1
    sim.snapshot.signatures.clear()
    raw = signer("snapshot-1").sign(sim.snapshot.signed_bytes)
    from securesystemslib.signer import Signature

    for keyid in ids:
        sim.snapshot.signatures[keyid] = Signature(keyid, raw.signature)
    snap = sim.snapshot.to_bytes()
    sim._write(sim.role_file("snapshot", sim.snapshot.signed.version), snap)
    sim.timestamp.signed.snapshot_meta = sim._meta(snap, sim.snapshot.signed.version)
    sim.publish_timestamp_bumped()


def many_roots(sim: Sim) -> None:
    # Root versions 2..260, each signed by the same key.
    for _ in range(259):
        sim.bump_root()
        sim.publish_root()
    sim.publish()


def target_under_second_hash(sim: Sim) -> None:
    sim.publish_root()
    content = b"listed with two hashes\n"
    path = "two-hashes.txt"
    sim.roles["targets"].signed.targets[path] = TargetFile.from_data(
        path, content, ["sha256", "sha512"]
    )
    sim.publish()
    digest = hashlib.sha512(content).hexdigest()
    with open(os.path.join(sim.serve, "targets", f"{digest}.{path}"), "wb") as f:
        f.write(content)


def parametrized(name: str):
    kind, _, arg = name.partition("=")
    spec = json.loads(arg)
    if kind == "root_chain":
        return (True, True, [root_chain(spec)])
    if kind == "role_keys":
        return (True, True, role_keys(spec))
    if kind == "graph":
        return (True, True, [graph(spec)])
    return None


# name: (consistent snapshot, hashes/lengths in snapshot and timestamp meta, steps)
SCENARIOS = {
    "basic": (True, True, [basic_repo, basic_change_target]),
    "basic_not_consistent": (False, False, [basic_repo, basic_change_target]),
    "root_rotation": (True, True, [plain, rotate_root]),
    "root_not_signed_by_old": (True, True, [plain, root_not_signed_by_old]),
    "root_not_signed_by_new": (True, True, [plain, root_not_signed_by_new_threshold]),
    "root_version_skipped": (True, True, [plain, root_version_skipped]),
    "expired_intermediate_root": (True, True, [plain, expired_intermediate_root]),
    "expired_final_root": (True, True, [plain, expired_final_root]),
    "targets_threshold": (
        True,
        True,
        [plain, targets_keys_threshold_2_one_signature, targets_keys_threshold_2_both],
    ),
    "timestamp_rollback": (True, True, [plain, timestamp_v1000, timestamp_back_to_1]),
    "fast_forward_recovery": (
        True,
        True,
        [plain, timestamp_v1000, rotate_timestamp_key_and_reset, bump_timestamp],
    ),
    "snapshot_rollback": (False, False, [plain, timestamp_names_older_snapshot]),
    "targets_rollback": (False, False, [plain, snapshot_lists_older_targets]),
    "expired_timestamp": (True, True, [plain, expire("timestamp"), fresh_timestamp]),
    "expired_snapshot": (True, True, [plain, expire("snapshot")]),
    "expired_targets": (True, True, [plain, expire("targets")]),
    "mix_and_match": (True, True, [plain, snapshot_mix_and_match]),
    "targets_not_as_pinned": (True, True, [plain, targets_not_as_pinned]),
    "oversized_timestamp": (True, True, [plain, oversized_timestamp]),
    "snapshot_longer_than_pinned": (True, False, [plain, snapshot_longer_than_pinned]),
    "target_bad_hash": (True, True, [plain, tamper_target("hash")]),
    "target_bad_length": (False, True, [plain, tamper_target("length")]),
    "terminating": (True, True, [terminating_graph(True)]),
    "not_terminating": (True, True, [terminating_graph(False)]),
    "succinct_bins": (True, True, [bins_graph]),
    "cycle": (True, True, [cycle_graph]),
    "delegated_threshold": (True, True, [delegated_threshold_graph, delegated_threshold_fixed]),
    "timestamp_same_version": (True, True, [plain, timestamp_same_version_other_content]),
    "custom_fields": (True, True, [plain, custom_fields_in_root]),
    "unusual_role_names": (True, True, [unusual_role_names]),
    "snapshot_fast_forward_recovery": (
        True,
        True,
        [plain, snapshot_v99999, rotate_snapshot_timestamp_keys_and_reset],
    ),
    "targets_fast_forward_recovery": (
        True,
        True,
        [plain, targets_v100, rotate_snapshot_key_and_reset_targets],
    ),
    "snapshot_version_mismatch": (False, False, [plain, snapshot_not_the_named_version]),
    "expired_stored_timestamp": (True, True, [plain, stale_timestamp(3, 4), stale_timestamp(10, 5), stale_timestamp(5, 5)]),
    "expired_stored_snapshot": (
        True,
        True,
        [plain, stale_snapshot_with_older_targets, stale_snapshot_with_newer_targets],
    ),
    "expired_delegated_role": (True, True, [expired_delegated_role]),
    "snapshot_threshold_unreachable": (True, True, [plain, snapshot_threshold_above_key_count]),
    "one_key_two_key_ids": (True, True, [plain, one_key_under_two_key_ids]),
    "many_roots": (True, True, [plain, many_roots]),
    "target_under_second_hash": (True, True, [target_under_second_hash]),
}


def main() -> int:
    if sys.argv[1:] == ["--list"]:
        for name, (_, _, steps) in SCENARIOS.items():
            print(name, len(steps))
        return 0
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    state, serve, name, step = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    scenario = SCENARIOS.get(name) or ("=" in name and parametrized(name)) or None
    if scenario is None or not 0 <= step < len(scenario[2]):
        print(f"unknown scenario or step: {name} {step}", file=sys.stderr)
        return 2
    consistent, meta_hashes, steps = scenario
    os.makedirs(state, exist_ok=True)
    sim = Sim(serve, consistent, meta_hashes) if step == 0 else Sim.load(state)
    steps[step](sim)
    sim.save(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
