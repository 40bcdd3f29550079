"""Ansible's INI inventory format, read into the YAML inventory shape.

INI is Ansible's default and most common inventory format.  Rather than a
second inventory model, an INI file becomes the same ``{group: {hosts, vars,
children}}`` mapping a YAML inventory is, with a position for every key path,
so precedence, patterns and messages are shared.  The rules are
ansible-core 2.19's (checked against it by tests/integration/test_ansible_fidelity.py):

* lines before the first section are hosts of ``ungrouped``;
* ``[g]`` hosts (ranges and ``:port`` allowed), ``[g:children]`` group
  names, ``[g:vars]`` one ``key=value`` per line;
* host-line values are split like a shell line (quotes, ``#`` comments) and
  every value, on host lines and in ``:vars``, is read as a Python literal
  when it is one (``23`` -> 23, ``"'05'"`` -> ``'05'``, ``True``), else kept
  as text;
* ``[g:vars]`` and ``[p:children]`` may name a group declared later, but a
  group that is never declared is an error.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from qsipctl.errors import Diagnostic, InvalidInput, Location
from qsipctl.site.yamlsrc import KeyPath, SourceTag, YamlDoc

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_GROUP_LINE = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
SECTION_KINDS = ("hosts", "children", "vars")


def looks_like_ini(text: str) -> bool:
    """A first meaningful line that is a ``[section]`` or a bare host line."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        return bool(_SECTION.match(stripped)) or ":" not in stripped.split("#")[0]
    return False


def parse_ini(text: str, name: str, tag: SourceTag | None = None) -> YamlDoc:
    """Read an INI inventory; an error raises :class:`InvalidInput` with file:line:col."""
    return _IniReader(text, name, tag).run()


def literal(text: str) -> Any:
    """An INI value as ansible reads it: a Python literal when it is one, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    return value


class _IniReader:
    def __init__(self, text: str, name: str, tag: SourceTag | None) -> None:
        self.text = text
        self.doc = YamlDoc(name, {})
        self.root: KeyPath = (tag,) if tag is not None else ()
        self.lineno = 0
        self.pending: dict[str, tuple[int, str, str]] = {}  # group -> (line, kind, parent)

    def fail(self, message: str, col: int = 1) -> InvalidInput:
        return InvalidInput([Diagnostic(message, Location(self.doc.path, self.lineno, col))])

    def mark(self, kp: KeyPath, col: int) -> None:
        self.doc.positions.setdefault((*self.root, *kp), Location(self.doc.path, self.lineno, col))

    def run(self) -> YamlDoc:
        data: dict[str, Any] = self.doc.data
        self.doc.positions[self.root] = Location(self.doc.path, 1, 1)
        group, kind = "ungrouped", "hosts"
        for lineno, raw in enumerate(self.text.splitlines(), 1):
            self.lineno = lineno
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            indent = len(raw) - len(raw.lstrip()) + 1
            section = _SECTION.match(line)
            if section:
                group, kind = section.group(1), section.group(2) or "hosts"
                self._section(data, group, kind, indent)
                continue
            if line.startswith("[") and line.endswith("]"):
                raise self.fail(
                    f"invalid section {line!r}: expected [group], [group:children] or "
                    "[group:vars], without spaces",
                    indent,
                )
            if kind == "hosts":
                self._host_line(data, group, line, indent)
            elif kind == "vars":
                self._var_line(data, group, line, indent)
            else:
                self._child_line(data, group, line, indent)
        for missing, (lineno, how, parent) in self.pending.items():
            self.lineno = lineno
            if how == "vars":
                raise self.fail(f"section [{missing}:vars] is for a group that is never declared")
            raise self.fail(f"section [{parent}:children] names group {missing!r}, never declared")
        return self.doc

    def _declare(self, data: dict[str, Any], group: str, col: int) -> dict[str, Any]:
        if group not in data:
            data[group] = {}
            self.mark((group,), col)
        body: dict[str, Any] = data[group]
        return body

    def _section(self, data: dict[str, Any], group: str, kind: str, col: int) -> None:
        if kind not in SECTION_KINDS:
            raise self.fail(
                f"section [{group}:{kind}] has unknown type {kind!r}: expected children or vars",
                col,
            )
        if group not in data and kind == "vars" and group not in self.pending:
            self.pending[group] = (self.lineno, "vars", group)
        elif kind != "vars":
            self.pending.pop(group, None)
        self._declare(data, group, col + 1)

    def _host_line(self, data: dict[str, Any], group: str, line: str, col: int) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.fail(f"cannot split host line: {exc}", col) from None
        if not tokens:
            return
        pattern = tokens[0]
        if pattern.endswith(":"):
            raise self.fail(f"host {pattern!r} ends in ':' (a port must follow it)", col)
        if pattern == "---":
            raise self.fail("'---' starts a YAML document: is this a YAML inventory?", col)
        body = self._declare(data, group, col)
        hosts = body.setdefault("hosts", {})
        self.mark((group, "hosts"), col)
        hvars = hosts.get(pattern)
        if hvars is None:
            hvars = hosts[pattern] = {}
        self.mark((group, "hosts", pattern), col)
        for token in tokens[1:]:
            key, eq, value = token.partition("=")
            where = line.find(token.split("=")[0]) + col
            if not eq or not key:
                raise self.fail(f"expected key=value after the host name, got {token!r}", where)
            hvars[key] = literal(value)
            self.mark((group, "hosts", pattern, key), where)

    def _var_line(self, data: dict[str, Any], group: str, line: str, col: int) -> None:
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise self.fail(f"expected key=value in [{group}:vars], got {line!r}", col)
        body = self._declare(data, group, col)
        gvars = body.setdefault("vars", {})
        gvars[key] = literal(value)
        self.mark((group, "vars"), col)
        self.mark((group, "vars", key), col)

    def _child_line(self, data: dict[str, Any], group: str, line: str, col: int) -> None:
        match = _GROUP_LINE.match(line)
        if match is None:
            raise self.fail(f"expected a group name in [{group}:children], got {line!r}", col)
        child = match.group(1)
        body = self._declare(data, group, col)
        children = body.setdefault("children", {})
        children.setdefault(child, None)
        self.mark((group, "children"), col)
        self.mark((group, "children", child), col)
        if child not in data and child not in self.pending:
            self.pending[child] = (self.lineno, "children", group)
