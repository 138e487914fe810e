"""Sigstore's Rekor client code (sigstore-python 4.5.1, from PyPI) checks a Conclave key-event log.

Rekor publishes its tree heads as signed-note checkpoints signed with ECDSA P-256 (signed-note
type 0x02: key ID = first 4 bytes of SHA-256 of the DER SPKI key, ASN.1 signature over SHA-256)
and proves entries with RFC 6962 inclusion proofs. This script feeds Conclave's log to that code:
  - `sigstore._internal.rekor.checkpoint.SignedCheckpoint.from_text` parses the checkpoint,
    `SignedNote.verify` with a `sigstore._internal.trust.Keyring` checks the signature of every
    ECDSA P-256 root key of ROOT_JSON (the keys must reach the root role's threshold);
  - `sigstore._internal.merkle.verify_merkle_inclusion` checks Conclave's inclusion proof of
    every entry (leaf: securesystemslib's canonical JSON of the entry) against the checkpoint.
These are sigstore-python's internal modules (its public API verifies whole Sigstore bundles).

usage: transparency_sigstore.py LOG_DIR PROOFS_JSON ROOT_JSON   (exit 0 all verified, 1 not)
"""

import base64
import json
import sys
from types import SimpleNamespace

from cryptography.hazmat.primitives import serialization
from securesystemslib.formats import encode_canonical
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore._internal.rekor.checkpoint import SignedCheckpoint
from sigstore._internal.trust import Keyring, key_id
from sigstore.errors import VerificationError
from sigstore_models.common import v1 as common_v1


def main():
    log_dir, proofs_file, root_file = sys.argv[1:4]
    with open(f"{log_dir}/checkpoint", encoding="utf-8") as f:
        cp = SignedCheckpoint.from_text(f.read())
    with open(f"{log_dir}/entries.jsonl", encoding="utf-8") as f:
        entries = [json.loads(l) for l in f.read().split("\n") if l]
    with open(proofs_file, encoding="utf-8") as f:
        proofs = json.load(f)
    with open(root_file, encoding="utf-8") as f:
        signed = json.load(f)["signed"]
    out = {"errors": [], "size": cp.checkpoint.log_size, "signed_by": []}
    root_hash = bytes.fromhex(cp.checkpoint.log_hash)
    role = signed["roles"]["root"]
    for keyid in role["keyids"]:
        key = signed["keys"][keyid]
        if key["scheme"] != "ecdsa-sha2-nistp256":
            continue
        pk = serialization.load_pem_public_key(key["keyval"]["public"].encode())
        der = pk.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keyring = Keyring(
            [
                common_v1.PublicKey(
                    raw_bytes=base64.b64encode(der),
                    key_details=common_v1.PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
                )
            ]
        )
        try:
            cp.signed_note.verify(keyring, key_id(pk))
            out["signed_by"].append(keyid)
        except VerificationError as e:
            if "Signature not found" not in str(e):
                out["errors"].append(f"root key {keyid}: {e}")
    if len(out["signed_by"]) < role["threshold"]:
        out["errors"].append(
            f"{len(out['signed_by'])} root key signature(s), threshold {role['threshold']}"
        )
    verified = 0
    for p in proofs["inclusion"]:
        i = p["index"]
        entry = SimpleNamespace(
            _inner=SimpleNamespace(
                inclusion_proof=SimpleNamespace(
                    log_index=i,
                    tree_size=cp.checkpoint.log_size,
                    hashes=[bytes.fromhex(h) for h in p["path"]],
                    root_hash=root_hash,
                ),
                canonicalized_body=encode_canonical(entries[i]).encode("utf-8"),
            )
        )
        try:
            verify_merkle_inclusion(entry)
            verified += 1
        except VerificationError as e:
            out["errors"].append(f"entry {i}: {e}")
    out["inclusion_verified"] = verified
    out["ok"] = not out["errors"]
    print(json.dumps(out, indent=2))
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
