#!/usr/bin/env python3
"""python-tuf's ngclient behind the tuf-conformance CLIENT protocol, so that
tests/conformance_client.rs drives the reference client exactly as it drives
conclave-conformance-client:

  ngclient_cli.py --metadata-dir DIR init TRUSTED_ROOT
  ngclient_cli.py --metadata-dir DIR --metadata-url URL refresh
  ngclient_cli.py --metadata-dir DIR --metadata-url URL --target-name PATH [...]
                  --target-base-url URL --target-dir TDIR download

Exit status 0 when the command succeeded, 1 when any part failed (the error on stderr).
Targets are stored in TDIR under urllib.parse.quote(PATH, "") (ngclient's own naming).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from tuf.ngclient import Updater


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--metadata-dir", required=True)
    p.add_argument("--metadata-url")
    p.add_argument("--target-name", action="append", default=[])
    p.add_argument("--target-base-url")
    p.add_argument("--target-dir")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init")
    init.add_argument("trusted_root")
    sub.add_parser("refresh")
    sub.add_parser("download")
    args = p.parse_args()

    try:
        if args.command == "init":
            os.makedirs(args.metadata_dir, exist_ok=True)
            shutil.copyfile(args.trusted_root, os.path.join(args.metadata_dir, "root.json"))
            return 0
        updater = Updater(
            metadata_dir=args.metadata_dir,
            metadata_base_url=args.metadata_url,
            target_base_url=args.target_base_url,
            target_dir=args.target_dir,
            # The trusted root is METADATA_DIR/root.json, as init stored it.
            bootstrap=None,
        )
        updater.refresh()
        if args.command == "download":
            if not args.target_name:
                raise ValueError("download needs --target-name")
            for name in args.target_name:
                info = updater.get_targetinfo(name)
                if info is None:
                    raise ValueError(f"target {name!r} not found")
                if updater.find_cached_target(info) is None:
                    updater.download_target(info)
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is exit 1 in this protocol
        print(f"ngclient: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
