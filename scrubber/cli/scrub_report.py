"""What `scrubber scrub` prints: progress on a terminal, a linter line per finding as it comes, one
line per input that failed, then the counts (as text or JSON). Text is escaped (terminal.printable):
claim ids and file names come from senders."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import click

from ..output.sink import FragmentSink, ScrubbedClaim, Sink
from ..output.summary import Summary, Unattributed
from .exit_codes import EXIT_OK
from .terminal import printable


class Progress:
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
        click.echo(f"\r{printable(self.name)}: {share:4.0%} read, {claims} claims", err=True, nl=False)

    def close(self) -> None:
        if self.enabled and self._last:
            click.echo("\r" + " " * 60 + "\r", err=True, nl=False)


class LintLines(Sink):
    """Each finding as a linter line, `file:segment:element: RULE message [claim, ...]`, as it comes."""

    parts_hold_claims_only = True  # (Sink.chunk_fragments)

    def __init__(self, name: str, to_stderr: bool) -> None:
        self._name, self._err = printable(name), to_stderr
        self._raw_name = name
        self._reader_gone = False

    def claim(self, item: ScrubbedClaim) -> None:
        if not self._reader_gone:
            self._say(lint_lines(self._name, item))

    def unattributed(self, item: Unattributed) -> None:
        self._say(not_checked_line(self._name, item))

    def _say(self, text: str) -> None:
        if self._reader_gone or not text:
            return
        try:
            click.echo(text, err=self._err, nl=False)
        except BrokenPipeError:
            # Whoever read the lines stopped (`| head`): the outputs are still worth finishing; the
            # counts, printed at the end, meet the closed pipe again and end the run with exit 2.
            self._reader_gone = True

    def fragments(self) -> functools.partial[LintText]:
        return functools.partial(LintText, self._raw_name)

    def splice(self, fragment: str) -> None:
        if self._reader_gone or not fragment:
            return
        try:
            click.echo(fragment, err=self._err, nl=False)
        except BrokenPipeError:
            self._reader_gone = True


def lint_lines(name: str, item: ScrubbedClaim) -> str:
    """The claim's findings as linter lines, each ended by a line break (`name` already printable)."""
    result = item.result
    lines = []
    for f in result.findings:
        notes = [f"claim {result.claim.label}", *(["fixed"] if f.fixed else []),
                 *([] if f.severity == "error" else [f.severity])]
        where = f"{f.segment or ''}:{f.element or f.seg_id or ''}"
        # Claim ids and messages quote the sender's bytes: escaped, so one finding is one line.
        line = printable(f"{where}: {f.rule.id} {f.message} [{', '.join(notes)}]")
        lines.append(f"{name}:{line}\n")
    return "".join(lines)


def not_checked_line(name: str, item: Unattributed) -> str:
    """The linter line of a claim the rules could not check: it is in neither 837, and a clerk who
    reads only these lines must still find it (`name` already printable)."""
    return f"{name}:{printable(f'{item.segment}:CLM: not-checked {item.reason} [{item.label}, in neither file]')}\n"


class LintText(FragmentSink):
    """One transaction set's linter lines, rendered in a worker (parallel scrubbing by sets)."""

    def __init__(self, name: str) -> None:
        self._name = printable(name)
        self._lines: list[str] = []

    def claim(self, item: ScrubbedClaim) -> None:
        self._lines.append(lint_lines(self._name, item))

    def unattributed(self, item: Unattributed) -> None:
        self._lines.append(not_checked_line(self._name, item))

    def take(self) -> str:
        return "".join(self._lines)


@dataclass
class InputOutcome:
    name: str
    summary: Summary | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    exit_code: int = EXIT_OK

    def fail(self, text: str, exit_code: int, error: dict[str, Any]) -> None:
        """This input ends in one file-level error: said on one line, kept for the JSON summary."""
        self.error = {"input": self.name, "segment": None, "offset": None, **error}
        self.exit_code = exit_code
        click.echo(f"scrubber: {printable(self.name)}: {printable(text)}", err=True)


def _counts(summary: Summary) -> str:
    text = (f"{summary.claims} claims: {summary.accepted} accepted, {summary.corrected} corrected, "
            f"{summary.rejected} rejected")
    if summary.unattributed:
        text += f", {len(summary.unattributed)} not checked (in neither file: see the report)"
    return text


def text_summary(outcomes: list[InputOutcome], kinds: tuple[str, ...], to_stderr: bool) -> None:
    def say(text: str) -> None:
        click.echo(printable(text), err=to_stderr)

    totals = Summary()
    for outcome in outcomes:
        if outcome.summary is None:
            continue
        summary = outcome.summary
        totals.merge(summary)
        say(f"{outcome.name}: {_counts(summary)}")
        can_go_out = summary.accepted + summary.corrected
        if "corrected" in outcome.outputs:
            say(f"  corrected file: {outcome.outputs['corrected']} ({can_go_out} claims)")
        elif "corrected" not in kinds:
            say(f"  corrected file: not asked for ({can_go_out} claims can go out)")
        elif summary.claims:
            say("  corrected file: none written (no claim can go out)")
        for kind, path in outcome.outputs.items():
            if kind != "corrected":
                say(f"  {kind}: {path}")
        for rule_id, count in summary.by_rule.most_common(5):
            say(f"  {count:5d} x {rule_id} {summary.messages[rule_id]}")
        for error in summary.errors:
            say(f"  file: {error['message']} (segment {error['segment']})")
    if len(outcomes) > 1:
        failed = sum(1 for o in outcomes if o.error is not None)
        # The inputs that ended in an error said so on standard error; the total does not forget them.
        say(f"total: {_counts(totals)}" + (f"; {failed} of {len(outcomes)} inputs not scrubbed" if failed else ""))


def json_summary(outcomes: list[InputOutcome], exit_code: int) -> dict[str, Any]:
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
