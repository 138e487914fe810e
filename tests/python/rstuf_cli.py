#!/usr/bin/env python3
"""Drive RSTUF's own CLI (repository-service-tuf 1.0.0b1, `rstuf`) on a terminal, as an operator
would, to check that it reads Conclave's files. No network: only --dry-run with --in.

Usage:
  rstuf_cli.py sign PENDING_JSON KEY_NAME KEY_PEM PASSWORD OUT_JSON
      `rstuf admin metadata sign --in PENDING_JSON --dry-run --out OUT_JSON`: select root, select
      the key named KEY_NAME among those still missing, sign with the encrypted PEM key file.
  rstuf_cli.py update ROOT_JSON KEY_NAME KEY_PEM PASSWORD OUT_JSON
      `rstuf admin metadata update --in ROOT_JSON --dry-run --out OUT_JSON`: keep expiry,
      threshold, root keys and online key; sign the next version with KEY_NAME's PEM key, then
      continue (RSTUF collects the other signatures).
  rstuf_cli.py complete PENDING_JSON SIGN_PAYLOAD_JSON OUT_JSON
      Load SIGN_PAYLOAD_JSON as RSTUF's CLI models it (its `SignPayload` dataclass, the
      signature through securesystemslib's `Signature`), put the signature into the pending
      root as RSTUF's API does when it accepts a sign payload, write the new pending file to
      OUT_JSON, and run `rstuf admin metadata sign --in OUT_JSON --dry-run`: RSTUF's CLI checks
      the root with its own verification and must answer "Metadata already fully signed."
  rstuf_cli.py payload CEREMONY_PAYLOAD_JSON
      Load ceremony-payload.json with RSTUF's CLI models (its CeremonyPayload, Settings, Roles,
      Role and Metadatas dataclasses, as `rstuf admin ceremony` builds the payload) and its
      custom delegations with python-tuf's `Delegations.from_dict` (as RSTUF's worker loads
      them); prints the delegated roles. No terminal: nothing is prompted.

The CLI asks through rich prompts, beaupy menus (arrow keys) and prompt_toolkit: this script
answers them on a pseudo-terminal (pexpect). Everything the CLI printed is echoed to stdout.
Exit 0 when the CLI finished and wrote OUT_JSON, 1 otherwise.
"""

import os
import re
import sys
import tempfile

import pexpect

DOWN = "\x1b[B"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def clean(text: str) -> str:
    return ANSI.sub("", text)


class Cli:
    def __init__(self, args: list[str]):
        self.home = tempfile.mkdtemp(prefix="rstuf-home-")
        config = os.path.join(self.home, "rstuf.yml")
        rstuf = os.path.join(os.path.dirname(sys.executable), "rstuf")
        env = dict(os.environ, HOME=self.home, COLUMNS="200", LINES="60", TERM="xterm")
        # No proxy and no server: a dry run must not reach any network.
        for k in list(env):
            if k.lower().endswith("_proxy"):
                del env[k]
        self.p = pexpect.spawn(
            rstuf, ["-c", config, *args], env=env, encoding="utf-8", timeout=60,
            dimensions=(60, 200),
        )
        self.seen = ""

    def expect(self, pattern: str) -> str:
        self.p.expect(pattern)
        chunk = clean(self.p.before + self.p.after)
        self.seen += chunk
        sys.stdout.write(chunk)
        return chunk

    def select(self, options_text: str, wanted: str) -> None:
        """Choose `wanted` in a beaupy menu whose options are the '- name' lines printed."""
        names = re.findall(r"^- (\S+)\s*$", options_text, flags=re.M)
        if wanted not in names:
            raise SystemExit(f"rstuf_cli.py: {wanted!r} not offered; offered: {names}")
        self.p.send(DOWN * names.index(wanted))
        self.p.send("\r")

    def menu(self, index: int) -> None:
        self.p.send(DOWN * index)
        self.p.send("\r")

    def sign_with_pem(self, name: str, pem: str, password: str) -> None:
        # _add_signature_prompt: [HSM, Key PEM File]
        self.expect("Key PEM File")
        self.menu(1)
        self.expect("path")
        self.expect(re.escape(name) + r".*: ")
        self.p.sendline(pem)
        self.expect("password")
        self.expect(": ")
        self.p.sendline(password)

    def finish(self, out: str) -> int:
        self.p.expect(pexpect.EOF)
        rest = clean(self.p.before)
        self.seen += rest
        sys.stdout.write(rest)
        self.p.close()
        signed = re.search(r"Signed metadata with key .?.?.?.?\w", self.seen)
        if self.p.exitstatus != 0 or not os.path.exists(out) or not signed:
            print(f"rstuf_cli.py: rstuf exited {self.p.exitstatus}", file=sys.stderr)
            return 1
        return 0


def sign(pending: str, name: str, pem: str, password: str, out: str) -> int:
    cli = Cli(["admin", "metadata", "sign", "--in", pending, "--dry-run", "--out", out])
    cli.expect("Select a role to sign")
    cli.expect("root")
    cli.menu(0)
    text = cli.expect("Select key for signing")
    cli.select(text[text.rfind("missing from any of"):], name)
    cli.sign_with_pem(name, pem, password)
    return cli.finish(out)


def update(root: str, name: str, pem: str, password: str, out: str) -> int:
    cli = Cli(["admin", "metadata", "update", "--in", root, "--dry-run", "--out", out])
    cli.expect(r"change the expiry date\?.*: ")
    cli.p.sendline("n")
    cli.expect(r"change the threshold\?.*: ")
    cli.p.sendline("n")
    cli.expect("is met")
    cli.expect("continue")
    cli.menu(0)  # continue, add, remove
    cli.expect(r"change the online key\?.*: ")
    cli.p.sendline("n")
    text = cli.expect("Select a key for signing")
    cli.select(text[text.rfind("missing from any of"):], name)
    cli.sign_with_pem(name, pem, password)
    # One signature of the threshold here: continue (RSTUF collects the rest).
    cli.expect("or continue")
    cli.menu(0)
    return cli.finish(out)


def complete(pending: str, payload: str, out: str) -> int:
    import json

    from securesystemslib.signer import Signature

    from repository_service_tuf.cli.admin.helpers import SignPayload

    p = SignPayload(**json.load(open(payload)))
    if p.role != "root":
        raise SystemExit(f"rstuf_cli.py: {payload}: role {p.role!r}")
    sig = Signature.from_dict(dict(p.signature))
    data = json.load(open(pending))
    root = data["data"]["metadata"]["root"]
    root["signatures"] = [s for s in root["signatures"] if s["keyid"] != sig.keyid]
    root["signatures"].append(sig.to_dict())
    with open(out, "w") as f:
        json.dump(data, f, indent=2)
    cli = Cli(["admin", "metadata", "sign", "--in", out, "--dry-run"])
    cli.expect("Select a role to sign")
    cli.expect("root")
    cli.menu(0)
    cli.expect("Metadata already fully signed")
    cli.p.expect(pexpect.EOF)
    cli.p.close()
    print(f"\nrstuf_cli.py: {payload}: accepted; RSTUF's CLI finds root fully signed")
    return 0


def payload(path: str) -> int:
    import copy
    import json

    from tuf.api.metadata import Delegations, Metadata, Root

    from repository_service_tuf.cli.admin.helpers import (
        CeremonyPayload,
        Metadatas,
        Role,
        Roles,
        Settings,
    )

    p = json.load(open(path))
    r = p["settings"]["roles"]
    if set(r) != {"root", "timestamp", "snapshot", "targets", "delegations"}:
        raise SystemExit(f"rstuf_cli.py: {path}: settings.roles members {sorted(r)}")
    d = Delegations.from_dict(copy.deepcopy(r["delegations"]))
    if d.roles is None or d.succinct_roles is not None:
        raise SystemExit(f"rstuf_cli.py: {path}: not custom delegations")
    roles = Roles(
        Role(**r["root"]),
        Role(**r["timestamp"]),
        Role(**r["snapshot"]),
        Role(**r["targets"]),
        None,
        d.to_dict(),
    )
    CeremonyPayload(Settings(roles), Metadatas(p["metadata"]["root"]), p["timeout"])
    Metadata[Root].from_dict(copy.deepcopy(p["metadata"]["root"]))
    if d.to_dict() != r["delegations"]:
        raise SystemExit(f"rstuf_cli.py: {path}: delegations do not round-trip through python-tuf")
    names = ", ".join(d.roles)
    print(f"rstuf_cli.py: {path}: RSTUF's models load it; delegated roles: {names}")
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "payload":
        return payload(sys.argv[2])
    if len(sys.argv) == 5 and sys.argv[1] == "complete":
        try:
            return complete(*sys.argv[2:])
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            print(f"\nrstuf_cli.py: the CLI stopped answering ({type(e).__name__})", file=sys.stderr)
            return 1
    if len(sys.argv) != 7 or sys.argv[1] not in ("sign", "update"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, name, pem, password, out = sys.argv[1:]
    try:
        return (sign if mode == "sign" else update)(path, name, pem, password, out)
    except (pexpect.TIMEOUT, pexpect.EOF) as e:
        print(f"\nrstuf_cli.py: the CLI stopped answering ({type(e).__name__})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
