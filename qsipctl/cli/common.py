"""Click options every command shares, so they read and behave the same everywhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from qsipctl.site.model import Core, Site

F = TypeVar("F", bound=Callable[..., Any])

site_argument = click.argument(
    "site_path", metavar="SITE.yml", type=click.Path(dir_okay=False, path_type=str)
)


def limit_option(func: F) -> F:
    return click.option(
        "--limit",
        "-l",
        "limit",
        metavar="PATTERN",
        default=None,
        help="Only these cores: group, host, glob, ~regex, a:b, a:&b, a:!b.",
    )(func)


def profiles_dir_option(func: F) -> F:
    return click.option(
        "--profiles-dir",
        "profile_dirs",
        multiple=True,
        metavar="DIR",
        type=click.Path(file_okay=False, path_type=str),
        help="Extra PBX profile directory (repeatable; later ones win).",
    )(func)


def format_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output for people (table) or scripts (json).",
    )(func)


def load_selected(
    site_path: str, limit: str | None, profile_dirs: Sequence[str], *, check_secrets: bool = True
) -> tuple[Site, list[Core]]:
    """Load and validate the site, then apply ``--limit``; errors raise QsipctlError."""
    from qsipctl.site.load import load_site
    from qsipctl.site.patterns import select

    site = load_site(site_path, profile_dirs, check_secrets=check_secrets)
    return site, select(site, limit)
