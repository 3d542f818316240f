"""What the commands share: exit codes, the --rules option, loading rules, naming the run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import click

from ..errors import RuleDataError
from ..output.parallel import usable_cores
from ..rules.ruleset import RULES_ENV, RuleSet, load_rules
from ..x12.guide import DEFAULT_VALIDATOR, VALIDATORS

# Stable, documented in the README; 1 means "a claim was rejected", as a linter's 1 means findings.
EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3


class RuleDataProblem(click.ClickException):
    exit_code = EXIT_USAGE


def rules_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--rules DIR (repeatable), on top of the built-in rules and $SCRUBBER_RULES."""
    return click.option(
        "--rules", "rule_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
        help=f"A directory of site rules on top of the built-in ones (repeatable; later wins). "
             f"${RULES_ENV} adds directories the same way, before these.",
    )(function)


def validator_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--validator compiled|pyx12: which implementation-guide validator the scrub runs."""
    return click.option(
        "--validator", type=click.Choice(list(VALIDATORS)), default=DEFAULT_VALIDATOR, show_default=True,
        help="The implementation-guide validator: the one compiled from pyx12's maps, or pyx12's own walker "
             "(slower; a second opinion).",
    )(function)


def jobs_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--jobs N: worker processes that check claims (default: the cores this process may use)."""
    return click.option(
        "-j", "--jobs", type=click.IntRange(min=1), default=None, metavar="N",
        help=f"Check claims in N worker processes (default: the usable cores, {usable_cores()} here); the outputs "
             "are the same for any N. Several small files (2 MiB or less) are scrubbed whole in the workers, a few "
             "ahead; a single input under 1 MiB is checked in process.",
    )(function)


def load(rule_dirs: tuple[Path, ...]) -> RuleSet:
    try:
        return load_rules(rule_dirs, use_env=True)
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {exc}") from None


def rules_digest(rules: RuleSet) -> str:
    """A short fingerprint of the rule data (every layer), so a report names exactly what it was
    checked with."""
    digest = hashlib.sha256()
    for layer in rules.layers:
        for path in sorted(layer.rglob("*")):
            if path.is_file() and path.suffix in (".toml", ".csv"):
                digest.update(path.relative_to(layer).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def describe(rules: RuleSet) -> dict[str, object]:
    """The `scrubber` block of the reports: program, rule data and code table versions."""
    return {
        "name": "scrubber",
        "version": package_version("scrubber"),
        "rules": {"directory": "built-in", "site_layers": [str(p) for p in rules.layers[1:]],
                  "digest": rules_digest(rules), "count": len(rules.catalog)},
        "code_tables": rules.table_versions(),
        "pyx12": package_version("pyx12"),
    }
