"""The fuzzing harness: one input through `scrubber.scrub()` and every renderer, and the invariants
that must hold whatever the input (issue 8).

    check(data)  -> "refused" | "scrubbed"; raises AssertionError naming the invariant it broke

Usable from pytest (tests/test_fuzz.py) and from atheris (bench/fuzz.py):

    atheris.Setup(sys.argv, TestOneInput); atheris.Fuzz()

The invariants, on every input:
- crash: nothing escapes but a ScrubberError (InputError refuses the whole file);
- refusal: a ScrubberError says what, in one printable line (an InputError with its code);
- conservation: every CLM of the input (counted here from the raw bytes, inside ST...SE) is in
  exactly one of the corrected file, the rejected file, or report["unattributed"]; no claim in two;
  each file keeps the input order; the counts of the summary say the same;
- report: the JSON report round-trips through json and matches report.schema.json; its claims are
  the claims of the two files, with their dispositions;
- segments: every segment of a claim in the input (an id only a claim's loops hold: HI, LX, SV1,
  DTP, ...) is in the corrected or the rejected file, unless a fix changed it or its set holds no
  claim: nothing of a claim vanishes, whatever stands where its CLM should be;
- summary: its counts are those of the files (claims = the CLM count);
- renderer: one scrub_stream drives every sink of output/files.py (corrected, rejected, json, html,
  csv, 999, 277ca) into memory: the HTML parses, with one body per claim; the CSV parses, one row
  per finding, claim not checked and file-level problem; the acknowledgments read back as X12
  (check_api: and scrub() gives the same);
- idempotence: the corrected file scrubs again without error, every claim in it accepted, and
  comes out identical.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import lxml.html

import scrubber
from scrubber import FixMode, RunContext, ScrubberError, load_rules
from scrubber.output.files import KINDS, make_sink
from scrubber.output.summary import Summary
from scrubber.x12.tokenizer import SegmentReader

ROOT = Path(__file__).resolve().parents[2]
# Service dates are held against a fixed day, so a run gives the same result every day (S004).
TODAY = dt.date(2026, 11, 27)
RULES = load_rules()
_SCHEMA = json.loads((ROOT / "scrubber" / "output" / "report.schema.json").read_text())
SCHEMA = jsonschema.Draft202012Validator(_SCHEMA)
RENDERERS = tuple(KINDS)  # corrected, rejected, json, html, csv, 999, 277ca
_TEXT_KINDS = {kind for kind, spec in KINDS.items() if spec.text}


class InvariantError(AssertionError):
    """An invariant broke: `invariant` names it (crash, conservation, summary, report, renderer,
    idempotence), the message says how."""

    def __init__(self, invariant: str, message: str) -> None:
        super().__init__(f"{invariant}: {message}")
        self.invariant = invariant


def _fail(invariant: str, message: str) -> InvariantError:
    return InvariantError(invariant, message)


# ---------------------------------------------------------------- what the scrubber is called with
# Module-level so the tests can break them on purpose and see the harness notice.

def run_scrub(data: bytes) -> scrubber.Result:
    return scrubber.scrub(data, rules=RULES, fix=FixMode.SAFE, run=RunContext.new(TODAY))


@dataclass
class Rendered:
    """What one scrub_stream with every renderer made: each output (bytes or text), the summary."""

    outputs: dict[str, Any]
    summary: Summary

    @property
    def corrected(self) -> bytes | None:
        return self.outputs["corrected"]

    @property
    def rejected(self) -> bytes | None:
        return self.outputs["rejected"]


def run_renderers(data: bytes) -> Rendered:
    """scrub_stream with every renderer writing to memory."""
    streams: dict[str, Any] = {kind: io.StringIO(newline="") if kind in _TEXT_KINDS else io.BytesIO()
                               for kind in RENDERERS}
    sinks = {kind: make_sink(kind, stream, "<fuzz>", {"name": "scrubber"}) for kind, stream in streams.items()}
    run = RunContext.new(TODAY)
    try:
        summary = scrubber.scrub_stream(io.BytesIO(data), RULES, list(sinks.values()), FixMode.SAFE, run=run)
    finally:
        run.close()
    out: dict[str, Any] = {kind: stream.getvalue() for kind, stream in streams.items()}
    for kind in ("corrected", "rejected"):
        if not getattr(sinks[kind], "claims_written", 0):
            out[kind] = None  # as scrub() says it: no file
    return Rendered(out, summary)


# ---------------------------------------------------------------- counting claims from raw bytes

# What may stand before a segment id and still leave it recognisable: whitespace and control
# bytes. " CLM*..." is a claim a sender meant to send; it must not vanish because it is malformed.
_BEFORE_ID = "".join(chr(c) for c in range(33)) + "\x7f"


def claim_ids(data: bytes) -> list[tuple[int, str]]:
    """(segment index, CLM01) of every CLM segment inside ST...SE, in file order, read with the
    scrubber's own tokenizer but none of its envelope or claim code. A segment id is read past
    leading whitespace and control bytes. Raises InputError when the bytes do not even tokenize."""
    reader = SegmentReader(io.BytesIO(data))
    element = reader.delimiters.element
    inside = False
    found = []
    for segment in reader:
        fields = segment.text.split(element)
        seg_id = fields[0].lstrip(_BEFORE_ID)
        if seg_id == "ST":
            inside = True
        elif seg_id == "SE":
            inside = False
        elif seg_id == "CLM" and inside:
            found.append((segment.index, fields[1] if len(fields) > 1 else ""))
    return found


def _ids_in(output: bytes | None, what: str) -> list[str]:
    if output is None:
        return []
    try:
        return [claim_id for _, claim_id in claim_ids(output)]
    except ScrubberError as exc:
        raise _fail("renderer", f"the {what} file does not read back as X12: {exc}") from exc


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)


# ---------------------------------------------------------------- the invariants

def check(data: bytes) -> str:
    """Run every invariant on one input; returns "refused" (a ScrubberError, as documented) or
    "scrubbed". Raises InvariantError (an AssertionError) naming the first invariant broken.

    One scrub_stream feeds every renderer (the JSON report among them); scrub() then scrubs the
    corrected file again. Two scrubs an input rather than three: scrub() is the same pipeline
    with three of these renderers, and check_api() holds the two equal where that is wanted."""
    try:
        rendered = run_renderers(data)
    except ScrubberError as exc:
        _check_refusal(exc)
        return "refused"
    except Exception as exc:
        raise _fail("crash", f"scrub_stream with every renderer raised {_summary_of(exc)}") from exc
    try:
        expected = claim_ids(data)
    except ScrubberError as exc:
        raise _fail("crash", f"the scrubber read a file that does not tokenize ({exc})") from exc
    report = _parse_report(rendered.outputs["json"])
    corrected_ids = _ids_in(rendered.corrected, "corrected")
    rejected_ids = _ids_in(rendered.rejected, "rejected")
    _check_conservation(expected, corrected_ids, rejected_ids, report)
    _check_summary(rendered.summary, report, expected, corrected_ids, rejected_ids)
    _check_report(report, corrected_ids, rejected_ids)
    _check_segments_kept(data, rendered, report)  # (the report read as the schema has it)
    _check_renderers(rendered, report)
    _check_idempotence(data, rendered, report, corrected_ids)
    return "scrubbed"


def check_api(data: bytes) -> str:
    """check(), and scrub() gives the same files and report as the renderers (or the same refusal)."""
    outcome = check(data)
    try:
        result = run_scrub(data)
    except ScrubberError as exc:
        if outcome != "refused":
            raise _fail("renderer", f"scrub() refused a file scrub_stream took: {exc}") from exc
        try:
            run_renderers(data)
        except ScrubberError as again:
            if type(again) is not type(exc) or getattr(again, "code", None) != getattr(exc, "code", None):
                raise _fail("renderer", f"scrub() refused with {exc!r}, scrub_stream with {again!r}") from again
        return outcome
    except Exception as exc:
        raise _fail("crash", f"scrub() raised {_summary_of(exc)}") from exc
    if outcome == "refused":
        raise _fail("renderer", "scrub() took a file scrub_stream refused")
    rendered = run_renderers(data)
    report = _parse_report(rendered.outputs["json"])
    if (result.corrected, result.rejected) != (rendered.corrected, rendered.rejected):
        raise _fail("renderer", "scrub() returned other corrected or rejected bytes than the renderers wrote")
    if result.report["claims"] != report["claims"] or result.report["summary"] != report["summary"]:
        raise _fail("renderer", "scrub() returned another report than the json renderer wrote")
    if [(c.claim_id, c.disposition) for c in result.claims] != [(c["claim_id"], c["disposition"])
                                                               for c in report["claims"]]:
        raise _fail("renderer", "scrub()'s claims are not the report's")
    return outcome


def _summary_of(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno} in {frame.name}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:200]}{where}"


def _check_refusal(exc: ScrubberError) -> None:
    """A refusal is one clear line: a message, printable (raw CR, LF or ESC from the input would
    forge lines or drive the terminal it is printed on), and for an InputError a code."""
    text = str(exc)
    if not text.strip():
        raise _fail("refusal", f"{type(exc).__name__} without a message")
    if not text.isprintable():
        raise _fail("refusal", f"the message holds unprintable characters: {text[:200]!r}")
    if isinstance(exc, scrubber.InputError) and not exc.code:
        raise _fail("refusal", f"an InputError without a code: {text[:200]!r}")


def _parse_report(text: str) -> dict[str, Any]:
    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError as exc:
        raise _fail("report", f"the JSON report does not parse: {exc}") from exc


def without_clm(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's claims that no CLM starts (segment null): segments where a claim should be,
    with its CLM missing or damaged. They are counted beside the input's CLMs, and must be rejected."""
    return [c for c in report["claims"] if c["segment"] is None]


def _check_conservation(expected: list[tuple[int, str]], corrected_ids: list[str], rejected_ids: list[str],
                        report: dict[str, Any]) -> None:
    sent = [c for c in without_clm(report) if c["disposition"] != "rejected"]
    if sent:
        raise _fail("conservation", f"a claim without a CLM is {sent[0]['disposition']}, not rejected")
    unattributed = report.get("unattributed", [])  # the old code has no such list
    clm_at = dict(expected)
    for entry in unattributed:
        if entry.get("segment") not in clm_at:
            raise _fail("conservation", f"unattributed entry {entry} does not point at a CLM segment of the input")
        if entry.get("claim_id") is not None and entry["claim_id"] != clm_at[entry["segment"]]:
            raise _fail("conservation", f"unattributed entry {entry} names CLM01 {entry['claim_id']!r}, but "
                                        f"segment {entry['segment']} is CLM01 {clm_at[entry['segment']]!r}")
        if not str(entry.get("reason", "")).strip():
            raise _fail("conservation", f"unattributed entry {entry} gives no reason")
    segments = [entry["segment"] for entry in unattributed]
    if len(set(segments)) != len(segments):
        raise _fail("conservation", f"a claim is unattributed twice: segments {sorted(segments)}")
    inputs = collections.Counter(claim_id for _, claim_id in expected)
    corrected, rejected = collections.Counter(corrected_ids), collections.Counter(rejected_ids)
    outputs = corrected + rejected + collections.Counter(clm_at[s] for s in segments)
    unique = {claim_id for claim_id, n in inputs.items() if n == 1}
    both = sorted(unique & set(corrected) & set(rejected))
    if both:
        raise _fail("conservation", f"claims in both the corrected and the rejected file: {both[:5]}")
    if outputs != inputs:
        lost, extra = inputs - outputs, outputs - inputs
        raise _fail("conservation", f"{len(expected)} CLM in the input; {len(corrected_ids)} corrected, "
                                    f"{len(rejected_ids)} rejected, {len(unattributed)} unattributed; "
                                    f"lost {dict(lost.most_common(5))}, extra {dict(extra.most_common(5))}")
    order = [claim_id for _, claim_id in expected]
    for name, ids in (("corrected", corrected_ids), ("rejected", rejected_ids)):
        if not _is_subsequence(ids, order):
            raise _fail("conservation", f"the {name} file does not keep the input's claim order")


# Segment ids that only a claim's loops (2300 and below) hold in the 837P and 837I guides: none of
# them stands in the header or an HL loop of a well-formed set.
_CLAIM_IDS = frozenset(("CLM", "HI", "LX", "SV1", "SV2", "SV5", "LIN", "CTP", "DTP", "CN1", "PWK", "CL1", "HCP",
                        "SVD", "CAS", "LQ", "FRM", "K3", "CR1", "CR2", "CRC", "QTY", "MEA", "HSD", "AMT", "MOA", "MIA",
                        "OI", "NTE"))


def claim_segments(data: bytes) -> dict[int, list[tuple[int, str]]]:
    """By the index of its ST, the (index, text) of each segment inside ST...SE whose id (read past
    leading whitespace and control bytes) only a claim's loops hold; read as claim_ids reads."""
    reader = SegmentReader(io.BytesIO(data))
    element = reader.delimiters.element
    found: dict[int, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] | None = None
    for segment in reader:
        seg_id = segment.text.split(element, 1)[0].lstrip(_BEFORE_ID)
        if seg_id == "ST":
            current = found.setdefault(segment.index, [])
        elif seg_id == "SE":
            current = None
        elif current is not None and seg_id in _CLAIM_IDS:
            current.append((segment.index, segment.text))
    return found


def _texts_in(output: bytes | None) -> collections.Counter[str]:
    if output is None:
        return collections.Counter()
    return collections.Counter(segment.text for segment in SegmentReader(io.BytesIO(output)))


def _check_segments_kept(data: bytes, rendered: Rendered, report: dict[str, Any]) -> None:
    if report.get("unattributed"):
        return  # (a claim held back is in neither file, by design)
    no_claims = {e["segment"] for e in report["errors"] if e.get("code") == "transaction.no_claims"}
    fixed = {f["segment"] for c in report["claims"] for f in c["findings"] if f["fixed"]}
    wanted = collections.Counter(text for st, segments in claim_segments(data).items() if st not in no_claims
                                 for index, text in segments if index not in fixed)
    lost = wanted - (_texts_in(rendered.corrected) + _texts_in(rendered.rejected))
    if lost:
        raise _fail("segments", f"{sum(lost.values())} segment(s) of claims in neither file: "
                                f"{[repr(text[:40]) for text in list(lost)[:3]]}")


def _check_summary(summary: Summary, report: dict[str, Any], expected: list[tuple[int, str]],
                   corrected_ids: list[str], rejected_ids: list[str]) -> None:
    unattributed = len(report.get("unattributed", []))
    # Summary.unattributed: a list of the claims (the pipeline with conservation), or none (before it).
    listed = getattr(summary, "unattributed", [None] * unattributed)
    counts = {"claims": summary.claims, "accepted + corrected": summary.accepted + summary.corrected,
              "rejected": summary.rejected, "unattributed": len(listed)}
    orphans = len(without_clm(report))  # (in the rejected file, which no CLM of theirs names)
    truth = {"claims": len(expected) + orphans, "accepted + corrected": len(corrected_ids),
             "rejected": len(rejected_ids) + orphans, "unattributed": unattributed}
    if counts != truth:
        raise _fail("summary", f"the summary says {counts}; the files say {truth}")
    reported = {k: v for k, v in report["summary"].items() if k != "by_rule"}
    own = {k: v for k, v in summary.as_dict().items() if k != "by_rule"}
    if reported != own:
        raise _fail("summary", f"the report's summary {reported} is not the scrub's {own}")


def _check_report(report: dict[str, Any], corrected_ids: list[str], rejected_ids: list[str]) -> None:
    try:
        again = json.loads(json.dumps(report, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise _fail("report", f"the report is not JSON: {exc}") from exc
    if again != report:
        raise _fail("report", "the report does not round-trip through JSON")
    error = next(iter(SCHEMA.iter_errors(report)), None)
    if error is not None:
        raise _fail("report", f"the report breaks the schema at {list(error.absolute_path)}: {error.message[:200]}")
    goes_out = [c["claim_id"] for c in report["claims"] if c["disposition"] in ("accepted", "corrected")]
    held = [c["claim_id"] for c in report["claims"] if c["disposition"] == "rejected" and c["segment"] is not None]
    if goes_out != corrected_ids:
        raise _fail("report", f"the report's accepted and corrected claims {goes_out[:5]} are not those of the "
                              f"corrected file {corrected_ids[:5]}")
    if held != rejected_ids:
        raise _fail("report", f"the report's rejected claims {held[:5]} are not those of the rejected file "
                              f"{rejected_ids[:5]}")


def _check_renderers(rendered: Rendered, report: dict[str, Any]) -> None:
    out = rendered.outputs
    claims = len(report["claims"])
    try:
        page = lxml.html.document_fromstring(out["html"])
    except Exception as exc:
        raise _fail("renderer", f"the HTML report does not parse: {exc}") from exc
    bodies = page.xpath("//tbody[contains(concat(' ', @class, ' '), ' claim ')]")
    if len(bodies) != claims:
        raise _fail("renderer", f"the HTML report shows {len(bodies)} claims of {claims}")
    rows = list(csv.reader(io.StringIO(out["csv"].removeprefix("\ufeff"), newline="")))
    # A row per finding, then per claim not checked and per file-level problem.
    findings = sum(len(c["findings"]) for c in report["claims"]) + len(report["unattributed"]) + len(report["errors"])
    if len(rows) != findings + 1 or len({len(row) for row in rows}) != 1:
        raise _fail("renderer", f"the CSV report has {len(rows) - 1} rows (widths {sorted({len(r) for r in rows})}) "
                                f"for {findings} findings, claims not checked and file-level problems")
    for kind in ("999", "277ca"):
        if out[kind]:
            try:
                for _ in SegmentReader(io.BytesIO(out[kind])):
                    pass
            except ScrubberError as exc:
                raise _fail("renderer", f"the {kind} acknowledgment does not read as X12: {exc}") from exc


def _check_idempotence(data: bytes, rendered: Rendered, report: dict[str, Any], corrected_ids: list[str]) -> None:
    corrected = rendered.corrected
    if corrected is None:
        return
    if corrected == data:
        # The same bytes, rules and day give the same scrub: this one, already at hand.
        changed = [(c["claim_id"], c["disposition"]) for c in report["claims"] if c["disposition"] != "accepted"]
        if changed:
            raise _fail("idempotence", f"a file comes out unchanged but not every claim is accepted: {changed[:3]}")
        return
    _check_all_accepted(_rescrub(corrected), corrected, corrected_ids)


def _rescrub(corrected: bytes) -> scrubber.Result:
    try:
        return run_scrub(corrected)
    except ScrubberError as exc:
        raise _fail("idempotence", f"the corrected file is refused when scrubbed again: {exc}") from exc
    except Exception as exc:
        raise _fail("crash", f"scrubbing the corrected file raised {_summary_of(exc)}") from exc


def _check_all_accepted(again: scrubber.Result, corrected: bytes, corrected_ids: list[str]) -> None:
    s = again.summary
    if (s.claims, s.accepted) != (len(corrected_ids), len(corrected_ids)):
        changed = [(c.claim_id, c.disposition, sorted({f.rule.id for f in c.findings})) for c in again.claims
                   if c.disposition != "accepted"]
        raise _fail("idempotence", f"the corrected file scrubbed again: {s.claims} claims, {s.accepted} accepted, "
                                   f"{s.corrected} corrected, {s.rejected} rejected (of {len(corrected_ids)}): "
                                   f"{changed[:3]}")
    if again.corrected != corrected:
        raise _fail("idempotence", "the corrected file, all accepted, does not come out identical")


# ---------------------------------------------------------------- atheris

def TestOneInput(data: bytes) -> None:  # atheris's name for the entry point
    check(data)


def main(argv: list[str] | None = None, mutator: Callable[[bytes, int, int], bytes] | None = None) -> None:
    import atheris

    atheris.Setup(argv or sys.argv, TestOneInput, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
