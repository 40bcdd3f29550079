"""Ansible host ranges: ``core-[01:40].site-a``, ``pager-[a:f]``, ``x[0:10:2]``.

Zero-padded bounds keep their width, letters stay single letters, and the
product of several ranges in one name is expanded in order.  A cap on the
number of names keeps a typo like ``[0:99999999]`` from eating the machine;
a second cap on the whole inventory stops many capped ranges doing the same.
"""

from __future__ import annotations

import itertools
import re

MAX_HOSTS = 10000  # names one range may expand to
MAX_INVENTORY_HOSTS = 20000  # distinct hosts in one inventory, all ranges together

_RANGE = re.compile(r"\[([^\[\]]*)\]")


class RangeError(ValueError):
    """A host range that cannot be expanded; str() is the message."""


def has_range(name: str) -> bool:
    return "[" in name or "]" in name


def expand(name: str) -> list[str]:
    """All host names ``name`` stands for (just ``[name]`` when it has no range)."""
    if not has_range(name):
        return [name]
    pieces: list[list[str]] = []
    pos = 0
    for match in _RANGE.finditer(name):
        pieces.append([name[pos : match.start()]])
        pieces.append(_one_range(match.group(1)))
        pos = match.end()
    tail = name[pos:]
    if "[" in tail or "]" in tail or any("[" in p[0] or "]" in p[0] for p in pieces[::2]):
        raise RangeError(f"unbalanced '[' or ']' in host name {name!r}")
    pieces.append([tail])
    total = 1
    for piece in pieces:
        total *= len(piece)
        if total > MAX_HOSTS:
            raise RangeError(f"range expands to more than {MAX_HOSTS} hosts")
    return ["".join(parts) for parts in itertools.product(*pieces)]


def _one_range(body: str) -> list[str]:
    parts = body.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise RangeError(f"bad range [{body}]: expected [start:end] or [start:end:step]")
    start, end = parts[0], parts[1]
    step = _step(parts[2]) if len(parts) == 3 else 1
    if start.isdigit() and end.isdigit():
        return _numeric(start, end, step)
    if len(start) == len(end) == 1 and start.isalpha() and end.isalpha():
        return _alpha(start, end, step)
    raise RangeError(f"bad range [{body}]: bounds must be two numbers or two single letters")


def _step(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise RangeError(f"bad range step {text!r}: expected a positive integer")
    return int(text)


def _numeric(start: str, end: str, step: int) -> list[str]:
    low, high = int(start), int(end)
    if low > high:
        raise RangeError(f"bad range [{start}:{end}]: start is greater than end")
    padded = start.startswith("0") and len(start) > 1
    if padded and len(start) != len(end):
        raise RangeError(f"bad range [{start}:{end}]: zero-padded bounds must have the same width")
    if (high - low) // step + 1 > MAX_HOSTS:
        raise RangeError(f"range expands to more than {MAX_HOSTS} hosts")
    width = len(start) if padded else 0
    return [str(i).zfill(width) for i in range(low, high + 1, step)]


def _alpha(start: str, end: str, step: int) -> list[str]:
    if start.islower() != end.islower():
        raise RangeError(f"bad range [{start}:{end}]: mixes upper and lower case")
    if start > end:
        raise RangeError(f"bad range [{start}:{end}]: start is after end")
    return [chr(c) for c in range(ord(start), ord(end) + 1, step)]
