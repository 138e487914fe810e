#!/usr/bin/env python3
"""Canonical JSON bytes as securesystemslib computes them, in batch.

Usage: canonical.py [--quoted] < docs.jsonl

Reads stdin as UTF-8, one JSON document per line (a line must not contain a raw newline; JSON
escapes \\n inside strings). For each input line it prints exactly one output line:

  * the lowercase hex of
    ``securesystemslib.formats.encode_canonical(json.loads(line)).encode("utf-8")``, or
  * ``ERR <reason>`` when ``json.loads`` or ``encode_canonical`` raises, or the canonical string
    cannot be encoded as UTF-8 (floats, lone surrogates such as "\\ud800", ...).

With --quoted, each input line is instead a JSON string whose value is the document's text
(``json.dumps(text)``), so documents may contain raw newlines; a line that is not a JSON string is
a usage error (exit 2). The Rust harness (tests/common) uses this mode.

Output is flushed after every line, so a caller may also interleave writes and reads. Exit status
0 when all input was read (even if some lines were ERR), 2 on usage errors.
"""

import json
import sys

from securesystemslib.formats import encode_canonical


def canonical_hex(text: str) -> str:
    try:
        doc = json.loads(text)
        text = encode_canonical(doc)
        return text.encode("utf-8").hex()
    except Exception as e:  # noqa: BLE001 - every failure becomes one ERR line
        reason = f"{type(e).__name__}: {e}".replace("\r", " ").replace("\n", " ")
        return f"ERR {reason}"


def main() -> int:
    args = sys.argv[1:]
    if args not in ([], ["--quoted"]):
        print(__doc__, file=sys.stderr)
        return 2
    quoted = args == ["--quoted"]
    # surrogateescape keeps invalid UTF-8 input from aborting the batch: such a line then fails
    # in encode("utf-8") and is reported as ERR like any other unencodable input.
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape", newline="\n")
    out = sys.stdout
    for raw in stdin:
        line = raw[:-1] if raw.endswith("\n") else raw
        if quoted:
            try:
                line = json.loads(line)
            except ValueError:
                line = None
            if not isinstance(line, str):
                print(f"canonical.py: --quoted line is not a JSON string: {raw!r}", file=sys.stderr)
                return 2
        out.write(canonical_hex(line) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
