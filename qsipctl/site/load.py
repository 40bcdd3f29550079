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
from qsipctl.site.inventory import SETTINGS, parse_inventory
from qsipctl.site.model import Core, Site, Softphone
from qsipctl.site.profiles import SHIPPED_DIR, ProfileLibrary
from qsipctl.site.vault import VaultError, VaultKeys, load_keys


def load_site(
    path: str | Path,
    profile_dirs: Sequence[str | Path] = (),
    *,
    check_secrets: bool = True,
    limit: str | None = None,
    vault: VaultKeys | None = None,
) -> Site:
    """Load and validate a site; raise :class:`InvalidInput` with every error.

    ``limit`` (a host pattern) selects hosts before anything about them is
    validated; a pattern that matches nothing raises UsageError.
    """
    site, diagnostics = check_site(
        path, profile_dirs, check_secrets=check_secrets, limit=limit, vault=vault
    )
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors or site is None:
        raise InvalidInput(errors)
    return site


def check_site(
    path: str | Path,
    profile_dirs: Sequence[str | Path] = (),
    *,
    check_secrets: bool = True,
    limit: str | None = None,
    vault: VaultKeys | None = None,
    push_checks: bool = False,
) -> tuple[Site | None, list[Diagnostic]]:
    """Errors and warnings for a site; the Site only when there are no errors.

    ``push_checks`` (what ``validate`` does) also reports what only a push
    would meet: an unreadable SSH key file, two cores writing one file.
    Commands that never push (render, diagnose) do not need SSH keys.
    """
    from qsipctl.site.build import build_site_hosts
    from qsipctl.site.patterns import select_names
    from qsipctl.site.sources import read_inventory
    from qsipctl.site.template import InventoryTemplater

    try:
        keys = vault if vault is not None else load_keys()
    except VaultError as exc:
        return None, [Diagnostic(str(exc), Location(str(path)))]
    if not check_secrets:
        keys = VaultKeys(keys.secrets, lenient=True)
    try:
        files = read_inventory(path, keys)
    except InvalidInput as exc:
        return None, list(exc.diagnostics)
    dirs = effective_profile_dirs(path, profile_dirs)
    library = ProfileLibrary(dirs)

    def selector(
        order: tuple[str, ...], groups: dict[str, tuple[str, ...]], created: tuple[str, ...]
    ) -> list[str]:
        return select_names(order, groups, limit, created)

    inventory = parse_inventory(
        files.doc,
        files.sources,
        files.vars_files,
        selector if limit else None,
        InventoryTemplater(str(path), SETTINGS, lambda: files.locked),
    )
    diags = [*inventory.diagnostics, *files.diagnostics]
    if files.vault_failed:  # every variable built on the locked values would only repeat it
        vault_errors = [d for d in files.diagnostics if d.severity == "error"]
        return None, _unique(vault_errors)
    cores, others, infos = build_site_hosts(
        inventory, library, files.base_dir, diags, check_secrets, push_checks
    )
    library.check_user_profiles()  # the user's own files are checked even when unused
    diags.extend(library.diagnostics)
    diags.extend(shared_accounts(cores))
    diags = _unique(diags)
    if _has_errors(diags):
        return None, diags
    site = Site(
        path=str(path),
        cores=tuple(cores),
        groups=dict(inventory.groups),
        profile_dirs=tuple(str(d) for d in dirs),
        others=tuple(others),
        hosts=tuple(infos),
    )
    return site, diags


def effective_profile_dirs(
    site_path: str | Path, profile_dirs: Sequence[str | Path] = ()
) -> list[str | Path]:
    """``profiles/`` beside the site file (if any), then ``--profiles-dir`` in order.

    Like Ansible's ``group_vars/`` next to an inventory: a site's own profiles
    travel with it and need no option.  The shipped library comes first.
    """
    site = Path(site_path).resolve()
    beside = (site if site.is_dir() else site.parent) / "profiles"
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
