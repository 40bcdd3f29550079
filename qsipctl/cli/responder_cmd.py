"""``qsipctl responder``: run the far-side helper for ``diagnose --nat`` / ``probe nat``."""

from __future__ import annotations

import click

from qsipctl.errors import UsageError


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default="0.0.0.0:7077",
    show_default=True,
    help="Control port, UDP and TCP (inbound probes leave from PORT+1).",
)
@click.option(
    "--sip-port",
    type=click.IntRange(0, 65535),
    default=5060,
    show_default=True,
    help="UDP port for the SIP echo (ALG detection); 0 turns it off.",
)
@click.option(
    "--secret-env",
    metavar="VAR",
    required=True,
    help="Environment variable holding the shared secret (16+ bytes).",
)
def responder(listen: str, sip_port: int, secret_env: str) -> None:
    """Answer authenticated NAT/firewall tests; never a reflector or an amplifier.

    Requests must carry an HMAC-SHA256 of the shared secret, a fresh
    timestamp and a nonce never seen before; anything else gets no answer.
    Answers go only to the request's source address, are never larger than
    the request (probes and echoes have a small fixed budget per source),
    and each source is rate-limited.  Stop it with Ctrl-C.
    """
    import asyncio

    from qsipctl.cli.nat_cmd import parse_addr, read_secret
    from qsipctl.responder.server import ResponderServer, ServerConfig

    secret = read_secret(secret_env)
    assert secret is not None
    host, port = parse_addr(listen, 7077, "--listen")
    if port >= 65535:
        raise UsageError("--listen: the port must leave room for PORT+1")
    server = ResponderServer(ServerConfig(host, port, sip_port or None), secret)

    async def main() -> None:
        import signal

        stop = asyncio.Event()
        # SIGTERM (a service manager, a test) stops it cleanly, like Ctrl-C
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await server.start()
        click.echo(
            f"responder listening on {host}:{port} (udp+tcp), probes from {port + 1}/udp"
            + (f", SIP echo on {sip_port}/udp" if sip_port else ""),
            err=True,
        )
        try:
            await stop.wait()
        finally:
            server.close()
            st = server.core.stats
            click.echo(
                f"responder stopped: {st.packets_out} packets / {st.bytes_out} bytes sent, "
                f"refused {dict(sorted(st.refused.items()))}",
                err=True,
            )

    try:
        asyncio.run(main())
    except OSError as exc:
        raise UsageError(f"--listen {listen}: {exc.strerror or exc}") from None
