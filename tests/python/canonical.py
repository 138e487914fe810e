#!/usr/bin/env python3
"""Canonical JSON bytes as securesystemslib computes them, in batch.

Usage: canonical.py < docs.jsonl

Reads stdin as UTF-8, one JSON document per line (a line must not contain a raw newline; JSON
escapes \\n inside strings). For each input line it prints exactly one output line:

  * the lowercase hex of
    ``securesystemslib.formats.encode_canonical(json.loads(line)).encode("utf-8")``, or
  * ``ERR <reason>`` when ``json.loads`` or ``encode_canonical`` raises, or the canonical string
    cannot be encoded as UTF-8 (floats, lone surrogates such as "\\ud800", ...).

Output is flushed after every line, so a caller may also interleave writes and reads. Exit status
0 when all input was read (even if some lines were ERR), 2 on usage errors.
"""

import json
import sys

from securesystemslib.formats import encode_canonical


def canonical_hex(line: str) -> str:
    try:
        doc = json.loads(line)
        text = encode_canonical(doc)
        return text.encode("utf-8").hex()
    except Exception as e:  # noqa: BLE001 - every failure becomes one ERR line
        reason = f"{type(e).__name__}: {e}".replace("\r", " ").replace("\n", " ")
        return f"ERR {reason}"


def main() -> int:
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    # surrogateescape keeps invalid UTF-8 input from aborting the batch: such a line then fails
    # in encode("utf-8") and is reported as ERR like any other unencodable input.
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", newline="\n")
    out = sys.stdout
    for raw in stdin:
        line = raw[:-1] if raw.endswith("\n") else raw
        out.write(canonical_hex(line) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
