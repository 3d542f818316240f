"""Scrub one claim file: read, validate, check, fix, and hand each claim to the outputs.

One pass over the input, one transaction set in memory at a time. Raises InputError when the
file cannot be read as an 837; the caller then discards whatever outputs it had begun.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import InputError
from ..model.build import TransactionLayout, build_transaction
from ..model.claim import Claim
from ..rules.engine import ClaimResult, FixMode, scrub_claim
from ..rules.findings import ClaimContext, Finding
from ..rules.history import RunHistory
from ..rules.history_checks import doses_of
from ..rules.ruleset import RuleSet
from ..x12.envelope import EnvelopeReader, Group, GroupEnd, Interchange, InterchangeEnd, TransactionSet
from ..x12.ig import GuideValidator, StructuralError
from ..x12.tokenizer import Segment, SegmentReader
from .sink import Sink, TransactionBatch
from .summary import Summary

Progress = Callable[[int, int], None]  # (bytes read, claims scrubbed)


@dataclass
class RunContext:
    """What lasts across the files of one run: the claims seen so far, and the date of the run."""

    history: RunHistory
    today: dt.date

    @classmethod
    def new(cls, today: dt.date | None = None) -> RunContext:
        return cls(RunHistory(), today or dt.date.today())

    def close(self) -> None:
        self.history.close()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """A transaction set keeps a few hundred thousand objects alive; with the default gen-0
    threshold (700) the collector walks them thousands of times for nothing (the scrubber makes
    no reference cycles), a tenth of the run. Collect less often while scrubbing."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 10_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def scrub_stream(
    source: BinaryIO,
    rules: RuleSet,
    sinks: list[Sink],
    mode: FixMode = FixMode.SAFE,
    progress: Progress | None = None,
    run: RunContext | None = None,
) -> Summary:
    """Scrub one 837 from `source`, handing every claim to the `sinks` (the outputs) in file order.

    Raises InputError when the input is not an 837 the scrubber reads; the sinks have then been
    fed part of it, and the caller discards what they wrote. Pass the same `run` to several calls
    to check claims across files (quantity limits, cycles).
    """
    with _fewer_collections():
        return _scrub(source, rules, sinks, mode, progress, run or RunContext.new())


def _scrub(source: BinaryIO, rules: RuleSet, sinks: list[Sink], mode: FixMode, progress: Progress | None,
           run: RunContext) -> Summary:
    reader = SegmentReader(source)
    d = reader.delimiters
    validator = GuideValidator(d)
    envelope = EnvelopeReader(reader, d, validator.feed)
    for sink in sinks:
        sink.begin(reader.prefix, d)
    summary = Summary()
    # Problems on an ISA or GS stand in the way of every claim in that interchange or group.
    interchange_errors: list[StructuralError] = []
    group_errors: list[StructuralError] = []
    for event in envelope:
        if isinstance(event, TransactionSet):
            layout = build_transaction(event, d)
            errors = validator.take_errors() + raw_problems(event.segments)
            results = list(_scrub_transaction(layout, interchange_errors + group_errors + errors, rules, mode, run))
            for result in results:
                summary.add(result)
            if not layout.claims:
                summary.errors.append(_no_claims(event, errors))
            batch = TransactionBatch(layout, results, errors, interchange_errors + group_errors)
            for sink in sinks:
                sink.transaction(batch)
            # Let this transaction set go before the next one is read: memory holds one at a time.
            del event, layout, errors, results, batch
            if progress is not None:
                progress(reader.bytes_read, summary.claims)
            continue
        if isinstance(event, Interchange):
            interchange_errors = raw_problems([event.header]) + validator.take_errors()
            group_errors = []
        elif isinstance(event, Group):
            group_errors = raw_problems([event.header]) + validator.take_errors()
        else:
            _fail_on(validator.take_errors())
        for sink in sinks:
            _deliver(sink, event)
    validator.finish()
    _fail_on(validator.take_errors())
    # A wrong count is fixed wherever claims go out: the writer recomputes every count.
    goes_out = summary.accepted + summary.corrected > 0
    for note in envelope.notes:
        summary.errors.append(
            {"code": note.code, "message": note.message, "segment": note.segment, "offset": note.offset,
             "fixed": goes_out}
        )
    for sink in sinks:
        sink.finish(summary, reader.trailer)
    return summary


def _deliver(sink: Sink, event: Interchange | Group | GroupEnd | InterchangeEnd) -> None:
    if isinstance(event, Interchange):
        sink.interchange(event)
    elif isinstance(event, Group):
        sink.group(event)
    elif isinstance(event, GroupEnd):
        sink.group_end(event)
    else:
        sink.interchange_end(event)


def _fail_on(errors: list[StructuralError]) -> None:
    """Problems found at GE, IEA or the end of the input come after the claims they would
    concern, so they can only fail the file (the envelope reader fails the usual ones first)."""
    for error in errors:
        raise InputError(f"{error.seg_id}: {error.message}: the envelope cannot be trusted",
                         code="envelope.invalid", segment=error.segment)


def raw_problems(segments: list[Segment]) -> list[StructuralError]:
    """Empty segments and bytes outside ASCII: pyx12 cannot take them, so we look first."""
    found = []
    for seg in segments:
        text = seg.text
        if not text.strip():
            found.append(StructuralError(seg.index, "", None, "S003", "raw", "empty segment", seg.offset))
        elif not text.isascii():
            i, char = next((i, c) for i, c in enumerate(text) if ord(c) > 127)
            found.append(StructuralError(seg.index, text[:3], None, "S002", "raw", "byte outside ASCII",
                                         seg.offset + i, ord(char)))
    return found


def _scrub_transaction(layout: TransactionLayout, errors: list[StructuralError], rules: RuleSet,
                       mode: FixMode, run: RunContext) -> Iterator[ClaimResult]:
    segments = layout.transaction.segments
    base = segments[0].index
    by_claim: dict[int, list[Finding]] = {}
    for error in errors:
        position = error.segment - base
        inside = 0 <= position < len(segments)
        for claim in layout.scope(position) if inside else layout.claims:
            by_claim.setdefault(id(claim), []).append(_syntax_finding(error, layout, position, claim, rules))
    for claim in layout.claims:
        policy = rules.policy_for(claim.payer_class_code, claim.payer_id_code)
        context = ClaimContext(rules, policy, run.history, run.today, layout.delimiters, base)
        result = scrub_claim(claim, segments, context, mode, by_claim.get(id(claim)))
        if result.final is not None:
            # The next claims are held against this one (quantity over a window, cycles).
            run.history.record(claim.patient_key, doses_of(result.final, rules))
        yield result


def _syntax_finding(error: StructuralError, layout: TransactionLayout, position: int, claim: Claim,
                    rules: RuleSet) -> Finding:
    if error.code == "S002":
        rule = rules.rule("S002")
        message = rule.format(byte=error.byte, offset=error.offset)
    elif error.code == "S003":
        rule = rules.rule("S003")
        message = rule.format(offset=error.offset)
    else:
        rule = rules.rule("S001")
        inside = 0 <= position < len(layout.transaction.segments)
        if inside and layout.owner_at(position) is claim:
            where = ""
        elif inside:
            where = f"in the {layout.loop_of(position)}, shared with other claims: "
        else:
            where = "in the interchange or group header, shared by every claim in it: "
        detail = error.message
        if error.seg_id and error.seg_id not in detail:
            detail = f"{error.seg_id}: {detail}"
        message = rule.format(where=where, detail=detail)
    line = next((c.line_number for c in claim.lines if c.first <= position < (c.end or claim.end)), None)
    return Finding(rule=rule, severity=rule.severity, message=message, line=line, segment=error.segment,
                   seg_id=error.seg_id or None, element=error.element, value=None)


def _no_claims(event: TransactionSet, errors: list[StructuralError]) -> dict[str, Any]:
    detail = "; ".join(f"segment {e.segment} {e.seg_id}: {e.message}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    message = f"transaction set {event.control_number} holds no claim (no CLM found)"
    if errors:
        message += f"; implementation-guide errors: {detail}{more}"
    return {"code": "transaction.no_claims", "message": message, "segment": event.segments[0].index,
            "offset": event.segments[0].offset, "fixed": False}
