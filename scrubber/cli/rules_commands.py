"""`scrubber rules ...`: look up the catalog, check and show rule data."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import RuleDataError
from ..output.ruledocs import catalog_rows, config_text, rule_page
from ..rules.catalog import CATEGORIES
from ..rules.layers import layer_files
from ..rules.ruleset import RuleSet
from . import cli
from .common import RuleDataProblem, load, rules_option
from .terminal import printable
from .textfiles import utf8_problem


@cli.group()
def rules() -> None:
    """Look up the rules, and check or show rule data."""


@rules.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only the rules of this category.")
@rules_option
def rules_list(category: str | None, rule_dirs: tuple[Path, ...]) -> None:
    """List the rules: id, category, severity (as the site rules set it), SNIP level, fix, summary."""
    rows = catalog_rows(load(rule_dirs), category)
    header = ("id", "category", "severity", "SNIP", "fix", "summary")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)) + "  " + row[5])


@rules.command("show")
@click.argument("rule_id")
@rules_option
def rules_show(rule_id: str, rule_dirs: tuple[Path, ...]) -> None:
    """Explain one rule: what it checks, why, where, an example that fires, the fix, the source."""
    loaded = load(rule_dirs)
    rule = loaded.catalog.get(rule_id.upper())
    if rule is None:
        raise click.BadParameter(f"no rule {rule_id!r}; `scrubber rules list` lists them", param_hint="RULE_ID")
    click.echo(rule_page(rule, loaded))


@rules.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def rules_check(directory: Path) -> None:
    """Check a directory of site rules (on top of the built-in ones), say what is wrong, if anything,
    and list the files it read.

    Exit code 0 when the rules load, 2 when they do not (a misnamed file, such as payer.toml for
    payers.toml, is refused rather than passed over).
    """
    try:
        read = layer_files(directory)
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {printable(exc)}") from None
    loaded = load((directory,))
    tables = _table_files(loaded, directory)
    for path in tables:
        problem = utf8_problem(path)
        if problem:
            raise RuleDataProblem(f"invalid rule data: {printable(path)}: {problem}")
    try:
        for table in (loaded.hcpcs, loaded.ndc_crosswalk, loaded.icd10):
            table.version  # noqa: B018  (reading the tables checks their files)
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {printable(exc)}") from None
    click.echo(printable(f"{directory}: ok: {len(loaded.catalog)} rules, {len(loaded.payers.policies)} payer "
                         f"policies, {len(loaded.drugs.drugs)} drugs, {len(loaded.modifiers)} modifiers"))
    if not read:
        click.echo("  no rule file in it: it changes nothing")
    for path in [*read, *tables]:
        click.echo(printable(f"  read {path}"))


def _table_files(loaded: RuleSet, directory: Path) -> list[Path]:
    """The code table files this layer names (relative to it), in the order of code_tables.toml."""
    files = []
    for name, entry in loaded.tables.entries.items():
        if "file" in entry and loaded.tables.source_of(name, "file").parent == directory:
            files.append(directory / entry["file"])
    return files


@rules.command("show-config")
@rules_option
def rules_show_config(rule_dirs: tuple[Path, ...]) -> None:
    """Print the merged rule configuration, each value with the file that set it."""
    click.echo(config_text(load(rule_dirs)), nl=False)
