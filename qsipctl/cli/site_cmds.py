"""validate, inventory, profiles, render: read-only commands over a site."""

from __future__ import annotations

from typing import Any

import click

from qsipctl.cli.common import (
    format_option,
    limit_option,
    load_selected,
    profiles_dir_option,
    site_argument,
    vault_keys,
    vault_options,
)
from qsipctl.errors import EXIT_INVALID, UsageError
from qsipctl.report.output import echo_json, table


@click.command()
@site_argument
@profiles_dir_option
@click.option(
    "--no-secrets",
    is_flag=True,
    help="Do not check that env:/file: secrets resolve (e.g. on a review machine).",
)
@vault_options
@format_option
@click.pass_context
def validate(
    ctx: click.Context, site_path: str, profile_dirs: tuple[str, ...], no_secrets: bool, fmt: str
) -> None:
    """Check SITE.yml and the profiles it uses; report every problem at once.

    Each problem is one line, file:line:col: key.path: message.  Exit 0 when
    valid (warnings allowed), 2 when not.
    """
    from qsipctl.site.load import check_site

    site, diags = check_site(
        site_path,
        profile_dirs,
        check_secrets=not no_secrets,
        vault=vault_keys(),
        push_checks=True,
    )
    errors = [d for d in diags if d.severity == "error"]
    warnings = [d for d in diags if d.severity == "warning"]
    cores = len(site.cores) if site else 0
    phones = sum(len(c.softphones) for c in site.cores) if site else 0
    if fmt == "json":
        echo_json(
            {
                "site": site_path,
                "valid": not errors,
                "errors": len(errors),
                "warnings": len(warnings),
                "cores": cores,
                "softphones": phones,
                "diagnostics": [d.as_dict() for d in diags],
            }
        )
    else:
        for d in diags:
            click.echo(d.format(), err=True)
        if errors:
            click.echo(
                f"{site_path}: invalid: {_count(errors, 'error')}, {_count(warnings, 'warning')}"
            )
        else:
            click.echo(
                f"{site_path}: valid: {_count(range(cores), 'core')}, "
                f"{_count(range(phones), 'softphone')}, {_count(warnings, 'warning')}"
            )
    if errors:
        ctx.exit(EXIT_INVALID)


def _count(items: Any, word: str) -> str:
    n = len(items)
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.command()
@site_argument
@limit_option
@click.option(
    "--host",
    "host_name",
    metavar="NAME",
    default=None,
    help="Show one host: every variable, and where each qsipctl setting came from.",
)
@profiles_dir_option
@vault_options
@format_option
def inventory(
    site_path: str,
    limit: str | None,
    host_name: str | None,
    profile_dirs: tuple[str, ...],
    fmt: str,
) -> None:
    """List the hosts of SITE: cores (model, address, groups, softphones) and the others."""
    if host_name is not None:
        if limit:
            raise UsageError("--host shows one host; it cannot be combined with --limit")
        _show_host(site_path, host_name, profile_dirs, fmt)
        return
    site, cores = _load_any(site_path, limit, profile_dirs)
    rows = [_core_row(c) for c in cores]
    if fmt == "json":
        chosen = {h.name for h in site.hosts}
        groups = {g: [h for h in hs if h in chosen] for g, hs in site.groups.items()}
        hosts = [
            {
                "name": h.name,
                "core": h.is_core,
                "groups": list(h.groups),
                "vars": h.variables,
                "settings": {k: _plain(v) for k, v in h.resolved.items()},
            }
            for h in site.hosts
        ]
        echo_json(
            {
                "site": site_path,
                "cores": rows,
                "not_cores": list(site.others),
                "hosts": hosts,
                "groups": groups,
            }
        )
        return
    table_rows = [
        (
            r["name"],
            r["model"],
            _addr(r),
            ",".join(r["groups"]) or "-",
            f"{r['softphones']}/{r['softphone_limit']}",
            ",".join(r["profiles"]) or "-",
        )
        for r in rows
    ]
    others = {h.name: h for h in site.hosts if not h.is_core}
    table_rows += [(n, "not a core", "-", ",".join(others[n].groups) or "-", "-", "-")
                   for n in site.others]  # fmt: skip
    click.echo(table(table_rows, ["CORE", "MODEL", "ADDRESS", "GROUPS", "SOFTPHONES", "PROFILES"]))
    phones = sum(r["softphones"] for r in rows)
    summary = f"{_count(rows, 'core')}, {_count(range(phones), 'softphone')}"
    if site.others:
        summary += f", {_count(site.others, 'other host')} (not a core: skipped)"
    click.echo(summary)


def _load_any(site_path: str, limit: str | None, profile_dirs: tuple[str, ...]) -> Any:
    """The site with --limit applied; unlike provision, a selection of only non-cores is fine."""
    from qsipctl.site.load import load_site

    site = load_site(site_path, profile_dirs, check_secrets=False, limit=limit, vault=vault_keys())
    return site, list(site.cores)


def _cell(value: Any) -> str:
    """One table cell: a list of softphone entries is counted (--format json shows them)."""
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        return f"{len(value)} entr{'y' if len(value) == 1 else 'ies'} (see --format json)"
    return _text(_plain(value))


def _core_row(c: Any) -> dict[str, Any]:
    from qsipctl.site.coremodels import SOFTPHONE_LIMITS

    raw_limit = c.variables.get("qsys_softphone_limit")  # validated by the loader
    limit_n = SOFTPHONE_LIMITS.get(c.model) if raw_limit is None else int(str(raw_limit))
    return {
        "name": c.name,
        "model": c.model,
        "address": c.address,
        "ssh_port": c.connection.port,
        "connector": c.connection.connector,
        "user": c.connection.user,
        "groups": list(c.groups),
        "softphones": len(c.softphones),
        "softphone_limit": limit_n,
        "profiles": sorted({p.profile for p in c.softphones}),
    }


def _show_host(site_path: str, name: str, profile_dirs: tuple[str, ...], fmt: str) -> None:
    """Like ``ansible-inventory --host``, plus the source of each qsipctl setting."""
    from qsipctl.site.load import check_site
    from qsipctl.site.patterns import split_pattern

    if split_pattern(name) != [name] or any(c in name for c in "*?~&!@"):
        raise UsageError(f"--host takes one host name, not a pattern: {name!r}")
    site, diags = check_site(
        site_path, profile_dirs, check_secrets=False, limit=name, vault=vault_keys()
    )
    errors = [d for d in diags if d.severity == "error"]
    if site is None:
        from qsipctl.errors import InvalidInput

        raise InvalidInput(errors)
    info = next((h for h in site.hosts if h.name == name), None)
    if info is None:
        raise UsageError(f"{name!r} is a group, not a host; --host shows one host")
    settings = {
        k: {"value": info.resolved[k], "source": info.sources[k]} for k in sorted(info.sources)
    }
    if fmt == "json":
        echo_json(
            {
                "name": info.name,
                "core": info.is_core,
                "groups": list(info.groups),
                "vars": info.variables,
                "settings": settings,
            }
        )
        return
    kind = "Q-SYS core" if info.is_core else "not a core (skipped by provision and diagnose)"
    click.echo(f"host {info.name}: {kind}")
    click.echo(f"groups: {', '.join(info.groups) or '-'}")
    click.echo(
        table(
            ((k, _cell(s["value"]), s["source"]) for k, s in settings.items()),
            ["SETTING", "VALUE", "FROM"],
        )
    )
    ours = {k.split(".")[0] for k in info.sources}
    rest = {k: v for k, v in info.variables.items() if k not in ours}
    if rest:
        click.echo("other variables (kept for Ansible, not used by qsipctl):")
        for key, value in rest.items():
            click.echo(f"  {key}: {_text(_plain(value))}")


def _addr(row: dict[str, Any]) -> str:
    if row["connector"] == "local":
        return "local"
    host = f"[{row['address']}]" if ":" in row["address"] else row["address"]
    return f"{host}:{row['ssh_port']}" if row["ssh_port"] != 22 else host


@click.command()
@click.argument("name", required=False)
@profiles_dir_option
@format_option
def profiles(name: str | None, profile_dirs: tuple[str, ...], fmt: str) -> None:
    """List PBX profiles, or show NAME resolved with where each value came from."""
    from qsipctl.errors import InvalidInput
    from qsipctl.site.profiles import ProfileLibrary

    lib = ProfileLibrary(profile_dirs)
    if name is not None and name not in lib:
        raise UsageError(lib.unknown_message(name))
    problems = [d for d in lib.check_all() if d.severity == "error"]
    if problems:
        raise InvalidInput(problems)
    if name is None:
        _list_profiles(lib, fmt)
    else:
        _show_profile(lib, name, fmt)


def _list_profiles(lib: Any, fmt: str) -> None:
    rows = []
    for n in lib.names():
        r = lib.resolve(n)
        val = {k: s.value for k, s in r.values.items()}
        rows.append(
            {
                "name": n,
                "extends": list(r.chain[1:]),
                "description": r.description,
                "transport": val.get("transport"),
                "registrar": str(val["registrar"]) if val.get("registrar") else None,
                "dtmf": val.get("dtmf.mode"),
                "codecs": list(val.get("codecs", ())),
                "file": str(r.path),
            }
        )
    if fmt == "json":
        echo_json({"profiles": rows})
        return
    click.echo(
        table(
            (
                (
                    r["name"],
                    " -> ".join(r["extends"]) or "-",
                    r["transport"] or "-",
                    r["dtmf"] or "-",
                    ",".join(r["codecs"]) or "-",
                    r["description"],
                )
                for r in rows
            ),
            ["PROFILE", "EXTENDS", "TRANSPORT", "DTMF", "CODECS", "DESCRIPTION"],
        )
    )


def _show_profile(lib: Any, name: str, fmt: str) -> None:
    from qsipctl.site.fields import FIELDS

    r = lib.resolve(name)
    rows = []
    for leaf, spec in FIELDS.items():
        src = r.values.get(leaf)
        value = src.value if src else spec.default
        rows.append(
            {
                "key": leaf,
                "value": _plain(value),
                "scope": _SCOPES[spec.scope],
                "source": src.describe() if src else "default",
            }
        )
    if fmt == "json":
        echo_json(
            {
                "name": name,
                "chain": list(r.chain),
                "description": r.description,
                "file": str(r.path),
                "settings": rows,
            }
        )
        return
    click.echo(f"profile {name}: {r.description}")
    click.echo(f"file: {r.path}")
    if len(r.chain) > 1:
        click.echo(f"extends: {' -> '.join(r.chain[1:])}")
    click.echo(
        table(
            ((x["key"], _text(x["value"]), x["scope"], x["source"]) for x in rows),
            ["KEY", "VALUE", "APPLIES TO", "FROM"],
        )
    )


_SCOPES = {
    "core": "core-wide",
    "phone": "softphone",
    "expect": "expectation",
    "meta": "provisioning",
}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | list):
        return value
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


@click.command()
@site_argument
@limit_option
@profiles_dir_option
@click.option("--show-secrets", is_flag=True, help="Show passwords instead of ********.")
@click.option("--sheet", is_flag=True, help="A settings sheet laid out like Core Manager.")
@vault_options
@format_option
def render(
    site_path: str,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    show_secrets: bool,
    sheet: bool,
    fmt: str,
) -> None:
    """Show the exact document each core would get (docs/config-format.md)."""
    import json

    from qsipctl.site.render import render_core

    _, cores = load_selected(site_path, limit, profile_dirs)
    rendered = [render_core(c) for c in cores]
    if sheet:
        print_sheets(rendered, show_secrets, fmt)
        return
    texts = [r.document.decode() if show_secrets else r.masked for r in rendered]
    if fmt == "json":
        echo_json({r.core.name: json.loads(t) for r, t in zip(rendered, texts, strict=True)})
        return
    for r, text in zip(rendered, texts, strict=True):
        click.echo(f"# {r.core.name} ({r.core.model}) -> {r.core.connection.config_path}")
        click.echo(text, nl=False)


def print_sheets(rendered: list[Any], show_secrets: bool, fmt: str) -> None:
    from qsipctl.site.sheet import build_sheet

    sheets = []
    for r in rendered:
        passwords = [p.password.reveal() for p in r.core.softphones] if show_secrets else None
        sheets.append(build_sheet(r.core, passwords))
    if fmt == "json":
        echo_json({"sheets": [s.as_dict() for s in sheets]})
        return
    for i, s in enumerate(sheets):
        if i:
            click.echo()
        click.echo(f"{s.core} ({s.model}) - Core Manager > Telephony > Softphones")
        click.echo("  Core-wide settings")
        _rows(s.core_wide, "    ")
        for title, rows, expect in s.softphones:
            click.echo()
            click.echo(f"  {title}")
            _rows(rows, "    ")
            if expect:
                click.echo("    PBX expects (no field on the core; for reference):")
                _rows(expect, "      ")


def _rows(rows: list[tuple[str, str]], indent: str) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{indent}{key.ljust(width)}  {value}")
