"""The command line: a thin layer over the library.

Exit codes (documented in the README, kept stable for pipelines):
  0  every input scrubbed, no claim rejected
  1  at least one claim rejected
  2  usage error, or invalid rule data
  3  at least one input could not be read as an 837 (nothing written for it)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
import time
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import click

from .errors import InputError, RuleDataError
from .output.atomic import AtomicFile
from .output.corrected import ClaimFileWriter
from .output.pipeline import RunContext, scrub_stream
from .output.report import JsonReport
from .output.summary import Summary
from .output.ruledocs import catalog_rows, config_text, rule_page
from .rules.catalog import CATEGORIES
from .rules.engine import FixMode
from .rules.ruleset import RULES_ENV, RuleSet, load_rules

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3


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
    return {
        "name": "scrubber",
        "version": package_version("scrubber"),
        "rules": {"directory": "built-in", "site_layers": [str(p) for p in rules.layers[1:]],
                  "digest": rules_digest(rules), "count": len(rules.catalog)},
        "code_tables": rules.table_versions(),
        "pyx12": package_version("pyx12"),
    }


def _version_text() -> str:
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


class RuleDataProblem(click.ClickException):
    exit_code = 2


def rules_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--rules DIR (repeatable), on top of the built-in rules and $SCRUBBER_RULES."""
    return click.option(
        "--rules", "rule_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
        help=f"A directory of site rules on top of the built-in ones (repeatable; later wins). "
             f"${RULES_ENV} adds directories the same way, before these.",
    )(function)


def _load(rule_dirs: tuple[Path, ...]) -> RuleSet:
    try:
        return load_rules(rule_dirs, use_env=True)
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {exc}") from None


def _icd10_file(rules: RuleSet, path: Path) -> None:
    """Read a CMS ICD-10-CM code file; its fiscal year comes from its name, as CMS names them."""
    years = re.findall(r"(?<!\d)(20\d\d)(?!\d)", path.name)
    if not years:
        raise click.BadParameter(
            f"{path.name}: name the file's fiscal year in its name, as CMS does (icd10cm-codes-2027.txt)",
            param_hint="--icd10-codes")
    year = int(years[-1])
    try:
        rules.use_icd10_code_file(path, f"ICD-10-CM FY{year} ({path.name})", dt.date(year - 1, 10, 1),
                                  dt.date(year, 9, 30))
        rules.icd10.knows("C8440")  # read it now: a bad file is a usage error, not a late surprise
    except RuleDataError as exc:
        raise RuleDataProblem(f"--icd10-codes: {exc}") from None


def output_names(path: Path) -> tuple[str, str]:
    """p.837 gives p.corrected.837 and p.report.json."""
    return f"{path.stem}.corrected{path.suffix}", f"{path.stem}.report.json"


class _Progress:
    """Shows how far a long scrub has got, on a terminal only; pipelines see nothing."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self.enabled = sys.stderr.isatty() and size > 1_000_000
        self._last = 0.0

    def __call__(self, done: int, claims: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.2:
            return
        self._last = now
        share = min(done / self.size, 1.0) if self.size else 1.0
        click.echo(f"\r{self.name}: {share:4.0%} read, {claims} claims", err=True, nl=False)

    def close(self) -> None:
        if self.enabled and self._last:
            click.echo("\r" + " " * 60 + "\r", err=True, nl=False)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the corrected 837 and the JSON report (created if needed).")
@click.option("--no-fix", is_flag=True, help="Report fixes without applying them.")
@click.option("--unsafe-fixes", is_flag=True, help="Apply unsafe fixes too (they are reported either way).")
@rules_option
@click.option("--icd10-codes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A newer CMS ICD-10-CM code file (e.g. icd10cm-codes-2027.txt) instead of the one carried.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The date to hold service dates against (default: today), e.g. to scrub a file again later.")
def scrub(inputs: tuple[Path, ...], out_dir: Path, no_fix: bool, unsafe_fixes: bool, rule_dirs: tuple[Path, ...],
          icd10_codes: Path | None, today: dt.datetime | None) -> None:
    """Scrub each INPUT claim file; write DIR/<stem>.corrected<suffix> and DIR/<stem>.report.json.

    The corrected file holds the claims that can go out (accepted or corrected); it is not
    written when no claim can. Claims are also checked across the inputs of one run (quantity
    limits, cycles). Exit codes: 0 no claim rejected, 1 a claim rejected, 2 usage error or
    invalid rule data, 3 an input could not be read as an 837.
    """
    if no_fix and unsafe_fixes:
        raise click.UsageError("--no-fix and --unsafe-fixes contradict each other")
    names = [output_names(p) for p in inputs]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise click.UsageError(f"two inputs would write the same outputs: {sorted(clashes)[0][1]}")
    rules = _load(rule_dirs)
    if icd10_codes is not None:
        _icd10_file(rules, icd10_codes)
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = FixMode.NONE if no_fix else FixMode.UNSAFE if unsafe_fixes else FixMode.SAFE
    meta = describe(rules)
    run = RunContext.new(today.date() if today else None)
    exit_code = EXIT_OK
    totals = Summary()
    for path, (corrected_name, report_name) in zip(inputs, names, strict=True):
        outcome = _scrub_one(path, out_dir / corrected_name, out_dir / report_name, rules, mode, meta, run)
        if outcome is None:
            exit_code = EXIT_INPUT
            continue
        totals.merge(outcome)
        if outcome.rejected and exit_code == EXIT_OK:
            exit_code = EXIT_REJECTED
    if len(inputs) > 1:
        click.echo(f"total: {_counts(totals)}")
    sys.exit(exit_code)


def _scrub_one(path: Path, corrected_path: Path, report_path: Path, rules: RuleSet, mode: FixMode,
               meta: dict[str, object], run_context: RunContext) -> Summary | None:
    corrected = AtomicFile(corrected_path, "wb")
    report_file = AtomicFile(report_path, "w")
    progress = _Progress(path.name, path.stat().st_size)
    try:
        with path.open("rb") as source:
            writer = ClaimFileWriter(corrected.file)
            sinks = [writer, JsonReport(report_file.file, str(path), meta)]
            summary = scrub_stream(source, rules, sinks, mode, progress, run_context)
    except InputError as exc:
        corrected.discard()
        report_file.discard()
        progress.close()
        click.echo(f"scrubber: {path}: cannot scrub: {exc}", err=True)
        return None
    except BaseException:
        corrected.discard()
        report_file.discard()
        raise
    progress.close()
    if writer.claims_written:
        corrected.commit()
    else:
        corrected.discard()
    report_file.commit()
    click.echo(f"{path}: {_counts(summary)}")
    if writer.claims_written:
        click.echo(f"  corrected file: {corrected_path} ({writer.claims_written} claims)")
    else:
        click.echo("  corrected file: none written (no claim can go out)")
    click.echo(f"  report: {report_path}")
    for rule_id, count in summary.by_rule.most_common(5):
        click.echo(f"  {count:5d} x {rule_id} {summary.messages[rule_id]}")
    for error in summary.errors:
        click.echo(f"  file: {error['message']} (segment {error['segment']})")
    return summary


@cli.group()
def rules() -> None:
    """Look up the rules, and check or show rule data."""


@rules.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only the rules of this category.")
@rules_option
def rules_list(category: str | None, rule_dirs: tuple[Path, ...]) -> None:
    """List the rules: id, category, severity (as the site rules set it), SNIP level, fix, summary."""
    rows = catalog_rows(_load(rule_dirs), category)
    header = ("id", "category", "severity", "SNIP", "fix", "summary")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)) + "  " + row[5])


@rules.command("show")
@click.argument("rule_id")
@rules_option
def rules_show(rule_id: str, rule_dirs: tuple[Path, ...]) -> None:
    """Explain one rule: what it checks, why, where, an example that fires, the fix, the source."""
    loaded = _load(rule_dirs)
    rule = loaded.catalog.get(rule_id.upper())
    if rule is None:
        raise click.BadParameter(f"no rule {rule_id!r}; `scrubber rules list` lists them", param_hint="RULE_ID")
    click.echo(rule_page(rule, loaded))


@rules.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def rules_check(directory: Path) -> None:
    """Check a directory of site rules (on top of the built-in ones) and say what is wrong, if anything.

    Exit code 0 when the rules load, 2 when they do not.
    """
    loaded = _load((directory,))
    try:
        for table in (loaded.hcpcs, loaded.ndc_crosswalk, loaded.icd10):
            table.version  # noqa: B018  (reading the tables checks their files)
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {exc}") from None
    click.echo(f"{directory}: ok: {len(loaded.catalog)} rules, {len(loaded.payers.policies)} payer policies, "
               f"{len(loaded.drugs.drugs)} drugs, {len(loaded.modifiers)} modifiers")


@rules.command("show-config")
@rules_option
def rules_show_config(rule_dirs: tuple[Path, ...]) -> None:
    """Print the merged rule configuration, each value with the file that set it."""
    click.echo(config_text(_load(rule_dirs)), nl=False)


def _counts(summary: Summary) -> str:
    return (f"{summary.claims} claims: {summary.accepted} accepted, {summary.corrected} corrected, "
            f"{summary.rejected} rejected")


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
    except click.exceptions.Abort:
        click.echo("scrubber: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("scrubber: interrupted", err=True)
        sys.exit(130)
