"""``qsipctl lab``: the embedded demo registrar, in the foreground.

Why a command of its own: an engineer without a PBX at hand can point
``qsipctl probe register`` (or a real phone) at it and watch what a registrar
sees.  Heavy modules (asyncio, the SIP stack) are imported only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from qsipctl.lab.registrar import LabAccount, LabEvent


@click.command("lab")
@click.option("--listen", "host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5060,
    show_default=True,
    help="UDP and TCP port (0: any free port, reported at start).",
)
@click.option("--udp-port", type=click.IntRange(0, 65535), help="UDP port, if not --port.")
@click.option("--tcp-port", type=click.IntRange(0, 65535), help="TCP port, if not --port.")
@click.option(
    "--account",
    "account_specs",
    multiple=True,
    metavar="USER:PASSWORD",
    help="An account (repeatable); PASSWORD may be env:NAME or file:PATH.",
)
@click.option(
    "--accounts",
    "accounts_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file of accounts: a mapping USER: PASSWORD.",
)
@click.option("--realm", default="qsipctl.lab", show_default=True, help="Digest realm.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: one readable line per event; json: one JSON object per line.",
)
def lab(
    host: str,
    port: int,
    udp_port: int | None,
    tcp_port: int | None,
    account_specs: tuple[str, ...],
    accounts_file: Path | None,
    realm: str,
    duration: float | None,
    fmt: str,
) -> None:
    """Run the embedded demo registrar (digest auth, UDP and TCP) until Ctrl-C."""
    accounts = _load_accounts(account_specs, accounts_file)
    _check_host(host)
    import asyncio

    from qsipctl.lab.server import LabRegistrar

    lab_server = LabRegistrar(
        accounts,
        host=host,
        udp_port=port if udp_port is None else udp_port,
        tcp_port=port if tcp_port is None else tcp_port,
        realm=realm,
        on_event=lambda e: _print_event(e, fmt),
    )
    try:
        asyncio.run(_run(lab_server, [a.username for a in accounts], fmt, duration))
    except OSError as exc:
        from qsipctl.errors import UsageError

        raise UsageError(f"lab: cannot listen on {host}: {exc.strerror or exc}") from None


async def _run(lab_server: Any, users: list[str], fmt: str, duration: float | None) -> None:
    """Serve until SIGINT/SIGTERM or ``duration``: a clean stop, not an error."""
    import asyncio
    import contextlib
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with lab_server:
        _print_started(lab_server, users, fmt)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    _emit(fmt, {"event": "stopped"}, "lab stopped")


def _load_accounts(specs: tuple[str, ...], path: Path | None) -> list[LabAccount]:
    from qsipctl.lab.accounts import accounts_from_file, accounts_from_specs
    from qsipctl.lab.registrar import DEMO_ACCOUNTS

    accounts = accounts_from_specs(specs)
    if path is not None:
        accounts += accounts_from_file(path)
    return accounts or list(DEMO_ACCOUNTS)


def _check_host(host: str) -> None:
    from qsipctl.addr import is_ip, is_loopback
    from qsipctl.errors import UsageError

    if not is_ip(host):
        raise UsageError(f"--listen: {host!r} is not an IP address")
    if not is_loopback(host):
        click.echo(
            f"qsipctl: warning: the lab registrar on {host} is reachable from the network",
            err=True,
        )


def _print_started(lab_server: Any, users: list[str], fmt: str) -> None:
    host = lab_server.host
    data = {
        "event": "started",
        "host": host,
        "udp_port": lab_server.udp_port,
        "tcp_port": lab_server.tcp_port,
        "realm": lab_server.registrar.realm,
        "accounts": users,
    }
    where = f"[{host}]" if ":" in host else host  # udp:[::1]:5060, not udp:::1:5060
    text = (
        f"lab registrar on udp:{where}:{lab_server.udp_port} tcp:{where}:{lab_server.tcp_port}"
        f" realm {lab_server.registrar.realm}; accounts: {', '.join(users)}; Ctrl-C stops"
    )
    _emit(fmt, data, text)


def _print_event(event: LabEvent, fmt: str) -> None:
    from qsipctl.report.output import to_jsonable

    data = {"event": "register", **to_jsonable(event)}
    parts = [f"{event.status}", event.outcome, f"user={event.user or '-'}", f"from={event.source}"]
    if event.contact:
        parts.append(f"contact={event.contact}")
    if event.algorithm:
        parts.append(f"algorithm={event.algorithm}")
    if event.expires is not None:
        parts.append(f"expires={event.expires}")
    _emit(fmt, data, "REGISTER " + " ".join(parts))


def _emit(fmt: str, data: dict[str, Any], text: str) -> None:
    """JSON Lines for scripts (a long-running command cannot print one document)."""
    if fmt == "json":
        import json

        click.echo(json.dumps(data, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(text)
