"""Host patterns with Ansible's ``--limit`` semantics.

``group``, ``host``, globs (``core-0*``), ``~regex`` (matched from the start,
as Ansible does), subscripts of a group (``lobby[0]``, ``lobby[1:3]``, end inclusive;
anything else in brackets is a glob set),
and combinations: ``a:b`` (or ``a,b``) union, ``a:&b`` intersection,
``a:!b`` exclusion.  As in Ansible, unions apply first, then intersections,
then exclusions, whatever order they are written in.  Unlike Ansible, a plain
name that matches nothing, and a selection that ends up empty, are usage
errors: a typo in ``--limit`` must never silently do nothing (or everything).
"""

from __future__ import annotations

import fnmatch
import re

from qsipctl.errors import UsageError
from qsipctl.site.model import Core, Site
from qsipctl.site.suggest import did_you_mean

_SUBSCRIPT = re.compile(r"^(?P<base>.+)\[(?P<a>-?\d+)(?::(?P<b>-?\d*))?\]$")
MAX_PATTERN = 4096


def split_pattern(pattern: str) -> list[str]:
    """Split on ',' if present, else on ':' outside brackets (Ansible's rule)."""
    if "," in pattern:
        parts = pattern.split(",")
    else:
        parts, depth, current = [], 0, ""
        for ch in pattern:
            depth += ch == "["
            depth -= ch == "]" and depth > 0
            if ch == ":" and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += ch
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def select(site: Site, pattern: str | None) -> list[Core]:
    """The cores ``pattern`` names, in inventory order; bad or empty -> UsageError."""
    if pattern is None or pattern.strip() in ("", "all", "*"):
        return list(site.cores)
    if len(pattern) > MAX_PATTERN:
        raise UsageError("host pattern is too long")
    names = [c.name for c in site.cores]
    terms = split_pattern(pattern)
    plain = [t for t in terms if t[0] not in "&!"]
    inter = [t[1:] for t in terms if t[0] == "&"]
    excl = [t[1:] for t in terms if t[0] == "!"]
    chosen: set[str] = set()
    for term in plain or ["all"]:
        chosen |= _match(site, names, term)
    for term in inter:
        chosen &= _match(site, names, term)
    for term in excl:
        chosen -= _match(site, names, term)
    if not chosen:
        raise UsageError(f"host pattern {pattern!r} matches no cores")
    return [c for c in site.cores if c.name in chosen]


def _match(site: Site, names: list[str], term: str) -> set[str]:
    if not term:
        raise UsageError("empty term after '&' or '!' in host pattern")
    if term in ("all", "*"):
        return set(names)
    if term.startswith("~"):
        return _regex(site, names, term[1:])
    sub = _SUBSCRIPT.match(term)
    if sub and sub.group("base") in site.groups:
        members = [n for n in names if n in site.groups[sub.group("base")]]
        return _subscript(members, sub.group("a"), sub.group("b"), term)
    if any(ch in term for ch in "*?["):
        return _glob(site, names, term)
    found = _exact(site, names, term)
    if not found and term not in site.groups:
        pool = [*names, *site.groups]
        raise UsageError(f"no core or group named {term!r}{did_you_mean(term, pool)}")
    return found


def _exact(site: Site, names: list[str], term: str) -> set[str]:
    if term in site.groups:
        return set(site.groups[term]) & set(names)
    return {term} if term in names else set()


def _subscript(members: list[str], a: str, b: str | None, term: str) -> set[str]:
    start = int(a)
    if b is None:
        try:
            return {members[start]}
        except IndexError:
            raise UsageError(f"{term!r}: index {start} is out of range") from None
    end = int(b) if b not in ("", "-") else -1
    stop = None if end == -1 else end + 1
    return set(members[start:stop])


def _glob(site: Site, names: list[str], term: str) -> set[str]:
    found = {n for n in names if fnmatch.fnmatchcase(n, term)}
    for group, members in site.groups.items():
        if fnmatch.fnmatchcase(group, term):
            found |= set(members) & set(names)
    return found


def _regex(site: Site, names: list[str], expr: str) -> set[str]:
    try:
        rx = re.compile(expr)
    except (re.error, RecursionError, OverflowError) as exc:
        raise UsageError(f"invalid regular expression {expr!r} in host pattern: {exc}") from None
    found = {n for n in names if rx.match(n)}
    for group, members in site.groups.items():
        if rx.match(group):
            found |= set(members) & set(names)
    return found
