"""`scrubber scrub`: scrub claim files (or standard input) into the chosen outputs."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click

from ..errors import InputError, RuleDataError
from ..output.atomic import AtomicFile, OutputRefused
from ..output.by_files import FileJob, FileOutcome, FilesAhead
from ..output.files import DEFAULT_OUTPUTS, KINDS, OutputSet, make_sink
from ..output.parallel import Workers, one_malloc_arena, usable_cores
from ..output.pipeline import RunContext, scrub_stream
from ..output.sink import Sink
from ..rules.engine import FixMode
from ..rules.layers import layer_files
from ..rules.ruleset import RuleSet, site_layers_from_env
from ..x12.guide import DEFAULT_VALIDATOR
from . import cli
from .common import RuleDataProblem, describe, jobs_option, load, rules_option, validator_option
from .exit_codes import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, worst
from .interrupts import terminate_as_interrupt, uninterrupted
from .scrub_paths import check_input, file_kinds, output_names, prepare_outputs
from .scrub_report import InputOutcome, LintLines, Progress, json_summary, text_summary
from .terminal import debugging, printable, short
from .textfiles import utf8_problem

STDIN = "-"


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
    _check_utf8(path)
    try:
        rules.use_icd10_code_file(path, f"ICD-10-CM FY{year} ({path.name})", dt.date(year - 1, 10, 1),
                                  dt.date(year, 9, 30))
        rules.icd10.knows("C8440")  # read it now: a bad file is a usage error, not a late surprise
    except RuleDataError as exc:
        raise RuleDataProblem(f"--icd10-codes: {exc}") from None


def _check_utf8(path: Path) -> None:
    problem = utf8_problem(path)
    if problem:
        raise RuleDataProblem(f"--icd10-codes: {printable(path)}: {problem}")


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
@validator_option
@jobs_option
def scrub(inputs: tuple[str, ...], out_dir: Path | None, outputs_value: str | None, report_path: Path | None,
          summary_format: str, quiet: bool, redact: bool, no_fix: bool, unsafe_fixes: bool,
          rule_dirs: tuple[Path, ...], icd10_codes: Path | None, today: dt.datetime | None,
          validator: str = DEFAULT_VALIDATOR, jobs: int | None = None) -> None:
    """Scrub each INPUT claim file (or - for standard input) and write its outputs.

    For p.837: DIR/p.corrected.837 (the claims that can go out, fixed; not written when none can),
    DIR/p.rejected.837 (the rejected claims as they came; not written when none is), and the
    reports p.report.json, p.report.html, p.report.csv, p.999 and p.277ca as --outputs asks.
    With -, the claim file comes from standard input and the corrected file goes to standard
    output (the counts then go to standard error). Claims are checked across the inputs of one
    run (quantity limits, cycles). Exit codes: 0 no claim rejected, 1 a claim rejected, 2 usage
    error, invalid rule data or an output that cannot be written, 3 an input could not be read as
    an 837, 4 an internal error on an input (report it; SCRUBBER_DEBUG=1 shows the traceback),
    130 interrupted, 143 terminated (SIGTERM).
    """
    with terminate_as_interrupt():
        _scrub_command(inputs, out_dir, outputs_value, report_path, summary_format, quiet, redact, no_fix,
                       unsafe_fixes, rule_dirs, icd10_codes, today, validator, jobs or usable_cores())


def _scrub_command(inputs: tuple[str, ...], out_dir: Path | None, outputs_value: str | None,
                   report_path: Path | None, summary_format: str, quiet: bool, redact: bool, no_fix: bool,
                   unsafe_fixes: bool, rule_dirs: tuple[Path, ...], icd10_codes: Path | None,
                   today: dt.datetime | None, validator: str = DEFAULT_VALIDATOR, jobs: int = 1) -> None:
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
    if report_path is not None and "json" not in kinds:
        raise click.UsageError("--report names the place of the json output, which --outputs leaves out")
    paths = [] if stdin_mode else [Path(p) for p in inputs]
    for path in paths:
        check_input(path)
    names = [output_names(p) for p in paths]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise click.UsageError(f"two inputs would write the same outputs: {printable(sorted(clashes)[0][1])}")
    rules = _load_rules(rule_dirs)
    if icd10_codes is not None:
        _icd10_file(rules, icd10_codes)
    prepare_outputs(kinds, paths, out_dir, report_path)
    # One pool of workers for the run: the inputs share it, in input order (checks across claims).
    workers = None
    if jobs > 1:
        one_malloc_arena()  # before the pool's threads start
        workers = Workers(jobs)
    job = _Job(rules=rules, kinds=kinds, mode=FixMode.NONE if no_fix else FixMode.UNSAFE if unsafe_fixes
               else FixMode.SAFE, meta=describe(rules), run=RunContext.new(today.date() if today else None, workers),
               redact=redact, lint=summary_format == "text" and not quiet, to_stderr=stdin_mode,
               validator=validator)
    ahead = None
    if workers is not None and len(paths) > 1 and report_path is None:
        # Several inputs: the small ones are scrubbed whole in the workers, ahead (output/by_files.py).
        ahead = FilesAhead(workers, rules, paths, job.run, lambda index, data: job.file_job(paths[index], data))
    try:
        if stdin_mode:
            outcomes = [job.scrub_stdin(out_dir, report_path)]
        elif ahead is None:
            outcomes = [job.scrub_file(path, out_dir, report_path) for path in paths]  # type: ignore[arg-type]
        else:
            outcomes = [job.scrub_file(path, out_dir, None, *ahead.take(index))  # type: ignore[arg-type]
                        for index, path in enumerate(paths)]
    finally:
        if ahead is not None:
            ahead.abandon()
        job.run.close()
        if workers is not None:
            workers.abandon()  # idle once the last input is done; on an interruption, stopped now
    exit_code = worst([o.exit_code for o in outcomes])
    if summary_format == "json":
        click.echo(json.dumps(json_summary(outcomes, exit_code), indent=2), err=stdin_mode)
    else:
        text_summary(outcomes, kinds, stdin_mode)
    sys.exit(exit_code)


def _load_rules(rule_dirs: tuple[Path, ...]) -> RuleSet:
    # A misnamed file in a site layer (payer.toml) would be passed over in silence by the loader.
    try:
        for layer in [*site_layers_from_env(), *rule_dirs]:
            if layer.is_dir():
                layer_files(layer)
    except RuleDataError as exc:
        raise RuleDataProblem(f"invalid rule data: {printable(exc)}") from None
    return load(rule_dirs)


class _Outputs:
    """What one input writes: its output files, the --report file, standard output's spool; all
    discarded together, or finished and then renamed together."""

    def __init__(self) -> None:
        self.files: OutputSet | None = None
        self.report: AtomicFile | None = None
        self.sinks: list[Sink] = []

    def discard(self) -> None:
        with uninterrupted():  # a second Ctrl-C must not leave a temporary file behind
            if self.files is not None:
                self.files.discard()
            if self.report is not None:
                self.report.discard()

    def commit(self) -> dict[str, str]:
        if self.files is not None:
            self.files.finish()
        if self.report is not None:
            self.report.finish()
        written: dict[str, str] = {}
        with uninterrupted():  # the renames of one input happen all, or (on an error) none
            if self.files is not None:
                written.update({kind: str(path) for kind, path in self.files.commit().items()})
            if self.report is not None:
                self.report.commit()
                written["json"] = str(self.report.path)
        return written


class _InputStream:
    """The input, whose read errors say "cannot read the input" rather than pass for an output's."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except OSError as exc:
            raise InputError(f"cannot read the input: {exc.strerror or exc}", code="unreadable") from None


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
    validator: str = DEFAULT_VALIDATOR

    def file_job(self, path: Path, data: bytes) -> FileJob:
        """What a worker needs to scrub `path` (whose bytes are `data`) whole (output/by_files.py)."""
        extra = [LintLines(str(path), self.to_stderr).fragments()] if self.lint else []
        return FileJob(str(path), data, file_kinds(self.kinds, None, stdin=False), self.meta, self.redact, self.mode,
                       self.run.today, self.validator, extra)  # type: ignore[arg-type]

    def scrub_file(self, path: Path, out_dir: Path, report_path: Path | None, data: bytes | None = None,
                   done: FileOutcome | None = None) -> InputOutcome:
        """Scrub the input `path`; or its bytes `data`, read already; or write what a worker made of
        them (`done`: output/by_files.py)."""
        def build(outputs: _Outputs) -> None:
            kinds = file_kinds(self.kinds, report_path, stdin=False)
            outputs.files = OutputSet(out_dir, path.stem, path.suffix, kinds, str(path), self.meta, self.redact,
                                      renderers=done is None)
            self._add_report(outputs, report_path, str(path))

        outcome = InputOutcome(str(path))
        if data is not None:
            return self._scrub(outcome, io.BytesIO(data), build, len(data), done)
        try:
            source = path.open("rb")
        except OSError as exc:
            outcome.fail(f"cannot scrub: cannot read the input: {exc.strerror}", EXIT_INPUT,
                         {"code": "unreadable", "message": f"cannot read the input: {exc.strerror}"})
            return outcome
        with source:
            size = os.fstat(source.fileno()).st_size if stat.S_ISREG(os.fstat(source.fileno()).st_mode) else 0
            return self._scrub(outcome, source, build, size)

    def scrub_stdin(self, out_dir: Path | None, report_path: Path | None) -> InputOutcome:
        # The corrected file goes to standard output, but only once it is whole: spooled till then.
        spool = tempfile.TemporaryFile() if "corrected" in self.kinds else None  # noqa: SIM115 (closed below)
        corrected: list[Sink] = []

        def build(outputs: _Outputs) -> None:
            if out_dir is not None:
                kinds = file_kinds(self.kinds, report_path, stdin=True)
                outputs.files = OutputSet(out_dir, "stdin", ".837", kinds, STDIN, self.meta, self.redact)
            self._add_report(outputs, report_path, STDIN)
            if spool is not None:
                corrected.append(make_sink("corrected", spool, STDIN, self.meta))
                outputs.sinks.append(corrected[0])

        try:
            outcome = self._scrub(InputOutcome(STDIN), sys.stdin.buffer, build, 0)
            if spool is not None and outcome.error is None and getattr(corrected[0], "claims_written", 0):
                spool.seek(0)
                try:
                    shutil.copyfileobj(spool, sys.stdout.buffer)
                    sys.stdout.buffer.flush()
                except OSError as exc:
                    outcome.fail(f"cannot write the corrected file to standard output: {exc.strerror}", EXIT_USAGE,
                                 {"code": "cannot_write", "message": f"standard output: {exc.strerror}"})
                else:
                    outcome.outputs["corrected"] = "(standard output)"
        finally:
            if spool is not None:
                spool.close()
        return outcome

    def _add_report(self, outputs: _Outputs, report_path: Path | None, name: str) -> None:
        if report_path is None or "json" not in self.kinds:
            return
        outputs.report = AtomicFile(report_path, "w")
        outputs.sinks.append(make_sink("json", outputs.report.file, name, self.meta))

    def _scrub(self, outcome: InputOutcome, source: BinaryIO, build: Callable[[_Outputs], None],
               size: int, done: FileOutcome | None = None) -> InputOutcome:
        """Scrub one input into its outputs (or write those a worker made: `done`). Whatever goes
        wrong stays with this input: its outputs are discarded, one line says why, and the run goes
        on with the next input."""
        name = outcome.name
        progress = Progress(name, size)
        outputs = _Outputs()
        try:
            build(outputs)
            sinks = [*(outputs.files.sinks.values() if outputs.files else ()), *outputs.sinks]
            lint = LintLines(name, self.to_stderr) if self.lint else None
            if done is not None:
                assert outputs.files is not None and not outputs.sinks
                for kind, (rendered, claims) in done.outputs.items():
                    outputs.files.write_rendered(kind, rendered, claims)
                if lint is not None:
                    lint.splice(done.extra[0])
                summary = done.summary
            else:
                summary = scrub_stream(_InputStream(source), self.rules, [*sinks, *([lint] if lint else [])],  # type: ignore[arg-type]
                                       self.mode, progress, self.run, validator=self.validator)
            progress.close()
            outcome.outputs.update(outputs.commit())
            outcome.summary = summary
            # A claim the scrubber failed on is a bug to report (4), above a rejected claim (1).
            outcome.exit_code = (EXIT_INTERNAL if summary.unattributed else
                                 EXIT_REJECTED if summary.rejected else EXIT_OK)
        except InputError as exc:
            progress.close()
            outputs.discard()
            outcome.fail(f"cannot scrub: {exc}", EXIT_INPUT, exc.as_dict())
        except (OSError, OutputRefused) as exc:
            progress.close()
            outputs.discard()
            reason = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.filename else \
                (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
            outcome.fail(f"cannot write its outputs: {reason}", EXIT_USAGE,
                         {"code": "cannot_write", "message": f"cannot write its outputs: {reason}"})
        except Exception as exc:  # a bug: this input's outputs go, the run goes on
            progress.close()
            outputs.discard()
            if debugging():
                traceback.print_exc()
            what = f"{type(exc).__name__}: {short(exc)}" if not isinstance(exc, MemoryError) else \
                "MemoryError: out of memory (the input needs more than this process may use)"
            outcome.fail(f"internal error: {what}", EXIT_INTERNAL, {"code": "internal_error", "message": what})
        except BaseException:  # Ctrl-C, SIGTERM: nothing half-written, then stop
            outputs.discard()
            raise
        return outcome


