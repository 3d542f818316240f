"""Mutated sample files: the scrubber gives a result or the documented InputError, nothing else.

Derandomized: the same examples on every run, so a known defect cannot turn CI red one day in ten
(tests/test_fuzz.py marks those by name; bench/fuzz.py searches at random for as long as wanted)."""

from __future__ import annotations

import io

from conftest import SAMPLES, scrub_bytes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scrubber.errors import InputError
from scrubber.rules.ruleset import load_rules
from scrubber.x12.tokenizer import SegmentReader

RULES = load_rules()
BASES = [(SAMPLES / name).read_bytes() for name in ("clean_837p.837", "defects_837p.837", "clean_837i.837")]


def _segments(data: bytes) -> list[bytes]:
    """The file cut after each terminator; joined back, the same bytes."""
    pieces = data.split(b"~")
    return [p + b"~" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


@st.composite
def mutated(draw) -> bytes:
    data = draw(st.sampled_from(BASES))
    segments = _segments(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "duplicate", "drop", "insert", "swap", "delimiters", "flip"]))
        if kind == "cut":
            joined = b"".join(segments)
            # Counted from the end: hypothesis favours small numbers, and a file cut near its
            # start says little.
            segments = [joined[: len(joined) - draw(st.integers(0, len(joined)))]]
        elif kind in ("duplicate", "drop", "swap") and len(segments) > 7:
            # Mostly inside the transaction set (after ISA, GS, ST; before SE, GE, IEA).
            inside = draw(st.booleans()) or draw(st.booleans())
            low, high = (3, len(segments) - 4) if inside else (0, len(segments) - 1)
            i = draw(st.integers(low, high))
            if kind == "duplicate":
                segments.insert(i, segments[i])
            elif kind == "drop":
                del segments[i]
            else:
                j = draw(st.integers(low, high))
                segments[i], segments[j] = segments[j], segments[i]
        elif kind == "insert":
            joined = b"".join(segments)
            at = draw(st.integers(0, len(joined)))
            junk = draw(st.binary(min_size=1, max_size=8))
            segments = [joined[:at] + junk + joined[at:]]
        elif kind == "delimiters":
            element, terminator = draw(st.sampled_from([(b"|", b"!"), (b"^", b"\n"), (b"\x1d", b"\x1c")]))
            segments = [s.replace(b"*", element).replace(b"~", terminator) for s in segments]
        elif kind == "flip":
            joined = bytearray(b"".join(segments))
            if joined:
                at = draw(st.integers(0, len(joined) - 1))
                joined[at] = draw(st.integers(0, 255))
            segments = [bytes(joined)]
    return b"".join(segments)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_reader_succeeds_or_raises_input_error(data):
    try:
        reader = SegmentReader(io.BytesIO(data), chunk_size=64)
        for _ in reader:
            pass
    except InputError as exc:
        assert exc.message


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_scrub_succeeds_or_raises_input_error(data):
    try:
        result = scrub_bytes(data, RULES)
    except InputError as exc:
        assert exc.message and exc.code
        event(f"refused: {exc.code}")
        return
    event("scrubbed")
    summary = result.report["summary"]
    assert summary["claims"] == summary["accepted"] + summary["corrected"] + summary["rejected"]
    if result.corrected is not None:
        # Whatever goes out reads back as an 837 of its own.
        again = scrub_bytes(result.corrected, RULES)
        assert again.report["summary"]["claims"] == summary["accepted"] + summary["corrected"]


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.sampled_from([(b"|", b">", b"!"), (b"&", b"<", b"\r\n"), (b"+", b"\\", b"'")]))
def test_other_delimiters_give_the_same_dispositions(delims):
    # pyx12 (as trading partners using it) refuses control characters as delimiters, so the
    # sets here are printable; the mutation test above also tries control characters.
    element, component, terminator = delims
    base = (SAMPLES / "defects_837p.837").read_bytes()
    # ISA16 (the component separator) is the byte before the first terminator.
    changed = base.replace(b"*", element).replace(b":", component).replace(b"~\n", terminator)
    original = scrub_bytes(base, RULES).report["claims"]
    other = scrub_bytes(changed, RULES).report["claims"]
    assert [(c["claim_id"], c["disposition"]) for c in other] == [(c["claim_id"], c["disposition"]) for c in original]
