"""Independent check of a Conclave key-event log, written from RFC 9162 and the C2SP signed-note
and tlog-checkpoint specifications (no Conclave code): Merkle tree hash, inclusion and consistency
proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2), checkpoint parsing and note
signature verification with python `cryptography` (Ed25519 type 0x01, ECDSA P-256 type 0x02,
ECDSA P-384 under 0xff "ecdsa-sha2-nistp384" as docs/transparency.md defines it).

Leaves: securesystemslib's canonical JSON of each line of entries.jsonl.

usage: transparency_check.py LOG_DIR PROOFS_JSON [TRUSTED_ROOT_JSON]

PROOFS_JSON is the output of `conclave log proof --log LOG_DIR` (proofs made by Conclave, checked
here). Root keys come from TRUSTED_ROOT_JSON when given, else from replaying the log's root
key-added/key-removed/threshold events. Prints a JSON summary; exit 0 when every check passes,
1 otherwise.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.formats import encode_canonical


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, path):
    """RFC 9162 2.1.4.2 (first < second)."""
    if first == second:
        return not path and first_hash == second_hash
    if not path or first == 0 or first > second:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_hash and sr == second_hash


def parse_note(text):
    """signed-note: text, blank line, signature lines '— NAME BASE64(keyid4 || sig)'."""
    split = text.rindex("\n\n")
    body = text[: split + 1]
    sigs = []
    for line in text[split + 2 :].splitlines():
        assert line.startswith("\u2014 "), line
        name, b64 = line[2:].split(" ")
        raw = base64.b64decode(b64, validate=True)
        sigs.append((name, raw[:4], raw[4:]))
    lines = body.rstrip("\n").split("\n")
    assert len(lines) == 3, lines
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    return body, origin, size, root, sigs


def load_key(key):
    """A TUF key object -> (kind, cryptography public key)."""
    public = key["keyval"]["public"]
    if key["scheme"] == "ed25519":
        return "ed25519", ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    pk = serialization.load_pem_public_key(public.encode())
    return key["scheme"], pk


def note_key_id(name, kind, pk):
    if kind == "ed25519":
        raw = pk.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return sha256(name.encode() + b"\n\x01" + raw)[:4]
    der = pk.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if kind == "ecdsa-sha2-nistp256":
        return sha256(der)[:4]
    if kind == "ecdsa-sha2-nistp384":
        return sha256(name.encode() + b"\n\xff" + b"ecdsa-sha2-nistp384" + der)[:4]
    raise ValueError(kind)


def verify_sig(kind, pk, msg, sig):
    try:
        if kind == "ed25519":
            pk.verify(sig, msg)
        elif kind == "ecdsa-sha2-nistp256":
            pk.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        else:
            pk.verify(sig, msg, ec.ECDSA(hashes.SHA384()))
        return True
    except InvalidSignature:
        return False


def root_keys_from_log(entries):
    keys, threshold = {}, None
    for e in entries:
        if e.get("role") != "root" or "delegated_by" in e:
            continue
        if e["event"] == "role-added":
            threshold = e["threshold"]
        elif e["event"] == "threshold-changed":
            threshold = e["to"]
        elif e["event"] == "key-added":
            keys[e["keyid"]] = e["key"]
        elif e["event"] == "key-removed":
            del keys[e["keyid"]]
    return keys, threshold


def main():
    log_dir, proofs_file = sys.argv[1], sys.argv[2]
    with open(f"{log_dir}/entries.jsonl", encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l]
    entries = [json.loads(l) for l in lines]
    leaves = [leaf_hash(encode_canonical(e).encode("utf-8")) for e in entries]
    with open(f"{log_dir}/checkpoint", encoding="utf-8") as f:
        body, origin, size, cp_root, sigs = parse_note(f.read())
    with open(proofs_file, encoding="utf-8") as f:
        proofs = json.load(f)
    out = {"size": len(leaves), "errors": []}
    root = mth(leaves)
    out["root_hash"] = root.hex()
    if size != len(leaves) or root != cp_root:
        out["errors"].append(
            f"checkpoint (size {size}, root {cp_root.hex()}) does not match the entries "
            f"(size {len(leaves)}, root {root.hex()})"
        )
    # Conclave's inclusion proofs, verified here against the checkpoint's root hash.
    inc_ok = 0
    for p in proofs["inclusion"]:
        i = p["index"]
        path = [bytes.fromhex(h) for h in p["path"]]
        if leaves[i].hex() != p["leaf_hash"]:
            out["errors"].append(f"entry {i}: leaf hash differs from Conclave's")
        elif verify_inclusion(i, size, leaves[i], path, cp_root):
            inc_ok += 1
        else:
            out["errors"].append(f"entry {i}: inclusion proof does not verify")
    out["inclusion_verified"] = inc_ok
    # Consistency proofs from older trees (old roots recomputed here from the entries).
    cons = []
    for p in proofs["consistency"]:
        m = p["from"]
        old = mth(leaves[:m])
        path = [bytes.fromhex(h) for h in p["path"]]
        if verify_consistency(m, size, old, cp_root, path):
            cons.append(m)
        else:
            out["errors"].append(f"consistency proof from size {m} does not verify")
    out["consistency_verified_from"] = cons
    # Signatures by the root keys.
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            signed = json.load(f)["signed"]
        keys = {k: signed["keys"][k] for k in signed["roles"]["root"]["keyids"]}
        threshold = signed["roles"]["root"]["threshold"]
    else:
        keys, threshold = root_keys_from_log(entries)
    signed_by, materials = [], set()
    for keyid, key in sorted(keys.items()):
        kind, pk = load_key(key)
        kid = note_key_id(origin, kind, pk)
        for name, sig_kid, sig in sigs:
            if name == origin and sig_kid == kid:
                material = pk.public_bytes(
                    serialization.Encoding.DER,
                    serialization.PublicFormat.SubjectPublicKeyInfo,
                )
                if not verify_sig(kind, pk, body.encode("utf-8"), sig):
                    out["errors"].append(f"signature by root key {keyid} does not verify")
                elif material not in materials:
                    materials.add(material)
                    signed_by.append(keyid)
    out["signed_by"] = signed_by
    out["threshold"] = threshold
    if threshold is None or len(signed_by) < threshold:
        out["errors"].append(f"{len(signed_by)} root key signature(s), threshold {threshold}")
    out["ok"] = not out["errors"]
    print(json.dumps(out, indent=2))
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
