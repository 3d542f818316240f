"""The command line: a thin layer over the library.

Exit codes (documented in the README, kept stable for pipelines):
  0  every input scrubbed, no claim rejected
  1  at least one claim rejected
  2  usage error, or invalid rule data
  3  at least one input could not be read as an 837 (nothing written for it)
"""

from __future__ import annotations

import hashlib
import sys
import time
from importlib.metadata import version as package_version
from pathlib import Path

import click

from .errors import InputError, RuleDataError
from .output.atomic import AtomicFile
from .output.pipeline import Outputs, scrub_stream
from .output.report import JsonReport, Summary
from .rules.engine import FixMode
from .rules.ruleset import RuleSet, load_rules

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3


def rules_digest(rules: RuleSet) -> str:
    """A short fingerprint of the rule data, so a report names exactly what it was checked with."""
    digest = hashlib.sha256()
    for path in sorted(rules.directory.rglob("*")):
        if path.is_file() and path.suffix in (".toml", ".csv"):
            digest.update(path.relative_to(rules.directory).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def describe(rules: RuleSet) -> dict[str, object]:
    return {
        "name": "scrubber",
        "version": package_version("scrubber"),
        "rules": {"directory": "built-in", "digest": rules_digest(rules), "count": len(rules.catalog)},
        "code_tables": rules.table_versions(),
        "pyx12": package_version("pyx12"),
    }


def _version_text() -> str:
    try:
        rules = load_rules()
    except RuleDataError as exc:
        return f"scrubber {package_version('scrubber')}\nrules: invalid ({exc})"
    info = describe(rules)
    lines = [
        f"scrubber {info['version']}",
        f"rules: built-in, {len(rules.catalog)} rules, data digest {info['rules']['digest']}",  # type: ignore[index]
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
def scrub(inputs: tuple[Path, ...], out_dir: Path, no_fix: bool, unsafe_fixes: bool) -> None:
    """Scrub each INPUT claim file; write DIR/<stem>.corrected<suffix> and DIR/<stem>.report.json.

    The corrected file holds the claims that can go out (accepted or corrected); it is not
    written when no claim can. Exit codes: 0 no claim rejected, 1 a claim rejected, 2 usage
    error, 3 an input could not be read as an 837.
    """
    if no_fix and unsafe_fixes:
        raise click.UsageError("--no-fix and --unsafe-fixes contradict each other")
    names = [output_names(p) for p in inputs]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise click.UsageError(f"two inputs would write the same outputs: {sorted(clashes)[0][1]}")
    try:
        rules = load_rules()
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = FixMode.NONE if no_fix else FixMode.UNSAFE if unsafe_fixes else FixMode.SAFE
    meta = describe(rules)
    exit_code = EXIT_OK
    totals = Summary()
    for path, (corrected_name, report_name) in zip(inputs, names, strict=True):
        outcome = _scrub_one(path, out_dir / corrected_name, out_dir / report_name, rules, mode, meta)
        if outcome is None:
            exit_code = EXIT_INPUT
            continue
        for key in ("claims", "accepted", "corrected", "rejected"):
            setattr(totals, key, getattr(totals, key) + getattr(outcome, key))
        totals.by_rule.update(outcome.by_rule)
        totals.messages.update(outcome.messages)
        if outcome.rejected and exit_code == EXIT_OK:
            exit_code = EXIT_REJECTED
    if len(inputs) > 1:
        click.echo(f"total: {_counts(totals)}")
    sys.exit(exit_code)


def _scrub_one(path: Path, corrected_path: Path, report_path: Path, rules: RuleSet, mode: FixMode,
               meta: dict[str, object]) -> Summary | None:
    corrected = AtomicFile(corrected_path, "wb")
    report_file = AtomicFile(report_path, "w")
    progress = _Progress(path.name, path.stat().st_size)
    try:
        with path.open("rb") as source:
            report = JsonReport(report_file.file, str(path), meta)
            run = scrub_stream(source, rules, Outputs(corrected.file, report), mode, progress)
            report.finish(run.summary)
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
    if run.claims_written:
        corrected.commit()
    else:
        corrected.discard()
    report_file.commit()
    summary = run.summary
    click.echo(f"{path}: {_counts(summary)}")
    if run.claims_written:
        click.echo(f"  corrected file: {corrected_path} ({run.claims_written} claims)")
    else:
        click.echo("  corrected file: none written (no claim can go out)")
    click.echo(f"  report: {report_path}")
    for rule_id, count in summary.by_rule.most_common(5):
        click.echo(f"  {count:5d} x {rule_id} {summary.messages[rule_id]}")
    for error in summary.errors:
        click.echo(f"  file: {error['message']} (segment {error['segment']})")
    return summary


def _counts(summary: Summary) -> str:
    return (f"{summary.claims} claims: {summary.accepted} accepted, {summary.corrected} corrected, "
            f"{summary.rejected} rejected")


class RuleDataProblem(click.ClickException):
    exit_code = EXIT_USAGE


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
