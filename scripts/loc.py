#!/usr/bin/env python3
"""Lines of code in qsipctl/sip and qsipctl/net at git revisions, three ways.

Issue 7 asks that these go down, not up, for the same behaviour (its
baseline is 186e8c2, before the sans-IO endpoint reshape).  Three counts,
because "lines of code" means different things to different people:

- code:     lines holding a Python token other than comments and docstrings
            (a statement that is only a string literal); blank lines excluded
- nbnc:     non-blank lines that are not comment-only (docstrings count)
- physical: every line (wc -l)

    python3 scripts/loc.py                 # 186e8c2 against HEAD
    python3 scripts/loc.py REV [REV ...]   # any revisions, per file with -v
"""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize

_LAYOUT = (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER)
_STATEMENT_END = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)


def code_lines(source: str) -> int:
    lines: set[int] = set()
    at_start, pending = True, None  # a statement's leading string: kept if more follows
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in _STATEMENT_END:
            at_start, pending = True, None
            continue
        if tok.type in _LAYOUT:
            continue
        span = range(tok.start[0], tok.end[0] + 1)
        if tok.type == tokenize.STRING and at_start:
            at_start, pending = False, span
            continue
        if pending is not None:
            lines.update(pending)
            pending = None
        at_start = False
        lines.update(span)
    return len(lines)


def nbnc(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


def count(rev: str, verbose: bool) -> tuple[int, int, int]:
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "qsipctl/sip", "qsipctl/net"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    total = [0, 0, 0]
    for name in (n for n in names if n.endswith(".py")):
        src = subprocess.run(["git", "show", f"{rev}:{name}"], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        row = (code_lines(src), nbnc(src), len(src.splitlines()))
        total = [a + b for a, b in zip(total, row, strict=True)]
        if verbose:
            print(f"  {row[0]:6} {row[1]:6} {row[2]:6}  {name}")
    return total[0], total[1], total[2]


def main() -> None:
    verbose = "-v" in sys.argv
    revs = [a for a in sys.argv[1:] if a != "-v"] or ["186e8c2", "HEAD"]
    print(f"{'revision':14} {'code':>6} {'nbnc':>6} {'physical':>8}")
    for rev in revs:
        code, nb, phys = count(rev, verbose)
        print(f"{rev:14} {code:6} {nb:6} {phys:8}")


if __name__ == "__main__":
    main()
