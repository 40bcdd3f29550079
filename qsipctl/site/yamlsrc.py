"""YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and silently keeps the last of two
duplicate keys; both are unacceptable when the user must be told
``site.yml:14:7: all.children.lobby.hosts.core-01.sip_port: ...``.  We compose
the node graph with the safe loader, then build plain Python values ourselves,
recording a :class:`Location` for every key path and rejecting duplicates and
tab indentation with a precise message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qsipctl.errors import Diagnostic, InvalidInput, Location
from qsipctl.site.vault import (
    UnsafeStr,
    VaultError,
    VaultKeys,
    VaultLocked,
    VaultPasswordError,
    VaultStr,
    is_vault,
)

KeyPath = tuple[str | int, ...]
MAX_DEPTH = 70  # 64 levels of the user's nesting, plus the key paths' own prefixes


class SourceTag(str):
    """First element of the key paths of a second file (group_vars/x.yml, a second inventory).

    Positions of every file of one inventory live in one table; the tag keeps
    their key paths apart and is left out when a key path is printed (the
    file name is already in the location).
    """

    __slots__ = ()


_STR_TAG = "tag:yaml.org,2002:str"
MAX_NODES = 200_000  # aliases can make a small file expand exponentially ("billion laughs")


def format_keypath(path: Sequence[str | int]) -> str:
    """``("all", "hosts", "c1", "phones", 0)`` -> ``all.hosts.c1.phones[0]``."""
    out = ""
    for part in path:
        if isinstance(part, SourceTag):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class YamlDoc:
    """A loaded YAML document plus the location of each key path in it."""

    path: str
    data: Any
    positions: dict[KeyPath, Location] = field(default_factory=dict)

    def where(self, keypath: Sequence[str | int]) -> Location:
        """Location of ``keypath``, or of its nearest ancestor that has one."""
        key = tuple(keypath)
        while key:
            found = self.positions.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return self.positions.get((), Location(self.path, 1, 1))

    def diag(self, keypath: Sequence[str | int], message: str) -> Diagnostic:
        return Diagnostic(message, self.where(keypath), format_keypath(keypath))


class VaultInputError(InvalidInput):
    """A vault value that no given password opens: everything built on it would only repeat it."""


def read_text(path: str | Path, vault: VaultKeys | None = None) -> str:
    """A file's text, decrypted when it is a whole-file Ansible Vault; failures are InvalidInput."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput.single(f"cannot read file: {exc.strerror}", Location(name)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput.single(
            f"file is not UTF-8 text (byte {exc.start})", Location(name)
        ) from None
    if is_vault(text):
        try:
            text = (vault or VaultKeys()).decrypt(text)
        except VaultPasswordError as exc:
            raise VaultInputError([Diagnostic(str(exc), Location(name, 1, 1))]) from None
        except VaultError as exc:
            raise InvalidInput.single(str(exc), Location(name, 1, 1)) from None
    return text


def load_yaml_file(
    path: str | Path, vault: VaultKeys | None = None, tag: SourceTag | None = None
) -> YamlDoc:
    """Read and parse ``path``; every failure is an :class:`InvalidInput`."""
    return load_yaml_text(read_text(path, vault), str(path), vault, tag)


def load_yaml_text(
    text: str, name: str, vault: VaultKeys | None = None, tag: SourceTag | None = None
) -> YamlDoc:
    """Parse one YAML document from ``text``; ``name`` is used in messages.

    ``!vault`` values are decrypted with ``vault``; ``!unsafe`` values stay
    plain text that is never templated.  With ``tag`` every key path starts
    with it (see :class:`SourceTag`).
    """
    _reject_tabs(text, name)
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput.single(_yaml_message(exc), _mark_location(exc, name)) from None
    except yaml.reader.ReaderError as exc:
        where = _offset_location(text, exc.position, name)
        raise InvalidInput.single(
            f"invalid YAML: character {exc.character!r} is not allowed in YAML", where
        ) from None
    except yaml.YAMLError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "malformed YAML"
        raise InvalidInput.single(f"invalid YAML: {message}", Location(name)) from None
    doc = YamlDoc(name, None)
    if node is None:
        return doc
    builder = _Builder(doc, vault, secret=isinstance(text, VaultStr))
    root: KeyPath = (tag,) if tag is not None else ()
    doc.data = builder.build(node, root)
    return doc


def _compose(text: str) -> yaml.Node | None:
    """The node graph, from libyaml when PyYAML has it: ten times faster on a
    large site, with the same line/column marks.  Bad YAML is composed again by
    the pure-Python loader, whose error messages and marks are the reference."""
    if _FastLoader is not None:
        try:  # libyaml takes an exact str, not a subclass such as a decrypted VaultStr
            return yaml.compose(str.__str__(text), Loader=_FastLoader)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


class _TagMemo:
    """A loader whose tag for a scalar is worked out once per spelling.

    libyaml hands every scalar to PyYAML's pure-Python resolver, which tries
    the implicit types' regular expressions each time: a quarter of composing
    a large site, whose thousand softphones repeat the same keys, profile
    and registrar.  The tag depends on the node kind, the text and whether
    it was quoted alone (the safe loader has no path resolvers).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self._tags: dict[tuple[Any, str, Any], str] = {}

    def resolve(self, kind: Any, value: str, implicit: Any) -> str:
        key = (kind, value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)  # type: ignore[misc]
        return tag


_CSafeLoader = getattr(yaml, "CSafeLoader", None)
_FastLoader = None if _CSafeLoader is None else type("_FastLoader", (_TagMemo, _CSafeLoader), {})


def _reject_tabs(text: str, name: str) -> None:
    if "\t" not in text:  # the usual file: no line to look at
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            col = indent.index("\t") + 1
            raise InvalidInput.single(
                "tab character in indentation; YAML indents with spaces only",
                Location(name, lineno, col),
            )


def _offset_location(text: str, offset: int, name: str) -> Location:
    before = text[:offset]
    line = before.count("\n") + 1
    return Location(name, line, offset - (before.rfind("\n") + 1) + 1)


def _mark_location(exc: yaml.MarkedYAMLError, name: str) -> Location:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Location(name)
    return Location(name, mark.line + 1, mark.column + 1)


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "malformed YAML"
    context = f" ({exc.context})" if exc.context else ""
    return f"invalid YAML: {problem}{context}"


class WrittenInt(int):
    """An integer YAML 1.1 read from text that does not say so (``0100`` is 64).

    Fields that want text (an extension, a user name) must refuse it rather
    than turn ``0100`` into ``"64"``; ``written`` keeps what the user typed.
    """

    written: str


class WrittenFloat(float):
    """As :class:`WrittenInt`, for ``1.10`` (read as 1.1)."""

    written: str


def _keep_spelling(value: Any, text: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if text == repr(value):
        return value
    kept: WrittenInt | WrittenFloat
    kept = WrittenInt(value) if isinstance(value, int) else WrittenFloat(value)
    kept.written = text
    return kept


class _Builder:
    """Turns composed nodes into plain values, recording positions."""

    def __init__(self, doc: YamlDoc, vault: VaultKeys | None = None, secret: bool = False) -> None:
        self.doc = doc
        self.vault = vault
        self.secret = secret  # the text came out of a vault: its strings are secrets
        self.constructor = yaml.SafeLoader("")  # used only to construct scalars
        self.nodes = 0

    def _loc(self, node: yaml.Node) -> Location:
        return Location(self.doc.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        """The value of ``node``, its position recorded under ``path`` unless one is."""
        if path not in self.doc.positions:
            self.doc.positions[path] = self._loc(node)
        return self._value(node, path)

    def _value(self, node: yaml.Node, path: KeyPath) -> Any:
        if len(path) > MAX_DEPTH:
            raise InvalidInput.single("document nests too deeply", self._loc(node))
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidInput.single(
                f"document expands to more than {MAX_NODES} values (alias bomb?)", self._loc(node)
            )
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        raise InvalidInput.single("unsupported YAML node", self._loc(node))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == "!vault":
            return self._vault(node)
        if node.tag == "!unsafe":
            return UnsafeStr(node.value)
        if node.tag == _STR_TAG:  # SafeConstructor.construct_yaml_str returns the text itself
            return VaultStr(node.value) if self.secret else node.value
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem or "cannot be read"
            raise InvalidInput.single(f"invalid value: {problem}", self._loc(node)) from None
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else "cannot be read"
            raise InvalidInput.single(f"invalid value: {message}", self._loc(node)) from None
        if self.secret and isinstance(value, str):
            return VaultStr(value)
        return _keep_spelling(value, node.value)

    def _vault(self, node: yaml.ScalarNode) -> str:
        vault = self.vault or VaultKeys()
        try:
            return vault.decrypt(node.value)
        except VaultError as exc:
            if not isinstance(exc, VaultPasswordError):
                raise InvalidInput.single(str(exc), self._loc(node)) from None
            if vault.lenient:
                return VaultLocked(node.value)
            raise VaultInputError([Diagnostic(str(exc), self._loc(node))]) from None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise InvalidInput.single("mapping keys must be plain scalars", self._loc(key_node))
            # most keys are plain text: no trip through _scalar's other tags
            key = key_node.value if key_node.tag == _STR_TAG else str(self._scalar(key_node))
            keypath = (*path, key)
            if key in result:
                first = self.doc.positions[keypath]
                raise InvalidInput(
                    [
                        Diagnostic(
                            f"duplicate key {key!r} (first defined at line {first.line})",
                            self._loc(key_node),
                            format_keypath(keypath),
                        )
                    ]
                )
            self.doc.positions[keypath] = self._loc(key_node)  # a value is where its key is
            result[key] = self._value(value_node, keypath)
        for merge in merges:
            self._merge(result, merge, path)
        return result

    def _merge(self, result: dict[str, Any], node: yaml.Node, path: KeyPath) -> None:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise InvalidInput.single("'<<' merges only mappings", self._loc(source))
            merged = self._mapping(source, path)
            for key, value in merged.items():
                result.setdefault(key, value)
