#!/usr/bin/env python3
"""Write the terminal UI's screen captures into the docs, from the real tmux captures.

`make guide-captures` runs tests/tui_tmux.rs (which drives `conclave rehearse` in tmux at
80x24 and saves every screen to target/tui-captures/NAME.txt), then this script. In a
Markdown file, a line `<!-- capture: NAME -->` is followed by a blank line and the capture,
indented four spaces (a code block); this script replaces that block with
target/tui-captures/NAME.txt as captured, so the docs show what the UI shows now. Nothing is
edited by hand.

Usage: guide_captures.py [--check] CAPTURES_DIR FILE.md...
  --check  change nothing; exit 1 naming every capture that differs or is missing
"""

import re
import sys
from pathlib import Path

MARKER = re.compile(r"^<!-- capture: ([A-Za-z0-9_.-]+) -->$")


def block(capture: str) -> list[str]:
    lines = capture.rstrip("\n").split("\n")
    return ["    " + line.rstrip() if line.strip() else "" for line in lines]


def rewrite(text: str, captures: Path, problems: list[str], where: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        m = MARKER.match(line)
        if not m:
            continue
        name = m.group(1)
        path = captures / f"{name}.txt"
        # The old block: a blank line, then indented or blank lines up to the next line of
        # text (blank lines at its end belong to the text after it).
        j = i
        if j < len(lines) and lines[j] == "":
            j += 1
        end = j
        k = j
        while k < len(lines) and (lines[k].startswith("    ") or lines[k].strip() == ""):
            if lines[k].strip():
                end = k + 1
            k += 1
        if not path.is_file():
            problems.append(f"{where}: capture {name}: {path} is missing (run tests/tui_tmux.rs)")
            continue
        new = [""] + block(path.read_text(encoding="utf-8"))
        if lines[i:end] != new:
            problems.append(f"{where}: capture {name} differs from {path}")
        out.extend(new)
        if end < len(lines) and lines[end].strip():
            # The text after the capture stays a paragraph of its own.
            out.append("")
        i = end
    return "\n".join(out)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    captures = Path(args[0])
    problems: list[str] = []
    for name in args[1:]:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, captures, problems, name)
        if not check and new != text:
            path.write_text(new, encoding="utf-8")
    missing = [p for p in problems if "missing" in p]
    for p in problems if check else missing:
        print(p, file=sys.stderr)
    return 1 if (problems if check else missing) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
