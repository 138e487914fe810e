"""The in-toto reference implementation (PyPI `in-toto` 3.1.0) against layouts Conclave signs.

usage:
  intoto_check.py make DIR
      a supply chain in DIR: an Ed25519 functionary key, the link of step "build" (in_toto_run
      creating foo.txt), and two unsigned layouts naming that step and key: root.layout (classic
      metablock) and root.dsse.layout (DSSE envelope)
  intoto_check.py verify DIR LAYOUT ROOT_JSON KEYID...
      in_toto_verify of LAYOUT with the links in DIR; the layout keys are the given key ids of
      ROOT_JSON's targets keys, each as its bare key object (custom fields such as the key owner
      removed: the key id a token key signs under). Exit 0 verified, 1 refused.
"""

import hashlib
import json
import os
import sys

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner


def make(d):
    from in_toto.models.layout import Layout, Step
    from in_toto.models.metadata import Envelope, Metablock
    from in_toto.runlib import in_toto_run

    os.makedirs(d, exist_ok=True)
    os.chdir(d)
    func = CryptoSigner.generate_ed25519()
    with open("foo.txt", "w") as f:
        f.write("built\n")
    link = in_toto_run("build", [], ["foo.txt"], ["true"], signer=func, record_streams=False)
    link.dump(f"build.{func.public_key.keyid[:8]}.link")
    layout = Layout()
    layout.set_relative_expiration(months=6)
    keyd = func.public_key.to_dict()
    keyd["keyid"] = func.public_key.keyid
    layout.keys = {func.public_key.keyid: keyd}
    step = Step(name="build")
    step.pubkeys = [func.public_key.keyid]
    step.set_expected_command_from_string("true")
    step.expected_products = [["CREATE", "foo.txt"], ["DISALLOW", "*"]]
    layout.steps = [step]
    Metablock(signed=layout).dump("root.layout")
    Envelope.from_signable(layout).dump("root.dsse.layout")
    print(json.dumps({"functionary": func.public_key.keyid}))


def verify(d, layout_file, root_file, keyids):
    from in_toto.models.metadata import Metadata
    from in_toto.verifylib import in_toto_verify

    with open(root_file) as f:
        root = json.load(f)["signed"]
    layout_keys = {}
    for tuf_id in keyids:
        k = root["keys"][tuf_id]
        bare = {"keytype": k["keytype"], "scheme": k["scheme"], "keyval": k["keyval"]}
        keyid = hashlib.sha256(encode_canonical(bare).encode()).hexdigest()
        layout_keys[keyid] = dict(bare, keyid=keyid)
    metadata = Metadata.load(layout_file)
    try:
        in_toto_verify(metadata, layout_keys, link_dir_path=d)
    except Exception as e:  # every in-toto verification failure
        print(f"REFUSED {type(e).__name__}: {e}")
        sys.exit(1)
    print("VERIFIED")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        verify(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
