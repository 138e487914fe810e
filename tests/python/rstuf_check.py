#!/usr/bin/env python3
"""Check Conclave's RSTUF files with python-tuf 7, rule by rule (docs/pipeline-rstuf.md).

Usage:
  rstuf_check.py ceremony PAYLOAD_JSON SIGNATURES_EXPECTED
      ceremony-payload.json: settings.roles with root/timestamp/snapshot/targets expirations
      (integers >= 1) and exactly one of bins (number_of_delegated_bins a power of two,
      2..16384, expiration >= 1) and delegations; "timeout": 300; metadata.root is root v1
      whose targets, snapshot and timestamp have ONE key, the same, threshold 1, carrying
      x-rstuf-online-key-uri; every root key named in x-rstuf-key-name; keys carry only
      x-rstuf-* custom fields; root threshold >= 2; exactly SIGNATURES_EXPECTED valid root
      signatures (fewer than the threshold: pending).
  rstuf_check.py signed ROOT_JSON SIGN_PAYLOAD_JSON...
      Adds each sign-payload.json's signature ({"role": "root", "signature": {"keyid", "sig"}})
      to ROOT_JSON (a root, a payload's metadata.root, or RSTUF's pending file), checks each
      verifies by that root's root key, and that the result meets root's threshold (for a
      pending file with trusted_root: the thresholds of trusted_root and its own, the chain
      rule); writes nothing.
  rstuf_check.py update PAYLOAD_JSON TRUSTED_ROOT_JSON
      update-payload.json: {"metadata": {"root": ROOT}}, ROOT is version TRUSTED + 1, in
      RSTUF's model, with at least one valid signature by a root key of TRUSTED or its own.
Exit 0 when every rule holds (each printed), 1 with the first broken rule on stderr, 2 usage.
"""

import json
import sys

from securesystemslib.signer import Signature
from tuf.api.metadata import Metadata, Root

ONLINE = ("targets", "snapshot", "timestamp")


class Broken(Exception):
    pass


def rule(ok: bool, text: str) -> None:
    if not ok:
        raise Broken(text)
    print(f"ok: {text}")


def check_model(root: Root, version: int) -> None:
    rule(root.version == version, f"root version is {version}")
    online = [root.roles[r].keyids for r in ONLINE]
    rule(all(len(k) == 1 for k in online), "targets, snapshot and timestamp have one key each")
    rule(len({k[0] for k in online}) == 1, "that key is the same online key for the three roles")
    rule(all(root.roles[r].threshold == 1 for r in ONLINE), "the online roles have threshold 1")
    key = root.keys[online[0][0]]
    uri = key.unrecognized_fields.get("x-rstuf-online-key-uri")
    rule(isinstance(uri, str) and ":" in uri, f"the online key carries x-rstuf-online-key-uri ({uri})")
    rule(online[0][0] not in root.roles["root"].keyids, "the online key is not a root key")
    for keyid in root.roles["root"].keyids:
        name = root.keys[keyid].unrecognized_fields.get("x-rstuf-key-name")
        rule(isinstance(name, str) and name != "", f"root key {keyid[:16]} is named ({name})")
    for keyid, k in root.keys.items():
        extra = [f for f in k.unrecognized_fields if not f.startswith("x-rstuf-")]
        rule(not extra, f"key {keyid[:16]} carries only x-rstuf-* fields")
    rule(root.roles["root"].threshold >= 2, "root threshold is at least 2")


def ceremony(path: str, expected: int) -> None:
    p = json.load(open(path))
    rule(set(p) == {"settings", "metadata", "timeout"}, "members: settings, metadata, timeout")
    rule(p["timeout"] == 300, "timeout is 300")
    roles = p["settings"]["roles"]
    for r in ("root", "timestamp", "snapshot", "targets"):
        e = roles[r]["expiration"]
        rule(isinstance(e, int) and e >= 1, f"settings.roles.{r}.expiration is {e} days")
    rule(("bins" in roles) != ("delegations" in roles), "exactly one of bins and delegations")
    if "bins" in roles:
        n = roles["bins"]["number_of_delegated_bins"]
        rule(n in [2**i for i in range(1, 15)], f"number_of_delegated_bins {n} is a power of two in 2..16384")
        rule(roles["bins"]["expiration"] >= 1, "bins expiration at least 1 day")
    md = Metadata[Root].from_dict(p["metadata"]["root"])
    check_model(md.signed, 1)
    result = md.signed.get_verification_result(Root.type, md.signed_bytes, md.signatures)
    rule(len(result.signed) == expected, f"{len(result.signed)} valid root signature(s), expected {expected}")
    rule(len(md.signatures) == expected, "no other signature in the file")
    pending = not result.verified
    rule(pending == (expected < md.signed.roles["root"].threshold),
         "pending (below threshold)" if pending else "root meets its threshold")


def load_root(path: str) -> Metadata:
    d = json.load(open(path))
    if "data" in d:
        d = d["data"]
    if "metadata" in d:
        d = d["metadata"]["root"]
    return Metadata[Root].from_dict(d)


def load_trusted(path: str):
    d = json.load(open(path)).get("data", {}).get("metadata", {}).get("trusted_root")
    return Metadata[Root].from_dict(d) if d else None


def signed(root_path: str, payloads: list[str]) -> None:
    md = load_root(root_path)
    for path in payloads:
        s = json.load(open(path))
        rule(set(s) == {"role", "signature"} and s["role"] == "root", f"{path}: role root")
        sig = Signature.from_dict(dict(s["signature"]))
        key = md.signed.get_key(sig.keyid)
        rule(sig.keyid in md.signed.roles["root"].keyids, f"{path}: key {sig.keyid[:16]} is a root key")
        key.verify_signature(sig, md.signed_bytes)
        print(f"ok: {path}: signature by {key.unrecognized_fields.get('x-rstuf-key-name')} verifies")
        md.signatures[sig.keyid] = sig
    trusted = load_trusted(root_path)
    if trusted is None:
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
        print(f"ok: root v{md.signed.version} meets its threshold with these signatures")
    else:
        r = md.signed.get_root_verification_result(trusted.signed, md.signed_bytes, md.signatures)
        rule(r.verified, f"root v{md.signed.version} meets the thresholds of trusted root "
             f"v{trusted.signed.version} and its own with these signatures")


def update(path: str, trusted_path: str) -> None:
    p = json.load(open(path))
    rule(set(p) == {"metadata"} and set(p["metadata"]) == {"root"}, "members: metadata.root")
    trusted = load_root(trusted_path).signed
    md = Metadata[Root].from_dict(p["metadata"]["root"])
    check_model(md.signed, trusted.version + 1)
    r = md.signed.get_root_verification_result(trusted, md.signed_bytes, md.signatures)
    rule(bool(r.first.signed or r.second.signed), "at least one valid signature by a root key")


def main() -> int:
    a = sys.argv[1:]
    try:
        if len(a) == 3 and a[0] == "ceremony":
            ceremony(a[1], int(a[2]))
        elif len(a) >= 3 and a[0] == "signed":
            signed(a[1], a[2:])
        elif len(a) == 3 and a[0] == "update":
            update(a[1], a[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as e:  # noqa: BLE001 - any failure is a verdict
        print(f"rstuf_check.py: BROKEN: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
