"""Host patterns with Ansible's ``--limit`` semantics (ansible-core 2.19's InventoryManager).

``group``, ``host``, globs (``core-0*``), ``~regex`` (matched from the start),
subscripts (``lobby[0]``, ``lobby[1:3]`` end inclusive, ``lobby[-1]``, also on
globs: ``rack*[0]``), ``@FILE`` (one pattern per line), and combinations:
``a:b`` (or ``a,b``) union, ``a:&b`` intersection, ``a:!b`` exclusion.  As in
Ansible: unions apply first, then intersections, then exclusions; a name that
is both a host and a group means the host; a glob matches groups (their hosts)
and host names; a whole pattern that is one IPv6 address is not split at its
colons; the selection keeps the order of ``ansible all --list-hosts``.

Unlike Ansible, which only warns, a term that matches nothing and a selection
that ends up empty are usage errors: a typo in ``--limit`` must never silently
do nothing (or everything).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from qsipctl.addr import is_ip, split_host_port
from qsipctl.errors import UsageError
from qsipctl.site.model import Core, Site
from qsipctl.site.suggest import did_you_mean

_SUBSCRIPT = re.compile(r"^(?P<base>.+)\[(?:(?P<idx>-?\d+)|(?P<a>\d+):(?P<b>\d*))\]$")
_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
MAX_PATTERN = 4096
MAX_LIMIT_FILE = 1 << 20


def split_pattern(pattern: str) -> list[str]:
    """Split on ',' if present, else on ':' outside brackets, keeping one IPv6 address whole."""
    if "," in pattern:
        parts = pattern.split(",")
    elif _one_address(pattern.strip()):
        parts = [pattern]
    else:
        parts = _TERM.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def _one_address(text: str) -> bool:
    if is_ip(text):
        return True
    try:
        host, port = split_host_port(text)
    except ValueError:
        return False
    return port is not None and text.startswith("[") and is_ip(host)


def expand_terms(pattern: str) -> list[str]:
    """The terms of a pattern, with ``@FILE`` replaced by the file's lines (as ansible)."""
    terms: list[str] = []
    for term in split_pattern(pattern):
        if not term.startswith("@"):
            terms.append(term)
            continue
        path = Path(term[1:])
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_LIMIT_FILE + 1)
        except OSError as exc:
            raise UsageError(f"cannot read limit file {term[1:]}: {exc.strerror}") from None
        if len(data) > MAX_LIMIT_FILE:
            raise UsageError(f"limit file {term[1:]} is larger than 1 MiB")
        text = data.decode("utf-8", "replace")
        terms.extend(line.strip() for line in text.split("\n") if line.strip())
    return terms


def select_names(
    order: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    pattern: str | None,
    created: Sequence[str] | None = None,
) -> list[str]:
    """Host names ``pattern`` selects, in ``order``; a term matching nothing is a UsageError.

    ``created`` is the order hosts were first listed in (default ``order``):
    as in Ansible, a glob or regex over host names matches in that order,
    which decides what ``room-*[0]`` is.
    """
    if pattern is None or pattern.strip() in ("", "all", "*"):
        return list(order)
    if len(pattern) > MAX_PATTERN:
        raise UsageError("host pattern is too long")
    terms = expand_terms(pattern)
    plain = [t for t in terms if t[0] not in "&!"] or ["all"]
    inter = [t[1:] for t in terms if t[0] == "&"]
    excl = [t[1:] for t in terms if t[0] == "!"]
    matcher = _Matcher(order, groups, created or order)
    chosen: dict[str, None] = {}
    for term in plain:
        if term in matcher.hosts:  # a host wins over a group of the same name
            chosen.setdefault(term, None)
        else:
            chosen.update(dict.fromkeys(matcher.match(term)))
    for term in inter:
        keep = set(matcher.match(term))
        chosen = {h: None for h in chosen if h in keep}
    for term in excl:
        drop = set(matcher.match(term))
        chosen = {h: None for h in chosen if h not in drop}
    if not chosen:
        raise UsageError(f"host pattern {pattern!r} matches no hosts")
    return [h for h in order if h in chosen]


def select(site: Site, pattern: str | None) -> list[Core]:
    """The cores ``pattern`` names, in inventory order; bad or empty -> UsageError."""
    names = [c.name for c in site.cores]
    order = [*names, *(h for h in site.others if h not in names)]
    chosen = set(select_names(order, site.groups, pattern))
    cores = [c for c in site.cores if c.name in chosen]
    if not cores:
        raise UsageError(f"host pattern {pattern!r} matches no cores (only hosts that are not)")
    return cores


class _Matcher:
    def __init__(
        self, order: Sequence[str], groups: Mapping[str, Sequence[str]], created: Sequence[str]
    ) -> None:
        self.order = order
        self.created = created
        self.hosts = set(order)
        self.groups = groups

    def match(self, term: str) -> list[str]:
        if not term:
            raise UsageError("empty term after '&' or '!' in host pattern")
        if term in ("all", "*"):
            return list(self.order)
        if term.startswith("~"):
            return self._enumerate(term, term)
        sub = _SUBSCRIPT.match(term)
        base = sub.group("base") if sub else term
        found = self._enumerate(base, term)
        if sub is None:
            return found
        return _subscript(found, sub.group("idx"), sub.group("a"), sub.group("b"), term)

    def _enumerate(self, expr: str, term: str) -> list[str]:
        rx = _compile(expr)
        groups = [g for g in self.groups if rx.match(g)]
        found: list[str] = []
        for g in groups:
            found.extend(self.groups[g])
        if not groups or expr[0] == "~" or any(c in expr for c in ".?*["):
            found.extend(h for h in self.created if rx.match(h))
        if not found and not groups:  # an existing empty group is not a typo
            pool = [*self.order, *self.groups]
            raise UsageError(
                f"host pattern term {term!r} matches no host or group{did_you_mean(expr, pool)}"
            )
        return found


def _compile(expr: str) -> re.Pattern[str]:
    try:
        return re.compile(expr[1:] if expr.startswith("~") else fnmatch.translate(expr))
    except (re.error, RecursionError, OverflowError) as exc:
        raise UsageError(f"invalid regular expression {expr!r} in host pattern: {exc}") from None


def _subscript(
    hosts: list[str], idx: str | None, a: str | None, b: str | None, term: str
) -> list[str]:
    if idx is not None:
        try:
            return [hosts[int(idx)]]
        except IndexError:
            raise UsageError(
                f"{term!r}: index {idx} is out of range ({len(hosts)} hosts)"
            ) from None
    start = int(a or 0)
    end = len(hosts) - 1 if not b else int(b)
    chosen = hosts[start : end + 1]
    if not chosen:
        raise UsageError(f"{term!r}: no host in this range ({len(hosts)} hosts)")
    return chosen
