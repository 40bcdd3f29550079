"""Which files make up an inventory, and how each is read (as ansible-core 2.19 does).

* The inventory is a file, or a directory whose entries (sorted, recursively)
  are each an inventory, skipping hidden names, ``group_vars``, ``host_vars``,
  ``vars_plugins`` and Ansible's ignored extensions (``.bak``, ``.cfg``,
  ``.md``, ``.orig``, ``.pyc``, ``.pyo``, ``.retry``, ``.rpm``, ``.rst``,
  ``.swp``, ``.txt``, ``~``).
* A ``.yml``/``.yaml``/``.json`` file is a YAML inventory; another file is
  YAML when it reads as a YAML mapping, else INI.  A vault-encrypted file is
  decrypted first.  TOML and executable inventory scripts are refused with a
  message naming what is supported.
* ``group_vars/NAME`` and ``host_vars/NAME`` beside the inventory (the
  directory itself for a directory inventory): the first of ``NAME`` (a file,
  or a directory read recursively in name order), ``NAME.yml``,
  ``NAME.yaml``, ``NAME.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qsipctl.errors import Diagnostic, InvalidInput, Location
from qsipctl.site.ini import looks_like_ini, parse_ini
from qsipctl.site.inventory import InventorySource
from qsipctl.site.vault import VaultKeys
from qsipctl.site.yamlsrc import (
    KeyPath,
    SourceTag,
    VaultInputError,
    YamlDoc,
    load_yaml_text,
    read_text,
)

YAML_EXTS = (".yml", ".yaml", ".json")
IGNORED_EXTS = (
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
)  # fmt: skip
IGNORED_NAMES = ("host_vars", "group_vars", "vars_plugins")
FORMATS = (
    "qsipctl reads Ansible YAML inventories (.yml, .yaml, .json), INI inventories, "
    "or a directory of them"
)


@dataclass
class InventoryFiles:
    """An inventory's files, read, with one table of positions for all of them."""

    path: str
    doc: YamlDoc
    sources: list[InventorySource]
    base_dir: Path  # where group_vars/ and host_vars/ are looked for
    vault: VaultKeys
    files: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # from vars files
    vault_failed: bool = False  # a vars file's vault did not open: report only that
    locked: bool = False  # a vars file stayed encrypted (--no-secrets): its variables are unknown
    _listings: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def vars_files(self, kind: str, name: str) -> list[tuple[Any, KeyPath, str]]:
        """Data of ``group_vars/NAME`` or ``host_vars/NAME`` files, in Ansible's order."""
        folder = self.base_dir / f"{kind}_vars"
        listing = self._listing(kind, folder)
        if not any(f"{name}{ext}" in listing for ext in ("", *YAML_EXTS)) or "/" in name:
            return []  # one directory listing instead of a stat per host: 20 000 hosts load fast
        out: list[tuple[Any, KeyPath, str]] = []
        for file in find_vars_files(folder, name):
            shown = _shown(self.path, self.base_dir, file)
            tag = SourceTag(shown)
            try:
                doc = load_yaml_text(read_text(file, self.vault), shown, self.vault, tag)
            except VaultInputError as exc:
                if not self.vault.lenient:
                    self.vault_failed = True
                    self.diagnostics.extend(exc.diagnostics)
                    continue
                self.locked = True
                d = exc.diagnostics[0]
                message = f"{d.message}; its variables are taken as unknown secrets"
                self.diagnostics.append(Diagnostic(message, d.location, None, "warning"))
                continue
            except InvalidInput as exc:
                self.diagnostics.extend(exc.diagnostics)
                continue
            self.doc.positions.update(doc.positions)
            self.files.append(shown)
            out.append((doc.data, (tag,), shown))
        return out

    def _listing(self, kind: str, folder: Path) -> frozenset[str]:
        if kind not in self._listings:
            try:
                self._listings[kind] = frozenset(os.listdir(folder))
            except OSError:
                self._listings[kind] = frozenset()
        return self._listings[kind]


def find_vars_files(folder: Path, name: str) -> list[Path]:
    for ext in ("", *YAML_EXTS):
        candidate = folder / f"{name}{ext}"
        if candidate.is_dir():
            return _dir_vars_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _dir_vars_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        path = folder / entry
        ext = os.path.splitext(entry)[1]
        if path.is_dir() and not ext:
            found.extend(_dir_vars_files(path))
        elif path.is_file() and (not ext or ext in YAML_EXTS):
            found.append(path)
    return found


def _shown(given: str, base: Path, file: Path) -> str:
    """A vars file's name as the user would write it: relative to the inventory's folder."""
    given_base = given if os.path.isdir(given) else os.path.dirname(given)
    try:
        rel = file.relative_to(base)
    except ValueError:
        return str(file)
    return os.path.join(given_base, str(rel)) if given_base else str(rel)


def read_inventory(path: str | Path, vault: VaultKeys | None = None) -> InventoryFiles:
    """Read an inventory file or directory; a file that cannot be read raises InvalidInput."""
    keys = vault or VaultKeys()
    given = str(path)
    if os.path.isdir(given):
        files = _directory_entries(Path(given))
        base = Path(given).resolve()
        if not files:
            raise InvalidInput.single(f"the inventory directory has no inventory files; {FORMATS}",
                                      Location(given))  # fmt: skip
    else:
        files = [Path(given)]
        base = Path(given).resolve().parent
    docs: list[YamlDoc] = []
    errors: list[Diagnostic] = []
    for i, file in enumerate(files):
        tag = SourceTag(str(file)) if i else None
        try:
            docs.append(_read_one(file, keys, tag))
        except InvalidInput as exc:
            errors.extend(exc.diagnostics)
    if errors:
        raise InvalidInput(errors)
    main = docs[0]
    doc = YamlDoc(main.path, main.data, main.positions)
    sources = [InventorySource(main.data, ())]
    for extra in docs[1:]:
        doc.positions.update(extra.positions)
        root: KeyPath = (SourceTag(extra.path),)
        sources.append(InventorySource(extra.data, root))
    return InventoryFiles(given, doc, sources, base, keys, [str(f) for f in files])


def _directory_entries(folder: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(".") or entry in IGNORED_NAMES or entry.endswith(IGNORED_EXTS):
            continue
        path = folder / entry
        if path.is_dir():
            found.extend(_directory_entries(path))
        else:
            found.append(path)
    return found


def _yaml_first(text: str, name: str, vault: VaultKeys, tag: SourceTag | None) -> YamlDoc:
    """A .yml file is YAML; as Ansible, one that is not a YAML mapping may still be INI."""
    try:
        doc = load_yaml_text(text, name, vault, tag)
    except VaultInputError:
        raise
    except InvalidInput:
        if not looks_like_ini(text):
            raise
        try:
            return parse_ini(text, name, tag)
        except InvalidInput:
            pass
        raise
    if isinstance(doc.data, dict) or doc.data is None or not looks_like_ini(text):
        return doc
    try:
        return parse_ini(text, name, tag)
    except InvalidInput:
        return doc  # the inventory parser says what shape a YAML inventory has


def _read_one(file: Path, vault: VaultKeys, tag: SourceTag | None) -> YamlDoc:
    name = str(file)
    ext = file.suffix.lower()
    if ext == ".toml":
        raise InvalidInput.single(f"TOML inventories are not supported; {FORMATS}", Location(name))
    if file.is_file() and file.stat().st_mode & 0o111 and ext not in YAML_EXTS:
        raise InvalidInput.single(
            f"executable inventory scripts are not run by qsipctl; {FORMATS} "
            "(save the script's output with ansible-inventory --list -y)",
            Location(name),
        )
    text = read_text(file, vault)
    if ext in YAML_EXTS:
        return _yaml_first(text, name, vault, tag)
    if not looks_like_ini(text):
        try:
            doc = load_yaml_text(text, name, vault, tag)
        except InvalidInput:
            doc = None
        if doc is not None and isinstance(doc.data, dict):
            return doc
    try:
        return parse_ini(text, name, tag)
    except InvalidInput as exc:
        first = exc.diagnostics[0]
        if looks_like_ini(text):
            raise
        raise InvalidInput.single(
            f"not an inventory ({FORMATS}); read as INI: {first.message}", first.location
        ) from None
