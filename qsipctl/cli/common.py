"""Click options every command shares, so they read and behave the same everywhere."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from qsipctl.site.model import Core, Site

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

site_argument = click.argument("site_path", metavar="SITE.yml", type=click.Path(path_type=str))


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


VAULT_META = "qsipctl.vault"


def _store_vault(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    """Collect the options given before the command (``qsipctl --vault-id ...``) and after."""
    given = ctx.meta.setdefault(VAULT_META, {})
    given[param.name] = (*given.get(param.name, ()), *value)


def vault_options(func: F) -> F:
    """``--vault-password-file`` / ``--vault-id``, as ansible's; read by :func:`load_selected`."""
    func = click.option(
        "--vault-id",
        "vault_ids",
        multiple=True,
        metavar="[LABEL@]FILE",
        expose_value=False,
        callback=_store_vault,
        help="Vault password file with its vault id (repeatable; 'LABEL@prompt' asks).",
    )(func)
    return click.option(
        "--vault-password-file",
        "vault_password_files",
        multiple=True,
        metavar="FILE",
        expose_value=False,
        callback=_store_vault,
        help="File holding the Ansible Vault password (also ANSIBLE_VAULT_PASSWORD_FILE).",
    )(func)


def vault_keys() -> Any:
    """The vault passwords given on this command line (and in ansible's environment)."""
    from qsipctl.errors import UsageError
    from qsipctl.site.vault import VaultError, load_keys

    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(VAULT_META, {}) if ctx is not None else {}
    try:
        return load_keys(given.get("vault_password_files", ()), given.get("vault_ids", ()))
    except VaultError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def long_lived() -> Iterator[None]:
    """For a block whose objects live until the command ends: modules, the site, its jobs.

    The cyclic collector is kept out of them: off while they are made (all
    survive, so each collection would only walk them again), then frozen out
    of its generations so later full collections skip them.  Loading a
    1,000-phone site spent ~0.15 s of CPU collecting nothing, importing the
    probe stack ~10 ms more.  Nested blocks leave the collector to the outer.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


@contextmanager
def short_lived(young: int = 50_000) -> Iterator[None]:
    """For a probe run: its garbage dies by reference counting, so collect rarely.

    A probe run makes ~50 container objects per SIP message and frees them
    at once (the success path leaves no reference cycle:
    ``tests/integration/test_register_concurrency.py`` checks it).  At the
    default young-generation threshold (700 more allocations than frees)
    the collector still ran ~300 times per 1,000 phones, walking every live
    probe's state each time: ~10 % of the run's CPU, for nothing.  Cycles
    (a refused probe's exception frames) are still collected, once per
    ``young`` net allocations (a few MB).
    """
    old = gc.get_threshold()
    gc.set_threshold(young, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def load_selected(
    site_path: str, limit: str | None, profile_dirs: Sequence[str], *, check_secrets: bool = True
) -> tuple[Site, list[Core]]:
    """Load the site with ``--limit`` applied first, then validate what it selected.

    Hosts outside the limit are not validated, and hosts that are not Q-SYS
    cores (switches, servers in the same inventory) are skipped.
    """
    from qsipctl.errors import UsageError

    with long_lived():  # the loader's modules and the site
        from qsipctl.site.load import load_site

        site = load_site(
            site_path, profile_dirs, check_secrets=check_secrets, limit=limit, vault=vault_keys()
        )
    if limit and not site.cores:
        others = ", ".join(site.others[:5])
        raise UsageError(f"--limit {limit!r} selects no Q-SYS cores, only other hosts: {others}")
    return site, list(site.cores)


def run_cancellable(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())`` with SIGTERM taken like Ctrl-C: the work is cancelled.

    A cancelled probe or call still runs its ``finally`` (unbind, BYE or
    CANCEL, closing its ports) before the process ends, where SIGTERM's
    default action would kill it with a binding left on the PBX.  Signals
    are the CLI's business: the engine only ever sees a cancellation.
    """
    import asyncio
    import signal

    async def guarded() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await main()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(guarded())
