#!/usr/bin/env python3
"""Verify the offline part of a ceremony's output with python-tuf 7 (the reference client).

Usage: verify_offline.py ROOT_JSON [TARGETS_JSON]

ROOT_JSON must be signed by a threshold of its own root keys; TARGETS_JSON (optional) by a
threshold of the root's targets keys. Exit 0 valid, 1 verification failed (reason on stderr),
2 usage error.
"""

import sys

from tuf.api.metadata import Metadata, Root, Targets


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        root = Metadata[Root].from_file(sys.argv[1])
        root.signed.verify_delegate(Root.type, root.signed_bytes, root.signatures)
        print(f"root v{root.signed.version}: verified by its own root keys")
        if len(sys.argv) == 3:
            targets = Metadata[Targets].from_file(sys.argv[2])
            root.signed.verify_delegate(Targets.type, targets.signed_bytes, targets.signatures)
            print(f"targets v{targets.signed.version}: verified by root's targets keys")
    except Exception as e:  # noqa: BLE001 - any failure is a verdict
        print(f"verify_offline.py: INVALID: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
