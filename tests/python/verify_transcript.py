#!/usr/bin/env python3
"""An independent check of a Conclave ceremony transcript, with securesystemslib only.

Usage: verify_transcript.py TRANSCRIPT [--artifacts DIR]

Written from docs/auditor-guide.md ("Record format"), not from the Rust code, so the two
implementations can disagree if the format is not what the guide says:

  * every line is a JSON object; seq counts from 0; prev is the previous record's hash (64 zeros
    first); hash is sha256(encode_canonical(record without "hash")); times never go backwards;
  * the seal record lists artifacts and signers; every listed signer has one seal-signature
    whose key id is sha256(encode_canonical(key)) and whose signature verifies (securesystemslib
    SSlibKey) over encode_canonical({"_type": "conclave-transcript-seal", "head": SEAL_HASH,
    "seq": SEAL_SEQ});
  * the seal-signature records come in the order the seal lists their signers;
  * nothing follows the last listed signer's signature;
  * with --artifacts, every listed artifact has its sha256 and length.

Prints "ok SEAL_HASH" and exits 0, or prints "bad line N: reason" and exits 1; 2 on usage errors.
"""

import hashlib
import json
import os
import sys

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Signature, SSlibKey


def canon(doc) -> bytes:
    return encode_canonical(doc).encode("utf-8")


def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate member {k!r}")
        seen[k] = v
    return seen


def check(path: str, artifacts: str | None) -> str:
    with open(path, "rb") as f:
        data = f.read()
    if not data.endswith(b"\n"):
        raise Bad(0, "no final newline")
    prev = "0" * 64
    last_time = ""
    records = []
    for n, line in enumerate(data[:-1].split(b"\n"), start=1):
        try:
            rec = json.loads(line, object_pairs_hook=no_duplicates)
        except ValueError as e:
            raise Bad(n, f"not JSON: {e}") from None
        body = {k: v for k, v in rec.items() if k != "hash"}
        if rec.get("seq") != n - 1:
            raise Bad(n, f"seq {rec.get('seq')!r}, expected {n - 1}")
        if rec.get("prev") != prev:
            raise Bad(n, "prev is not the previous record's hash")
        digest = hashlib.sha256(canon(body)).hexdigest()
        if rec.get("hash") != digest:
            raise Bad(n, "hash mismatch")
        if rec["time"] < last_time:
            raise Bad(n, "time goes backwards")
        prev, last_time = digest, rec["time"]
        records.append(rec)
    seals = [i for i, r in enumerate(records) if r["action"] == "seal"]
    if len(seals) != 1:
        raise Bad(len(records), f"{len(seals)} seal records")
    seal = records[seals[0]]
    statement = canon(
        {"_type": "conclave-transcript-seal", "head": seal["hash"], "seq": seal["seq"]}
    )
    signed = set()
    for i, rec in enumerate(records[seals[0] + 1 :], start=seals[0] + 2):
        if signed == set(seal["details"]["signers"]):
            raise Bad(i, "a record follows the last listed signature")
        if rec["action"] != "seal-signature":
            continue
        d = rec["details"]
        keyid = hashlib.sha256(canon(d["key"])).hexdigest()
        if keyid != d["keyid"] or keyid not in seal["details"]["signers"] or keyid in signed:
            raise Bad(i, "key id not the key's, not listed, or signing twice")
        if keyid != seal["details"]["signers"][len(signed)]:
            raise Bad(i, "signed out of the order the seal lists its signers")
        key = SSlibKey.from_dict(keyid, dict(d["key"]))
        try:
            key.verify_signature(Signature(keyid, d["sig"]), statement)
        except Exception as e:  # noqa: BLE001 - any failure is a bad signature
            raise Bad(i, f"signature does not verify: {type(e).__name__}") from None
        signed.add(keyid)
    if signed != set(seal["details"]["signers"]):
        raise Bad(len(records), "a listed signer did not sign")
    if artifacts is not None:
        for a in seal["details"]["artifacts"]:
            try:
                with open(os.path.join(artifacts, a["name"]), "rb") as f:
                    content = f.read()
            except OSError as e:
                raise Bad(seals[0] + 1, f"artifact {a['name']}: {e}") from None
            if len(content) != a["length"] or hashlib.sha256(content).hexdigest() != a["sha256"]:
                raise Bad(seals[0] + 1, f"artifact {a['name']} differs")
    return seal["hash"]


class Bad(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(f"bad line {line}: {reason}")


def main() -> int:
    args = sys.argv[1:]
    artifacts = None
    if len(args) == 3 and args[1] == "--artifacts":
        artifacts = args[2]
        args = args[:1]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print("ok", check(args[0], artifacts))
        return 0
    except Bad as e:
        print(e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
