"""The command line: a thin layer over the library.

Exit codes (documented in the README, kept stable for pipelines):
  0  every input scrubbed, no claim rejected
  1  at least one claim rejected
  2  usage error, or invalid rule data
  3  at least one input could not be read as an 837 (nothing written for it)
  130  interrupted (nothing half-written)
"""

from __future__ import annotations

import sys
from importlib.metadata import version as package_version

import click

from ..errors import RuleDataError
from ..rules.ruleset import load_rules
from .common import EXIT_USAGE, describe


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


@click.group()
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the program, rule data and code table versions, and exit.")
def cli() -> None:
    """Scrub X12 5010 837P and 837I claim files before they are sent."""


# They register their commands on `cli`.
from . import data_commands, rules_commands, scrub_command, watch_command  # noqa: E402

__all__ = ["cli", "data_commands", "main", "rules_commands", "scrub_command", "watch_command"]


def main() -> None:
    """Entry point: click's own handling, except that every tool error exits 2 (1 means
    "a claim was rejected") and an interrupted run exits 130 with nothing half-written."""
    try:
        cli.main(prog_name="scrubber", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("scrubber: interrupted", err=True)
        sys.exit(130)
