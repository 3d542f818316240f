"""A transaction set holding more errors than structural.SET_ERROR_LIMIT fails the file with one
clear message (pipeline.within_limit): its errors would otherwise be held until the set's claims
are judged, about 1 KB each, and one byte of input can make one (a fuzzing find: 483 KB of mostly
empty segments took 297 MB). At the limit, the set is still judged claim by claim."""

from __future__ import annotations

import io
import json
import pickle

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, TODAY

import scrubber
from scrubber import RunContext
from scrubber.cli import cli
from scrubber.errors import InputError
from scrubber.output.pipeline import scrub_stream
from scrubber.x12 import structural

CLEAN = (SAMPLES / "clean_837p.837").read_bytes()


def flooded(data: bytes, segment: bytes, count: int, after: bytes = b"~\nCLM*") -> bytes:
    """`count` copies of `segment` after the first CLM of `data` (its own loop, claim 1)."""
    start = data.index(after) + len(after)
    end = data.index(b"~", start) + 1
    return data[:end] + (b"\n" + segment + b"~") * count + data[end:]


def refusal(data: bytes, rules, validator: str = "compiled") -> InputError:
    with pytest.raises(InputError) as caught:
        scrub_stream(io.BytesIO(data), rules, [], run=RunContext.new(TODAY), validator=validator)
    return caught.value


def test_one_empty_segment_past_the_limit_fails_the_file_naming_where(rules):
    limit = structural.SET_ERROR_LIMIT
    data = flooded(CLEAN, b"", limit + 1)
    error = refusal(data, rules)
    assert error.code == "guide.too_many_errors"
    first = data.index(b"~\n~") + 2  # the first empty segment: its offset and its index
    assert error.offset == first
    assert error.segment == data[:first].count(b"~") + 1
    message = str(error)
    assert f"holds {limit + 1:,} syntax and implementation-guide errors, more than the {limit:,}" in message
    assert f"Most frequent: empty segment ({limit:,} of the first {limit:,})" in message
    assert message.isprintable() and "\n" not in message


def test_at_the_limit_the_set_is_judged_claim_by_claim(rules, monkeypatch):
    monkeypatch.setattr(structural, "SET_ERROR_LIMIT", 300)  # (at the real one: 3 s and 240 MB)
    data = flooded(CLEAN, b"", 300)
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    assert result.summary.claims == 7 and result.summary.rejected == 1
    (rejected,) = [claim for claim in result.claims if claim.disposition == "rejected"]
    assert {finding.rule.id for finding in rejected.findings} == {"S003", "S001"}  # 100 listed, then the count
    assert refusal(flooded(CLEAN, b"", 301), rules).code == "guide.too_many_errors"


def test_a_claim_of_100000_lines_is_still_judged_claim_by_claim(rules, monkeypatch):
    """Issue 11's long claim: one error for each line past the guide's 50 (here at a limit made
    small: N lines make N - 50 errors), so 100,000 lines stay under the real limit."""
    import sys

    sys.path.insert(0, str(SAMPLES.parent / "bench"))
    try:
        import pathological
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(structural, "SET_ERROR_LIMIT", 1_950)
    summary = scrub_stream(io.BytesIO(pathological.build("lines", 2_000).encode("ascii")), rules, [],
                           run=RunContext.new(TODAY))
    assert (summary.claims, summary.rejected) == (1, 1)
    assert "holds 1,951 " in str(refusal(pathological.build("lines", 2_001).encode("ascii"), rules))
    monkeypatch.undo()
    assert structural.SET_ERROR_LIMIT >= 100_000 - 50


@pytest.mark.parametrize("validator", ["compiled", "pyx12"])
def test_a_flood_of_guide_errors_fails_the_file_with_either_validator(rules, monkeypatch, validator):
    # (A lower limit: pyx12 takes about a millisecond a segment.)
    monkeypatch.setattr(structural, "SET_ERROR_LIMIT", 40)
    quiet = flooded(CLEAN, b"NTE*ADD*X", 20)  # an NTE where the claim allows one: 19 errors
    summary = scrub_stream(io.BytesIO(quiet), rules, [], run=RunContext.new(TODAY), validator=validator)
    assert summary.claims == 7 and summary.rejected == 1
    error = refusal(flooded(CLEAN, b"NTE*ADD*X", 60), rules, validator)
    assert error.code == "guide.too_many_errors" and error.offset is None
    assert "transaction set '0101' holds 59 syntax and implementation-guide errors, more than the 40" in str(error)
    assert "First error: segment 22, NTE:" in str(error)  # the second NTE (the claim's loop allows one)


def test_errors_past_the_limit_are_counted_not_kept(monkeypatch):
    monkeypatch.setattr(structural, "SET_ERROR_LIMIT", 3)
    errors = structural.SetErrors()
    errors.extend(range(5))
    errors.append(5)
    assert list(errors) == [0, 1, 2] and errors.dropped == 3
    again = pickle.loads(pickle.dumps(errors))  # (pass 1's log, a worker's records)
    assert list(again) == [0, 1, 2] and again.dropped == 3


def test_the_refusal_survives_the_way_back_from_a_worker():
    error = InputError("set '1' holds 10,001 errors", code="guide.too_many_errors", offset=7, segment=3)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.as_dict(), str(again)) == (InputError, error.as_dict(), str(error))


def test_the_cli_refuses_the_file_with_exit_3_and_writes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "flood.837"
    path.write_bytes(flooded(CLEAN, b"", structural.SET_ERROR_LIMIT + 5))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["scrub", "flood.837", "--out", "out", "--outputs",
                                      "corrected,rejected,json,html,csv,999,277ca", "--format", "json",
                                      "--today", TODAY.isoformat()])
    assert result.exit_code == 3, result.output
    (given,) = json.loads(result.stdout)["inputs"]
    assert "cannot scrub" in result.stderr and result.stderr.count("\n") == 1
    assert given["error"]["code"] == "guide.too_many_errors" and given["error"]["segment"] is not None
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
