#!/usr/bin/env python3
"""Verify a TUF repository on disk with python-tuf 7 (the reference implementation).

Usage:
  verify_repo.py METADATA_DIR [--targets DIR] [--trusted-root FILE] [--at RFC3339]
                 [--download NAME]... [--download-all] [--roots-only] [--no-client]
                 [--timeout SECONDS]

Two independent checks; both must pass.

(a) Static, with the Metadata API: loads the trusted root (--trusted-root, default the lowest
    METADATA_DIR/N.root.json), which must be signed by itself, then every N+1.root.json: version
    exactly N+1, a threshold of N's root keys and a threshold of its own (``verify_delegate``).
    root.json, when present, must be the newest version. The newest root must not be expired at
    the reference time. Then timestamp.json -> V.snapshot.json (version, length, hashes as
    timestamp lists them) -> V.targets.json -> every delegated role, breadth first, including
    TAP 15 succinct hash bins (versions, lengths and hashes as snapshot lists them), each verified
    with ``verify_delegate`` against its delegator's keys and threshold and not expired. Plain
    names (snapshot.json) are used when the root has consistent_snapshot false. A delegated
    role's file is "V.<role name>.json" (a static server's view of ngclient's URL-quoted
    request); "V.<quoted name>.json" is accepted too. Snapshot entries that no role delegates are
    reported as warnings. With --roots-only, only the root chain is checked.

(b) Client, with ``tuf.ngclient.Updater``: METADATA_DIR (at /metadata/) and the targets directory
    (at /targets/; --targets, default METADATA_DIR/../targets) are served by ``http.server`` on
    127.0.0.1 at an ephemeral port from a thread of this process; the updater is bootstrapped
    with the trusted root, refresh()es, and for each --download NAME (or every target of every
    role with --download-all) runs get_targetinfo and download_target and checks length and
    SHA-256 of the downloaded file. The server is shut down at the end. --no-client skips (b).

--at sets the reference time for expiry in both checks (the updater's reference time is set
directly, no faketime); default: now. The whole run is bounded by --timeout (default 120 s).

Prints one JSON summary on stdout: {"valid": true|false, "roots": [...], "roles": {...},
"warnings": [...], "client": {...}} with, per role, the key ids that signed; on failure also
"error" and "role". Exit status: 0 valid, 1 verification failed (reason on stderr, naming the role
and file), 2 usage error or timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
from datetime import datetime, timezone
from urllib import parse

from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp
from tuf.ngclient import Updater, UpdaterConfig


class VerifyError(Exception):
    """Verification failed: the repository is not valid."""

    def __init__(self, role: str, file: str | None, message: str):
        super().__init__(message)
        self.role = role
        self.file = file
        self.message = message

    def __str__(self) -> str:
        where = f" ({self.file})" if self.file else ""
        return f"role {self.role}{where}: {self.message}"


class UsageError(Exception):
    pass


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` swallows it."""


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time needs a zone (Z or +HH:MM)")
    return value.astimezone(timezone.utc)


def read(path: str, role: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise VerifyError(role, path, f"cannot read: {e.strerror}") from e


def load(data: bytes, role: str, path: str, expected_type: str) -> Metadata:
    try:
        md = Metadata.from_bytes(data)
    except Exception as e:  # noqa: BLE001 - any parse failure is a verification failure
        raise VerifyError(role, path, f"cannot load metadata: {type(e).__name__}: {e}") from e
    if md.signed.type != expected_type:
        raise VerifyError(role, path, f"expected _type {expected_type}, got {md.signed.type}")
    return md


def check_delegate(delegator, role: str, md: Metadata, path: str) -> dict:
    """verify_delegate, plus which keys signed (for the report)."""
    try:
        result = delegator.get_verification_result(role, md.signed_bytes, md.signatures)
    except ValueError as e:
        raise VerifyError(role, path, str(e)) from e
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except Exception as e:  # noqa: BLE001
        raise VerifyError(
            role,
            path,
            f"{type(e).__name__}: {e} (signed by {sorted(result.signed)}, "
            f"threshold {result.threshold})",
        ) from e
    return {"threshold": result.threshold, "signed_by": sorted(result.signed)}


def check_expiry(md: Metadata, role: str, path: str, at: datetime) -> None:
    if md.signed.is_expired(at):
        raise VerifyError(
            role, path, f"expired at {md.signed.expires.isoformat()} (reference time {at})"
        )


def check_meta(meta: MetaFile, data: bytes, md: Metadata, role: str, path: str) -> None:
    try:
        meta.verify_length_and_hashes(data)
    except Exception as e:  # noqa: BLE001
        raise VerifyError(role, path, f"length or hashes do not match: {e}") from e
    if md.signed.version != meta.version:
        raise VerifyError(
            role, path, f"version {md.signed.version}, but {meta.version} is listed for it"
        )


def verify_roots(metadata_dir: str, trusted_root: str | None, at: datetime, report: dict):
    versions = {}
    for name in os.listdir(metadata_dir):
        m = re.fullmatch(r"([0-9]+)\.root\.json", name)
        if m:
            versions[int(m.group(1))] = os.path.join(metadata_dir, name)
    if trusted_root is None:
        if not versions:
            raise UsageError(f"no N.root.json in {metadata_dir} and no --trusted-root")
        trusted_root = versions[min(versions)]
    trusted_bytes = read(trusted_root, "root")
    root = load(trusted_bytes, "root", trusted_root, Root.type)
    info = check_delegate(root.signed, Root.type, root, trusted_root)
    report["roots"].append({"version": root.signed.version, "file": trusted_root, **info})

    newest_path = trusted_root
    while True:
        version = root.signed.version + 1
        path = versions.get(version)
        if path is None:
            break
        new = load(read(path, "root"), "root", path, Root.type)
        if new.signed.version != version:
            raise VerifyError("root", path, f"file name says {version}, content {new.signed.version}")
        old_info = check_delegate(root.signed, Root.type, new, path)
        new_info = check_delegate(new.signed, Root.type, new, path)
        report["roots"].append(
            {"version": version, "file": path, "previous": old_info, **new_info}
        )
        root, newest_path = new, path
    later = sorted(v for v in versions if v > root.signed.version)
    if later:
        raise VerifyError(
            "root",
            versions[later[0]],
            f"root version {root.signed.version + 1} is missing but version {later[0]} exists",
        )
    plain = os.path.join(metadata_dir, "root.json")
    if os.path.exists(plain):
        plain_md = load(read(plain, "root"), "root", plain, Root.type)
        if plain_md.signed.version != root.signed.version:
            raise VerifyError(
                "root",
                plain,
                f"is version {plain_md.signed.version}, newest is {root.signed.version}",
            )
    check_expiry(root, "root", newest_path, at)
    return root, trusted_bytes


def role_file(metadata_dir: str, role: str, version: int, consistent: bool) -> str:
    names = [f"{version}.{role}.json", f"{version}.{parse.quote(role, '')}.json"]
    if not consistent:
        names = [f"{role}.json", f"{parse.quote(role, '')}.json"]
    for name in names:
        path = os.path.join(metadata_dir, name)
        if os.path.exists(path):
            return path
    return os.path.join(metadata_dir, names[0])


def verify_top_level(metadata_dir: str, root: Metadata, at: datetime, report: dict) -> dict:
    """Returns {target path: TargetFile} for every target of every role."""
    consistent = root.signed.consistent_snapshot
    ts_path = os.path.join(metadata_dir, "timestamp.json")
    ts = load(read(ts_path, "timestamp"), "timestamp", ts_path, Timestamp.type)
    info = check_delegate(root.signed, Timestamp.type, ts, ts_path)
    check_expiry(ts, "timestamp", ts_path, at)
    report["roles"]["timestamp"] = {"version": ts.signed.version, "file": ts_path, **info}

    snap_meta = ts.signed.snapshot_meta
    snap_path = role_file(metadata_dir, Snapshot.type, snap_meta.version, consistent)
    snap_bytes = read(snap_path, "snapshot")
    snap = load(snap_bytes, "snapshot", snap_path, Snapshot.type)
    info = check_delegate(root.signed, Snapshot.type, snap, snap_path)
    check_meta(snap_meta, snap_bytes, snap, "snapshot", snap_path)
    check_expiry(snap, "snapshot", snap_path, at)
    report["roles"]["snapshot"] = {"version": snap.signed.version, "file": snap_path, **info}

    all_targets = {}
    seen = set()
    queue = [(Targets.type, root.signed)]  # (role, delegator payload)
    while queue:
        role, delegator = queue.pop(0)
        if role in seen:
            continue
        seen.add(role)
        meta = snap.signed.meta.get(f"{role}.json")
        if meta is None:
            raise VerifyError(role, None, "not listed in snapshot")
        path = role_file(metadata_dir, role, meta.version, consistent)
        data = read(path, role)
        md = load(data, role, path, Targets.type)
        info = check_delegate(delegator, role, md, path)
        check_meta(meta, data, md, role, path)
        check_expiry(md, role, path, at)
        report["roles"][role] = {"version": md.signed.version, "file": path, **info}
        for target_path, target in md.signed.targets.items():
            all_targets.setdefault(target_path, target)
        delegations = md.signed.delegations
        if delegations is not None:
            if delegations.roles:
                queue.extend((name, md.signed) for name in delegations.roles)
            if delegations.succinct_roles:
                queue.extend((name, md.signed) for name in delegations.succinct_roles.get_roles())
    for name in sorted(snap.signed.meta):
        if name[: -len(".json")] not in seen:
            report["warnings"].append(f"snapshot lists {name}, which no role delegates")
    return all_targets


class _Handler(http.server.SimpleHTTPRequestHandler):
    mounts: dict[str, str] = {}

    def translate_path(self, path: str) -> str:
        url_path = parse.urlsplit(path).path
        for prefix, directory in self.mounts.items():
            if url_path.startswith(prefix):
                self.directory = directory
                return super().translate_path("/" + url_path[len(prefix) :])
        return os.path.join(tempfile.gettempdir(), "verify_repo-no-such-file")

    def log_message(self, format, *args):  # noqa: A002 - silence the access log
        pass


def run_client(
    metadata_dir: str,
    targets_dir: str | None,
    trusted_bytes: bytes,
    at: datetime,
    downloads: list[str],
) -> dict:
    handler = type("Handler", (_Handler,), {})
    handler.mounts = {"/metadata/": os.path.abspath(metadata_dir)}
    if targets_dir:
        handler.mounts["/targets/"] = os.path.abspath(targets_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda request, client_address: None  # no tracebacks on timeouts
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    result: dict = {"refreshed": False, "downloads": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="verify_repo-") as tmp:
            cache = os.path.join(tmp, "metadata")
            dl = os.path.join(tmp, "targets")
            os.makedirs(cache)
            os.makedirs(dl)
            big = 1 << 30
            config = UpdaterConfig(
                root_max_length=big,
                timestamp_max_length=big,
                snapshot_max_length=big,
                targets_max_length=big,
            )
            updater = Updater(
                metadata_dir=cache,
                metadata_base_url=f"{base}/metadata/",
                target_dir=dl,
                target_base_url=f"{base}/targets/",
                config=config,
                bootstrap=trusted_bytes,
            )
            trusted_set = updater._trusted_set  # noqa: SLF001 - faketime-free reference time
            if not hasattr(trusted_set, "reference_time"):
                raise RuntimeError("python-tuf changed: TrustedMetadataSet.reference_time is gone")
            trusted_set.reference_time = at
            try:
                updater.refresh()
            except Exception as e:  # noqa: BLE001
                raise VerifyError("client", None, f"ngclient refresh: {type(e).__name__}: {e}")
            result["refreshed"] = True
            result["root_version"] = trusted_set.root.version
            for name in downloads:
                try:
                    info = updater.get_targetinfo(name)
                except Exception as e:  # noqa: BLE001
                    raise VerifyError(
                        "client", None, f"ngclient get_targetinfo({name}): {type(e).__name__}: {e}"
                    ) from e
                if info is None:
                    raise VerifyError("client", None, f"ngclient: no target named {name}")
                try:
                    path = updater.download_target(info)
                except Exception as e:  # noqa: BLE001
                    raise VerifyError(
                        "client", None, f"ngclient download_target({name}): {type(e).__name__}: {e}"
                    ) from e
                with open(path, "rb") as f:
                    data = f.read()
                digest = hashlib.sha256(data).hexdigest()
                if len(data) != info.length or info.hashes.get("sha256", digest) != digest:
                    raise VerifyError("client", None, f"downloaded {name} does not match its hash")
                result["downloads"][name] = {"length": len(data), "sha256": digest}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Verify a TUF repository with python-tuf 7.")
    p.add_argument("metadata_dir")
    p.add_argument("--targets", help="target files directory (default METADATA_DIR/../targets)")
    p.add_argument("--trusted-root", help="trusted root file (default lowest N.root.json)")
    p.add_argument("--at", help="reference time, RFC 3339 (default now)")
    p.add_argument("--download", action="append", default=[], metavar="NAME")
    p.add_argument("--download-all", action="store_true")
    p.add_argument("--roots-only", action="store_true", help="check only the root chain")
    p.add_argument("--no-client", action="store_true", help="skip the ngclient check")
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    try:
        args.at = parse_time(args.at) if args.at else datetime.now(timezone.utc)
    except ValueError as e:
        p.error(f"--at: {e}")
    if not os.path.isdir(args.metadata_dir):
        p.error(f"{args.metadata_dir} is not a directory")
    if args.targets is None:
        guess = os.path.join(os.path.dirname(os.path.abspath(args.metadata_dir)), "targets")
        args.targets = guess if os.path.isdir(guess) else None
    if args.roots_only and (args.download or args.download_all):
        p.error("--roots-only cannot download targets")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)

    def on_alarm(signum, frame):
        raise Timeout(f"verify_repo.py timed out after {args.timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    report: dict = {"valid": False, "at": args.at.isoformat(), "roots": [], "roles": {}}
    report["warnings"] = []
    try:
        root, trusted_bytes = verify_roots(args.metadata_dir, args.trusted_root, args.at, report)
        if not args.roots_only:
            all_targets = verify_top_level(args.metadata_dir, root, args.at, report)
            downloads = list(args.download)
            if args.download_all:
                downloads += sorted(t for t in all_targets if t not in downloads)
            if not args.no_client:
                report["client"] = run_client(
                    args.metadata_dir, args.targets, trusted_bytes, args.at, downloads
                )
        report["valid"] = True
    except VerifyError as e:
        report["error"] = str(e)
        report["role"] = e.role
        print(json.dumps(report, indent=1))
        print(f"verify_repo.py: INVALID: {e}", file=sys.stderr)
        return 1
    except (UsageError, Timeout) as e:
        print(f"verify_repo.py: {e}", file=sys.stderr)
        return 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
