"""Inventory + profiles -> a validated :class:`~qsipctl.site.model.Site`.

Every problem is collected, not raised on first sight: ``qsipctl validate``
must show all of them at once.  Softphone values resolve leaf by leaf with
the documented precedence

    field default < profile (base first along ``extends``) < all vars
    < parent group < child group < host < softphone entry

and every resolved value keeps its source, so a conflict on a core-wide
setting can name both files and lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qsipctl.errors import Diagnostic, InvalidInput, Location
from qsipctl.site.inventory import Inventory, parse_inventory
from qsipctl.site.model import Core, Site, Softphone
from qsipctl.site.profiles import SHIPPED_DIR, ProfileLibrary
from qsipctl.site.yamlsrc import load_yaml_file


def load_site(
    path: str | Path, profile_dirs: Sequence[str | Path] = (), *, check_secrets: bool = True
) -> Site:
    """Load and validate a site; raise :class:`InvalidInput` with every error."""
    site, diagnostics = check_site(path, profile_dirs, check_secrets=check_secrets)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors or site is None:
        raise InvalidInput(errors)
    return site


def check_site(
    path: str | Path, profile_dirs: Sequence[str | Path] = (), *, check_secrets: bool = True
) -> tuple[Site | None, list[Diagnostic]]:
    """Errors and warnings for a site; the Site only when there are no errors."""
    from qsipctl.site.build import build_cores

    try:
        doc = load_yaml_file(path)
    except InvalidInput as exc:
        return None, list(exc.diagnostics)
    dirs = effective_profile_dirs(path, profile_dirs)
    library = ProfileLibrary(dirs)
    inventory = parse_inventory(doc)
    diags = list(inventory.diagnostics)
    base_dir = Path(path).resolve().parent
    cores = build_cores(inventory, library, base_dir, diags, check_secrets)
    library.check_user_profiles()  # the user's own files are checked even when unused
    diags.extend(library.diagnostics)
    diags.extend(shared_accounts(cores))
    diags = _unique(diags)
    if _has_errors(diags):
        return None, diags
    site = Site(
        path=str(path),
        cores=tuple(cores),
        groups=_groups(inventory),
        profile_dirs=tuple(str(d) for d in dirs),
    )
    return site, diags


def effective_profile_dirs(
    site_path: str | Path, profile_dirs: Sequence[str | Path] = ()
) -> list[str | Path]:
    """``profiles/`` beside the site file (if any), then ``--profiles-dir`` in order.

    Like Ansible's ``group_vars/`` next to an inventory: a site's own profiles
    travel with it and need no option.  The shipped library comes first.
    """
    beside = Path(site_path).resolve().parent / "profiles"
    auto: list[str | Path] = []
    if beside.is_dir() and beside.resolve() != SHIPPED_DIR.resolve():
        auto.append(beside)
    return [*auto, *profile_dirs]


def shared_accounts(cores: Sequence[Core]) -> list[Diagnostic]:
    """Warn when two softphones register the same account to the same registrar.

    Most PBXs keep one contact per extension (Asterisk's max_contacts=1), so
    the two would keep replacing each other's registration and calls would
    ring only the last one to register.
    """
    seen: dict[tuple[str, str, str], tuple[Core, Softphone]] = {}
    out: list[Diagnostic] = []
    for core in cores:
        for phone in core.softphones:
            if not phone.register:
                continue
            key = (str(phone.proxy), phone.domain, phone.username)
            if key in seen:
                first_core, first = seen[key]
                out.append(
                    Diagnostic(
                        f"account {phone.username}@{phone.domain} is also registered by "
                        f"softphone {first.name!r} on {first_core.name} ({first.source}); "
                        "most PBXs keep one registration per account",
                        phone.source,
                        None,
                        "warning",
                    )
                )
            else:
                seen[key] = (core, phone)
    return out


def _groups(inventory: Inventory) -> dict[str, tuple[str, ...]]:
    groups = dict(inventory.groups)
    explicit = set(groups.get("ungrouped", ()))
    grouped = {h for g, hs in groups.items() if g not in ("all", "ungrouped") for h in hs}
    groups["ungrouped"] = tuple(
        h.name for h in inventory.hosts if h.name in explicit or h.name not in grouped
    )
    return groups


def _has_errors(diags: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diags)


def _unique(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[str] = set()
    out: list[Diagnostic] = []
    for d in diags:
        if d.format() not in seen:
            seen.add(d.format())
            out.append(d)
    return sorted(out, key=_order)


def _order(d: Diagnostic) -> tuple[str, int, int]:
    loc = d.location or Location("")
    return (loc.file, loc.line or 0, loc.col or 0)
