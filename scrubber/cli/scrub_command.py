"""`scrubber scrub`: scrub claim files (or standard input) into the chosen outputs."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import click

from ..errors import InputError, RuleDataError
from ..output.atomic import AtomicFile
from ..output.files import DEFAULT_OUTPUTS, KINDS, OutputSet, make_sink
from ..output.pipeline import RunContext, scrub_stream
from ..output.sink import ScrubbedClaim, Sink
from ..output.summary import Summary
from ..rules.engine import FixMode
from ..rules.ruleset import RuleSet
from . import cli
from .common import EXIT_INPUT, EXIT_OK, EXIT_REJECTED, RuleDataProblem, describe, load, rules_option

STDIN = "-"


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


class LintLines(Sink):
    """Each finding as a linter line, `file:segment:element: RULE message [claim, ...]`, as it comes."""

    def __init__(self, name: str, to_stderr: bool) -> None:
        self._name, self._err = name, to_stderr

    def claim(self, item: ScrubbedClaim) -> None:
        result = item.result
        for f in result.findings:
            notes = [f"claim {result.claim.id}"] + (["fixed"] if f.fixed else []) + \
                ([] if f.severity == "error" else [f.severity])
            where = f"{f.segment or ''}:{f.element or f.seg_id or ''}"
            click.echo(f"{self._name}:{where}: {f.rule.id} {f.message} [{', '.join(notes)}]", err=self._err)


@dataclass
class InputOutcome:
    name: str
    summary: Summary | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def parse_outputs(value: str | None) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_OUTPUTS
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise click.BadParameter(f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(KINDS)}",
                                 param_hint="--outputs")
    return kinds


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
    return KINDS["corrected"].file_name(path.stem, path.suffix), KINDS["json"].file_name(path.stem, path.suffix)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the outputs (created if needed). Required unless reading standard input.")
@click.option("--outputs", "outputs_value", metavar="LIST",
              help=f"Which outputs to write, comma-separated, of: {', '.join(KINDS)} "
                   f"(default: {','.join(DEFAULT_OUTPUTS)}).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON report here (for one input; with -, the place for it).")
@click.option("--format", "summary_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: a linter line per finding (file:segment:element: RULE message), then the counts; "
                   "json: one JSON document with the counts and the files written.")
@click.option("-q", "--quiet", is_flag=True, help="text format: only the counts, no line per finding.")
@click.option("--redact", is_flag=True, help="Leave patient names out of the HTML report.")
@click.option("--no-fix", is_flag=True, help="Report fixes without applying them.")
@click.option("--unsafe-fixes", is_flag=True, help="Apply unsafe fixes too (they are reported either way).")
@rules_option
@click.option("--icd10-codes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A newer CMS ICD-10-CM code file (e.g. icd10cm-codes-2027.txt) instead of the one carried.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The date to hold service dates against (default: today), e.g. to scrub a file again later.")
def scrub(inputs: tuple[str, ...], out_dir: Path | None, outputs_value: str | None, report_path: Path | None,
          summary_format: str, quiet: bool, redact: bool, no_fix: bool, unsafe_fixes: bool,
          rule_dirs: tuple[Path, ...], icd10_codes: Path | None, today: dt.datetime | None) -> None:
    """Scrub each INPUT claim file (or - for standard input) and write its outputs.

    For p.837: DIR/p.corrected.837 (the claims that can go out, fixed; not written when none can),
    DIR/p.rejected.837 (the rejected claims as they came; not written when none is), and the
    reports p.report.json, p.report.html, p.report.csv, p.999 and p.277ca as --outputs asks.
    With -, the claim file comes from standard input and the corrected file goes to standard
    output (the counts then go to standard error). Claims are checked across the inputs of one
    run (quantity limits, cycles). Exit codes: 0 no claim rejected, 1 a claim rejected, 2 usage
    error or invalid rule data, 3 an input could not be read as an 837.
    """
    kinds = parse_outputs(outputs_value)
    stdin_mode = inputs == (STDIN,)
    if no_fix and unsafe_fixes:
        raise click.UsageError("--no-fix and --unsafe-fixes contradict each other")
    if STDIN in inputs and not stdin_mode:
        raise click.UsageError("- (standard input) must be the only input")
    if not stdin_mode and out_dir is None:
        raise click.UsageError("--out DIR is required (or read standard input with -)")
    if report_path is not None and len(inputs) > 1:
        raise click.UsageError("--report names the JSON report of one input; with several, use --out")
    paths = [] if stdin_mode else [Path(p) for p in inputs]
    for path in paths:
        if not path.is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="INPUTS")
    names = [output_names(p) for p in paths]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise click.UsageError(f"two inputs would write the same outputs: {sorted(clashes)[0][1]}")
    rules = load(rule_dirs)
    if icd10_codes is not None:
        _icd10_file(rules, icd10_codes)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    job = _Job(rules=rules, kinds=kinds, mode=FixMode.NONE if no_fix else FixMode.UNSAFE if unsafe_fixes
               else FixMode.SAFE, meta=describe(rules), run=RunContext.new(today.date() if today else None),
               redact=redact, lint=summary_format == "text" and not quiet, to_stderr=stdin_mode)
    try:
        if stdin_mode:
            outcomes = [job.scrub_stdin(out_dir, report_path)]
        else:
            outcomes = [job.scrub_file(path, out_dir, report_path) for path in paths]  # type: ignore[arg-type]
    finally:
        job.run.close()
    exit_code = _exit_code(outcomes)
    if summary_format == "json":
        click.echo(json.dumps(_json_summary(outcomes, exit_code), indent=2), err=stdin_mode)
    else:
        _text_summary(outcomes, stdin_mode)
    sys.exit(exit_code)


@dataclass
class _Job:
    rules: RuleSet
    kinds: tuple[str, ...]
    mode: FixMode
    meta: dict[str, object]
    run: RunContext
    redact: bool
    lint: bool
    to_stderr: bool

    def scrub_file(self, path: Path, out_dir: Path, report_path: Path | None) -> InputOutcome:
        kinds = tuple(k for k in self.kinds if not (k == "json" and report_path is not None))
        files = OutputSet(out_dir, path.stem, path.suffix, kinds, str(path), self.meta, self.redact)
        report = self._report_file(report_path, str(path))
        with path.open("rb") as source:
            return self._scrub(str(path), source, files, report, path.stat().st_size)

    def scrub_stdin(self, out_dir: Path | None, report_path: Path | None) -> InputOutcome:
        # The corrected file goes to standard output, but only once it is whole: spooled till then.
        spool = tempfile.TemporaryFile() if "corrected" in self.kinds else None  # noqa: SIM115 (closed below)
        others = tuple(k for k in self.kinds if k != "corrected" and not (k == "json" and report_path is not None))
        files = OutputSet(out_dir, "stdin", ".837", others, STDIN, self.meta, self.redact) if out_dir else None
        report = self._report_file(report_path, STDIN)
        extra = [make_sink("corrected", spool, STDIN, self.meta)] if spool is not None else []
        outcome = self._scrub(STDIN, sys.stdin.buffer, files, report, 0, extra)
        if spool is not None:
            if outcome.error is None and getattr(extra[0], "claims_written", 0):
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                outcome.outputs["corrected"] = "(standard output)"
            spool.close()
        return outcome

    def _report_file(self, report_path: Path | None, name: str) -> tuple[AtomicFile, Sink] | None:
        if report_path is None or "json" not in self.kinds:
            return None
        report_path.parent.mkdir(parents=True, exist_ok=True)
        atomic = AtomicFile(report_path, "w")
        return atomic, make_sink("json", atomic.file, name, self.meta)

    def _scrub(self, name: str, source: BinaryIO, files: OutputSet | None, report: tuple[AtomicFile, Sink] | None,
               size: int, extra: list[Sink] | None = None) -> InputOutcome:
        sinks = list(files.sinks.values()) if files is not None else []
        sinks += [report[1]] if report is not None else []
        sinks += extra or []
        if self.lint:
            sinks.append(LintLines(name, self.to_stderr))
        progress = _Progress(name, size)
        outcome = InputOutcome(name)
        try:
            outcome.summary = scrub_stream(source, self.rules, sinks, self.mode, progress, self.run)
        except InputError as exc:
            progress.close()
            for discard in ([files.discard] if files else []) + ([report[0].discard] if report else []):
                discard()
            outcome.error = {"input": name, **exc.as_dict()}
            click.echo(f"scrubber: {name}: cannot scrub: {exc}", err=True)
            return outcome
        except BaseException:
            for discard in ([files.discard] if files else []) + ([report[0].discard] if report else []):
                discard()
            raise
        progress.close()
        if files is not None:
            outcome.outputs.update({kind: str(path) for kind, path in files.commit().items()})
        if report is not None:
            report[0].commit()
            outcome.outputs["json"] = str(report[0].path)
        return outcome


def _exit_code(outcomes: list[InputOutcome]) -> int:
    if any(o.error for o in outcomes):
        return EXIT_INPUT
    if any(o.summary and o.summary.undelivered for o in outcomes):
        return EXIT_REJECTED
    return EXIT_OK


def _counts(summary: Summary) -> str:
    text = (f"{summary.claims} claims: {summary.accepted} accepted, {summary.corrected} corrected, "
            f"{summary.rejected} rejected")
    if summary.unattributed:
        text += f", {len(summary.unattributed)} not checked (in neither file: see the report)"
    return text


def _text_summary(outcomes: list[InputOutcome], to_stderr: bool) -> None:
    totals = Summary()
    for outcome in outcomes:
        if outcome.summary is None:
            continue
        summary = outcome.summary
        totals.merge(summary)
        click.echo(f"{outcome.name}: {_counts(summary)}", err=to_stderr)
        if "corrected" in outcome.outputs:
            click.echo(f"  corrected file: {outcome.outputs['corrected']} "
                       f"({summary.accepted + summary.corrected} claims)", err=to_stderr)
        elif summary.claims:
            click.echo("  corrected file: none written (no claim can go out)", err=to_stderr)
        for kind, path in outcome.outputs.items():
            if kind != "corrected":
                click.echo(f"  {kind}: {path}", err=to_stderr)
        for rule_id, count in summary.by_rule.most_common(5):
            click.echo(f"  {count:5d} x {rule_id} {summary.messages[rule_id]}", err=to_stderr)
        for error in summary.errors:
            click.echo(f"  file: {error['message']} (segment {error['segment']})", err=to_stderr)
    if len(outcomes) > 1:
        click.echo(f"total: {_counts(totals)}", err=to_stderr)


def _json_summary(outcomes: list[InputOutcome], exit_code: int) -> dict[str, Any]:
    totals = Summary()
    inputs = []
    for outcome in outcomes:
        if outcome.summary is not None:
            totals.merge(outcome.summary)
        inputs.append({"input": outcome.name,
                       "summary": outcome.summary.as_dict() if outcome.summary else None,
                       "file_errors": outcome.summary.errors if outcome.summary else [],
                       "outputs": outcome.outputs, "error": outcome.error})
    return {"inputs": inputs, "total": totals.as_dict(), "exit_code": exit_code}
