"""PBX profiles: what a kind of PBX expects, written once and shared by many cores.

A profile is a YAML file ``NAME.yml`` in the shipped library
(``qsipctl/data/profiles``) or in a user directory (``--profiles-dir``; later
directories override earlier ones, so a site may shadow a shipped profile).
``extends: other`` inherits leaf by leaf.  Resolution keeps, for every value,
the file and line it came from: conflict messages and ``qsipctl profiles NAME``
need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qsipctl.errors import Diagnostic, InvalidInput, Location
from qsipctl.site.fields import FIELDS, PORT_HINTS, PROFILE_ONLY_KEYS, flatten
from qsipctl.site.suggest import did_you_mean
from qsipctl.site.values import FieldError, as_str, ipv6_port_hint, type_name
from qsipctl.site.yamlsrc import YamlDoc, load_yaml_text, read_text

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "profiles"
PROFILE_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class Sourced:
    """A resolved value and where it came from (``origin`` is for people)."""

    value: Any
    location: Location | None
    origin: str

    def describe(self) -> str:
        return f"{self.origin} ({self.location})" if self.location else self.origin


@dataclass
class ProfileFile:
    """One profile file, its fields parsed when first used."""

    name: str
    path: Path
    doc: YamlDoc | None = None
    values: dict[str, Sourced] = field(default_factory=dict)
    extends: str | None = None
    extends_loc: Location | None = None
    description: str = ""
    shadowed: list[Path] = field(default_factory=list)
    real: Path | None = None  # the file to open; ``path`` is how messages name it


@dataclass
class ResolvedProfile:
    """A profile merged with what it extends: the values a softphone starts from."""

    name: str
    chain: tuple[str, ...]  # this profile first, then what it extends
    values: dict[str, Sourced]
    description: str
    path: Path


class ProfileLibrary:
    """Profiles found in the shipped library and the user's directories."""

    def __init__(self, profile_dirs: Sequence[str | Path] = (), shipped: bool = True) -> None:
        self.files: dict[str, ProfileFile] = {}
        self.diagnostics: list[Diagnostic] = []
        self._loaded: set[str] = set()
        self._resolved: dict[str, ResolvedProfile] = {}
        self._cycles: set[frozenset[str]] = set()
        dirs = [SHIPPED_DIR] if shipped else []
        dirs += [Path(d) for d in profile_dirs]
        for directory in dirs:
            self._scan(directory)

    def _scan(self, directory: Path) -> None:
        if not directory.is_dir():
            self.diagnostics.append(
                Diagnostic("profiles directory does not exist", Location(str(directory)))
            )
            return
        try:
            listing = sorted(directory.iterdir())
        except OSError as exc:
            self.diagnostics.append(
                Diagnostic(f"cannot list profiles: {exc.strerror}", Location(str(directory)))
            )
            return
        here: dict[str, Path] = {}
        for path in listing:
            if path.suffix in PROFILE_SUFFIXES and path.is_file():
                real, path = path, _display_path(path)
                if path.stem in here:
                    self.diagnostics.append(
                        Diagnostic(
                            f"profile {path.stem!r} is also {here[path.stem]}: "
                            "one file per profile name in a directory",
                            Location(str(path)),
                        )
                    )
                    continue
                here[path.stem] = path
                old = self.files.get(path.stem)
                entry = ProfileFile(path.stem, path, real=real)
                if old is not None:
                    entry.shadowed = [*old.shadowed, old.path]
                self.files[path.stem] = entry

    def names(self) -> list[str]:
        return sorted(self.files)

    def __contains__(self, name: object) -> bool:
        return name in self.files

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self.files)
        return f"unknown profile {name!r}{hint}; known: {', '.join(self.names())}"

    def load(self, name: str) -> ProfileFile:
        """Parse one profile file (once); problems go to ``self.diagnostics``."""
        entry = self.files[name]
        if name in self._loaded:
            return entry
        self._loaded.add(name)
        try:
            entry.doc = load_yaml_text(read_text(entry.real or entry.path), str(entry.path))
        except InvalidInput as exc:
            self.diagnostics.extend(exc.diagnostics)
            return entry
        self._parse(entry, entry.doc)
        return entry

    def _parse(self, entry: ProfileFile, doc: YamlDoc) -> None:
        data = doc.data
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.diagnostics.append(
                doc.diag((), f"a profile must be a mapping, got {type_name(data)}")
            )
            return
        for leaf, value, kp in flatten(data, (), PROFILE_ONLY_KEYS):
            if leaf is None:
                self.diagnostics.append(doc.diag(kp, str(value)))
            elif leaf == "extends":
                self._parse_extends(entry, doc, value, kp)
            elif leaf == "description":
                self._parse_description(entry, doc, value, kp)
            else:
                self._parse_leaf(entry, doc, leaf, value, kp)

    def _parse_description(self, entry: ProfileFile, doc: YamlDoc, value: Any, kp: Any) -> None:
        try:
            entry.description = "" if value is None else as_str(value, "one line of text")
        except FieldError as exc:
            self.diagnostics.append(doc.diag(kp, str(exc)))

    def _parse_extends(self, entry: ProfileFile, doc: YamlDoc, value: Any, kp: Any) -> None:
        if not isinstance(value, str) or not value:
            self.diagnostics.append(doc.diag(kp, "extends names one profile"))
            return
        entry.extends = value
        entry.extends_loc = doc.where(kp)

    def _parse_leaf(self, entry: ProfileFile, doc: YamlDoc, leaf: str, value: Any, kp: Any) -> None:
        spec = FIELDS[leaf]
        try:
            parsed = None if value is None and spec.nullable else spec.parse(value)
        except FieldError as exc:
            self.diagnostics.append(doc.diag(kp, str(exc)))
            return
        entry.values[leaf] = Sourced(parsed, doc.where(kp), f"profile {entry.name}")
        hint = ipv6_port_hint(value, PORT_HINTS[leaf]) if leaf in PORT_HINTS else None
        if hint:
            d = doc.diag(kp, hint)
            self.diagnostics.append(Diagnostic(d.message, d.location, d.keypath, "warning"))

    def resolve(self, name: str) -> ResolvedProfile:
        """Merge ``name`` with what it extends; cycles and unknown parents are errors."""
        if name not in self._resolved:
            self._resolved[name] = self._resolve(name, self.diagnostics)
        return self._resolved[name]

    def _resolve(self, name: str, out: list[Diagnostic]) -> ResolvedProfile:
        chain: list[ProfileFile] = []
        current: str | None = name
        while current is not None:
            if current not in self.files:
                last = chain[-1]
                out.append(Diagnostic(self.unknown_message(current), last.extends_loc, "extends"))
                break
            if any(p.name == current for p in chain):
                self._report_cycle([p.name for p in chain], current, chain[-1], out)
                break
            entry = self.load(current)
            chain.append(entry)
            current = entry.extends
        values: dict[str, Sourced] = {}
        for entry in reversed(chain):
            values.update(entry.values)
        return ResolvedProfile(
            name=name,
            chain=tuple(p.name for p in chain),
            values=values,
            description=chain[0].description if chain else "",
            path=self.files[name].path,
        )

    def _report_cycle(
        self, names: list[str], again: str, last: ProfileFile, out: list[Diagnostic]
    ) -> None:
        """Once per cycle, however many of its members are resolved."""
        loop = names[names.index(again) :]
        if frozenset(loop) in self._cycles:
            return
        self._cycles.add(frozenset(loop))
        cycle = " -> ".join([*names, again])
        out.append(Diagnostic(f"extends cycle: {cycle}", last.extends_loc, "extends"))

    def check_user_profiles(self) -> None:
        """Resolve every profile that does not come from the shipped library."""
        shipped = SHIPPED_DIR.resolve()
        for name, entry in self.files.items():
            if (entry.real or entry.path).resolve().parent != shipped:
                self.resolve(name)

    def check_all(self) -> list[Diagnostic]:
        """Load and resolve every profile (``qsipctl validate`` and ``profiles``)."""
        for name in self.names():
            self.resolve(name)
        seen: set[str] = set()
        unique: list[Diagnostic] = []
        for d in self.diagnostics:
            key = d.format()
            if key not in seen:
                seen.add(key)
                unique.append(d)
        return unique


def _display_path(path: Path) -> Path:
    """How messages name a profile file, wherever qsipctl runs from.

    A shipped profile is named by its place in the package
    (``qsipctl/data/profiles/freepbx.yml``), the user's own relative to the
    working directory when inside it.
    """
    if path.resolve().parent == SHIPPED_DIR:
        return Path("qsipctl", "data", "profiles", path.name)
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
