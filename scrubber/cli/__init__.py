"""The command line: a thin layer over the library.

Exit codes: see exit_codes.py (documented in the README, kept stable for pipelines). main() turns
every error into a message and one of them: no traceback reaches a user unless SCRUBBER_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
import traceback
from importlib.metadata import version as package_version

import click

from ..errors import RuleDataError
from ..rules.ruleset import load_rules
from .common import EXIT_USAGE, describe
from .exit_codes import EXIT_INTERNAL
from .interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from .terminal import debugging, printable, short


def _version_text() -> str:
    from ..refdata import ReferenceData  # here, not above: a scrub starts without it

    try:
        rules = load_rules(use_env=True)
    except RuleDataError as exc:
        return f"scrubber {package_version('scrubber')}\nrules: invalid ({exc})"
    info = describe(rules)
    layers = "built-in" + "".join(f" + {p}" for p in rules.layers[1:])
    lines = [
        f"scrubber {info['version']}",
        f"rules: {layers}, {len(rules.catalog)} rules, data digest {info['rules']['digest']}",  # type: ignore[index]
        "drugs: " + ", ".join(f"{d.name} ({'/'.join(d.hcpcs_codes)})" for d in rules.drugs.drugs),
        "code tables:",
        *(f"  {name}: {version}" for name, version in rules.table_versions().items()),
        f"implementation guides: pyx12 {info['pyx12']} maps (837P 005010X222A1, 837I 005010X223A2)",
        *ReferenceData.open().summary(),
    ]
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


class StdoutClosed(Exception):
    """Standard output was closed by its reader. Not an OSError: click would turn that into exit 1,
    which means "a claim was rejected"."""


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise StdoutClosed from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the program, rule data and code table versions, and exit.")
def cli() -> None:
    """Scrub X12 5010 837P and 837I claim files before they are sent."""


# They register their commands on `cli`.
from . import data_commands, rules_commands, scrub_command, watch_command  # noqa: E402

__all__ = ["cli", "data_commands", "main", "rules_commands", "scrub_command", "watch_command"]


def main() -> None:
    """Entry point: click's own handling, except that every tool error exits 2 (1 means
    "a claim was rejected"), an interrupted run exits 130 (SIGINT) or 143 (SIGTERM) with nothing
    half-written, and anything unexpected is one line and exit 4, never a traceback."""
    try:
        cli.main(prog_name="scrubber", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.message = printable(exc.message)  # it may quote a file name: shown, never obeyed
        exc.show()
        sys.exit(EXIT_USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("scrubber: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        click.echo("scrubber: terminated", err=True)
        sys.exit(EXIT_TERMINATED)
    except (StdoutClosed, BrokenPipeError):
        # Whoever read standard output stopped (`| head`): say so once, and keep Python from
        # complaining again when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        click.echo("scrubber: standard output was closed before everything was written", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # a bug: one line, an exit code that says so
        if debugging():
            traceback.print_exc()
        click.echo(f"scrubber: internal error: {type(exc).__name__}: {short(exc)}", err=True)
        sys.exit(EXIT_INTERNAL)
