"""The ``qsipctl`` command group.

Subcommands live in their own modules and are imported only when invoked, so
``qsipctl --help`` and ``--version`` never pay for paramiko, asyncio or the SIP
stack.  Expected failures (:class:`~qsipctl.errors.QsipctlError`) become one
line on stderr and their exit code; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from qsipctl import __version__
from qsipctl.cli.common import vault_options
from qsipctl.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, InvalidInput, QsipctlError

# name -> (module, attribute, one-line help shown by ``qsipctl --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("qsipctl.cli.site_cmds", "validate", "Check a site inventory and its profiles."),
    "inventory": ("qsipctl.cli.site_cmds", "inventory", "List cores, groups and softphones."),
    "profiles": ("qsipctl.cli.site_cmds", "profiles", "List PBX profiles, or show one resolved."),
    "render": ("qsipctl.cli.site_cmds", "render", "Show the configuration each core would get."),
    "provision": ("qsipctl.cli.rollout_cmds", "provision", "Push softphone settings to cores."),
    "history": ("qsipctl.cli.rollout_cmds", "history", "List past provisioning runs."),
    "drift": ("qsipctl.cli.rollout_cmds", "drift", "Find cores whose config changed since push."),
    "diagnose": ("qsipctl.cli.diag_cmds", "diagnose", "Run SIP probes for a site's softphones."),
    "probe": ("qsipctl.cli.probe_cmd", "probe", "Run one SIP probe without an inventory."),
    "responder": (
        "qsipctl.cli.responder_cmd",
        "responder",
        "Run the far-side helper for NAT/firewall tests.",
    ),
    "lab": ("qsipctl.cli.lab_cmd", "lab", "Run the embedded demo registrar on loopback."),
    "demo": ("qsipctl.cli.demo_cmd", "demo", "Run the built-in example end to end."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None  # command not built yet
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qsipctl")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@vault_options
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Provision and diagnose the SIP softphones of Q-SYS cores."""
    ctx.obj = {"debug": debug}


def _report_error(exc: QsipctlError) -> None:
    lines = exc.lines() if isinstance(exc, InvalidInput) else [str(exc)]
    for line in lines:
        click.echo(f"qsipctl: error: {line}", err=True)


def _usage_line(exc: click.UsageError) -> str:
    """Click's three-line usage error as one line that still says where to look."""
    ctx = exc.ctx
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{exc.format_message()}{where}"


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: map expected errors to one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        return cli.main(args=args, prog_name="qsipctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("qsipctl: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as exc:
        click.echo(f"qsipctl: error: {_usage_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"qsipctl: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except QsipctlError as exc:
        if debug:
            raise
        _report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("qsipctl: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: say so in one line, traceback only with --debug
        if debug:
            raise
        click.echo(
            f"qsipctl: internal error: {type(exc).__name__}: {exc} "
            "(please report it; --debug shows the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
