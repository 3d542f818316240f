"""Parallel scrubbing by transaction set (output/by_sets.py): the scan that finds the sets agrees
with the tokenizer, and whole sets scrubbed in workers and spliced give the outputs of one job,
byte for byte, with the checks across claims (U008, U009, U015) exact across sets."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
import logging
import types
from pathlib import Path
from typing import ClassVar

import lxml.html
import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES, TODAY, corpus_files, make_a_rule_raise, model_claims
from test_jobs import GENERATE, TOOL, _claim, _fillers, _renamed

from scrubber import ClaimFileWriter, JsonReport, RunContext, load_rules, scrub_stream
from scrubber.cli import cli
from scrubber.errors import InputError
from scrubber.output import by_files, by_sets, html_report, parallel, pipeline, set_scan
from scrubber.output.csv_report import CsvReport
from scrubber.output.parallel import Workers
from scrubber.x12.envelope import EnvelopeReader
from scrubber.x12.tokenizer import NOT_AN_ID, SegmentReader

OUTPUTS = "corrected,rejected,json,html,csv"  # the default outputs, written in parts (and the linter lines)
ENVELOPE = {"ISA", "GS", "ST", "SE", "GE", "IEA"}


# --- files made for the tests ---------------------------------------------------------------------

def _set_text(claims: list, control: int, kind: str = "837P") -> str:
    """One transaction set, ST to SE, as tools/make_samples.py renders it."""
    text = TOOL.render(TOOL.SampleFile("set.837", kind, "sets", claims), control)
    return text[text.index("ST*837*"):text.index("GE*")]


def _interchange(groups: list[list[str]], control: int) -> str:
    isa = (f"ISA*00*          *00*          *ZZ*{'SUBMIT001':<15}*ZZ*{'RECV001':<15}*261120*1200*^*00501*"
           f"{control:09d}*0*T*:~\n")
    text = isa
    for number, sets in enumerate(groups, start=control * 10):
        text += f"GS*HC*SUBMIT001*RECV001*20261120*1200*{number}*X*005010X222A1~\n"
        text += "".join(sets) + f"GE*{len(sets)}*{number}~\n"
    return text + f"IEA*{len(groups)}*{control:09d}~\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="latin-1")
    return path


def _defects(*ids: str) -> list:
    """Sample claims, each its own patient (the samples number their members per file)."""
    return [_renamed(claim_id, claim_id, f"M{claim_id[2:]}") for claim_id in ids]


# --- the scan -------------------------------------------------------------------------------------

def _tokenized(data: bytes) -> tuple[list, list, str, str]:
    reader = SegmentReader(io.BytesIO(data))
    d = reader.delimiters
    segments = list(reader)
    envelope = [s for s in segments if s.text.partition(d.element)[0].lstrip(NOT_AN_ID) in ENVELOPE]
    return segments, envelope, reader.prefix, reader.trailer


def _assert_scan_agrees(data: bytes) -> set_scan.SetPlan | None:
    plan = set_scan.scan(io.BytesIO(data), 1 << 40)
    if plan is None:
        return None
    segments, envelope, prefix, trailer = _tokenized(data)
    found = []
    for item in plan.items:
        if isinstance(item, set_scan.SetSpan):
            found += [item.header, item.trailer]
            within = segments[item.header.index - 1:item.trailer.index]
            assert data[item.start:item.end].decode("latin-1") == "".join(s.text + s.suffix for s in within)
            assert item.count == len(within)
        else:
            found.append(item)
    assert [(s.index, s.offset, s.text, s.suffix) for s in found] == \
        [(s.index, s.offset, s.text, s.suffix) for s in envelope]
    assert (plan.prefix, plan.trailer, plan.size) == (prefix, trailer, len(data))
    return plan


def _variants(text: str) -> dict[str, str]:
    """The same file with other terminators and line breaks, and indented envelope segments."""
    bare = text.replace("~\n", "~")
    return {
        "tilde-newline": text,
        "tilde": bare,
        "tilde-crlf": bare.replace("~", "~\r\n"),
        "tilde-blank-lines": bare.replace("~", "~\n\n"),
        "newline": bare[:105] + "\n" + bare[106:].replace("~", "\n"),
        "cr": bare[:105] + "\r" + bare[106:].replace("~", "\r"),
        "cr-lf": bare[:105] + "\r" + bare[106:].replace("~", "\r\n"),
        "cr-lf-lf": bare[:105] + "\r" + bare[106:].replace("~", "\r\n\n"),
        "indented": "\ufeff\n " .encode("utf-8").decode("latin-1") + text.replace("~\nST*", "~\n  ST*")
        .replace("~\nSE*", "~\n\tSE*").replace("~\nGE*", "~\n\x01GE*"),
    }


@pytest.mark.parametrize("chunk", [7, 100, set_scan.CHUNK], ids=["7-bytes", "100-bytes", "default"])
def test_the_scan_finds_the_sets_and_envelope_the_tokenizer_reads(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(set_scan, "CHUNK", chunk)
    path = tmp_path / "g.837"
    GENERATE.generate(12, path, per_transaction=4)
    for name, text in _variants(path.read_text(encoding="latin-1")).items():
        plan = _assert_scan_agrees(text.encode("latin-1"))
        assert plan is not None and len(plan.sets) == 3, name


def test_regression_the_scan_held_two_copies_of_an_8_mib_chunk(tmp_path):
    # The scan read 8 MiB at a time and joined it to what was left of the last: 13 MiB at the peak
    # for a file of 4.4 MB (30 MiB for a large one), above the rest of a --jobs run's main process.
    import tracemalloc

    path = tmp_path / "g.837"
    GENERATE.generate(12000, path, per_transaction=500)
    assert path.stat().st_size > 4 << 20
    with path.open("rb") as source:
        tracemalloc.start()
        try:
            plan = set_scan.scan(source, 1 << 40)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert plan is not None and len(plan.sets) == 24
    assert peak < 6 << 20, f"the scan peaked at {peak / (1 << 20):.1f} MiB"


def test_the_scan_agrees_with_the_tokenizer_on_every_sample_and_corpus_file():
    read = 0
    crashes = sorted((ROOT / "tests" / "fuzz" / "crashes").glob("*.837"))
    for path in [*sorted(SAMPLES.glob("*.837")), *corpus_files(), *crashes]:
        try:
            plan = _assert_scan_agrees(path.read_bytes())
        except InputError:
            continue  # not an interchange: pass 1 says so, as the scan does
        read += plan is not None
    assert read > 20


@pytest.mark.parametrize(("change", "why"), [
    (lambda t: t.replace("GE*", "REF*EI*1~\nGE*", 1), "a segment outside a set"),
    (lambda t: t.replace("SE*", "GE*1*1~\nSE*", 1), "an envelope segment inside a set"),
    (lambda t: t[:-20], "cut short"),
    (lambda t: t + "REF*X~\n", "a segment after the IEA"),
    (lambda t: t.replace("~\nHL*2*", "~\nLX*1~\nHL*2*", 1), "an LX before the set's first CLM"),
])
def test_the_scan_gives_up_where_it_cannot_speak_for_the_file_exactly(tmp_path, change, why):
    path = tmp_path / "g.837"
    GENERATE.generate(8, path, per_transaction=4)
    assert set_scan.scan(io.BytesIO(path.read_bytes()), 1 << 40) is not None
    assert set_scan.scan(io.BytesIO(change(path.read_text(encoding="latin-1")).encode("latin-1")), 1 << 40) is None, why


# --- the outputs ----------------------------------------------------------------------------------

@pytest.fixture
def by_set(monkeypatch):
    """Workers for the small files of the tests, and a count of the inputs scrubbed by sets and of
    the jobs scrubbed again in the main process. Several inputs are not sent to the workers whole
    (output/by_files.py): their sets are, each set a job of its own (the tests' sets are small: see
    `grouped` for sets that go together)."""
    monkeypatch.setattr(by_sets, "GROUP_BYTES", 0)
    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    monkeypatch.setattr(by_files, "SMALL_FILE", -1)

    class _Frozen(dt.datetime):  # the HTML report names the minute it was made
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 11, 27, 9, 30)

    monkeypatch.setattr(html_report, "dt", types.SimpleNamespace(**{**vars(dt), "datetime": _Frozen}))
    seen = {"inputs": 0, "here": 0}
    scrub_by_sets, scrub_set = by_sets.scrub_by_sets, by_sets.scrub_set

    def counted_inputs(*args, **kwargs):
        seen["inputs"] += 1
        return scrub_by_sets(*args, **kwargs)

    def counted_sets(*args, **kwargs):
        seen["here"] += 1
        return scrub_set(*args, **kwargs)

    monkeypatch.setattr(by_sets, "scrub_by_sets", counted_inputs)
    monkeypatch.setattr(by_sets, "scrub_set", counted_sets)
    return seen


def _cli(tmp_path: Path, monkeypatch, inputs: list[Path], jobs: int, outputs: str = OUTPUTS, options=()):
    where = tmp_path / f"jobs{jobs}"
    where.mkdir()
    monkeypatch.chdir(where)
    result = CliRunner().invoke(cli, ["scrub", *map(str, inputs), "--out", "out", "--outputs", outputs,
                                      "--today", TODAY.isoformat(), "--jobs", str(jobs), *options])
    assert "Traceback" not in result.output
    files = {p.name: p.read_bytes() for p in sorted((where / "out").iterdir())} if (where / "out").exists() else {}
    return result.exit_code, result.output, files


def assert_same_as_one_job(tmp_path, monkeypatch, seen, inputs: list[Path], by_sets_expected: int = 1, options=()):
    """The CLI's outputs, its linter lines and counts, and its exit code with two jobs are those of one."""
    code, text, files = _cli(tmp_path, monkeypatch, inputs, 1, options=options)
    assert seen["inputs"] == 0
    other_code, other_text, other_files = _cli(tmp_path, monkeypatch, inputs, 2, options=options)
    assert seen["inputs"] >= by_sets_expected, "no input was scrubbed by sets: nothing was compared"
    assert sorted(other_files) == sorted(files)
    for name, data in files.items():
        assert other_files[name] == data, f"{name} differs from --jobs 1"
    assert (other_code, other_text) == (code, text)
    return files


def _findings(files: dict[str, bytes], name: str) -> dict[str, set[str]]:
    return {c["claim_id"]: {f["rule"] for f in c["findings"]} for c in json.loads(files[name])["claims"]}


def test_many_sets_come_out_the_same_as_with_one_job(tmp_path, monkeypatch, by_set):
    path = tmp_path / "generated.837"
    GENERATE.generate(240, path, per_transaction=30)
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])
    assert json.loads(files["generated.report.json"])["summary"]["claims"] == 240
    assert by_set["here"] == 0  # no patient's doses cross sets: every set spliced


def test_the_samples_corpus_and_fuzzing_finds_come_out_the_same_as_with_one_job(tmp_path, monkeypatch, by_set):
    # The corpus holds files of several sets, groups and interchanges, broken ones among them.
    crashes = sorted((ROOT / "tests" / "fuzz" / "crashes").glob("*.837"))
    inputs = [*sorted(SAMPLES.glob("*.837")), *corpus_files(), *crashes]
    assert_same_as_one_job(tmp_path, monkeypatch, by_set, inputs, by_sets_expected=3)


def test_a_claim_the_rules_failed_on_is_named_in_every_report_as_with_one_job(tmp_path, monkeypatch, by_set):
    # Held back (in neither 837), it must still be found by a clerk who reads only the linter
    # lines, the HTML or the CSV, not only the JSON; and the CSV ends with the file-level problems.
    make_a_rule_raise(monkeypatch, "FILL-006")
    path = _write(tmp_path / "fault.837", _interchange([[
        _set_text(_fillers(0, 4), 1), _set_text(_fillers(4, 4), 2),
        "ST*837*0003*005010X222A1~\nSE*2*0003~\n",  # a set with no claim: a file-level problem
    ]], 401))
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])
    (tmp_path / "again").mkdir()
    code, text, _ = _cli(tmp_path / "again", monkeypatch, [path], 1)
    assert code == 4
    (line,) = [line for line in text.splitlines() if "not-checked" in line]
    assert line.startswith(f"{path}:") and "[claim FILL-006, in neither file]" in line
    assert "internal error while checking the claim (ZeroDivisionError)" in line
    report = json.loads(files["fault.report.json"])
    (held,) = report["unattributed"]
    assert line.startswith(f"{path}:{held['segment']}:CLM: ")
    rows = list(csv.DictReader(io.StringIO(files["fault.report.csv"].decode("utf-8-sig"))))
    (not_checked,) = [row for row in rows if row["disposition"] == "not checked"]
    assert (not_checked["claim_id"], not_checked["segment"], not_checked["message"]) == (
        "FILL-006", str(held["segment"]), held["reason"])
    file_rows = [row for row in rows if row["category"] == "file"]
    assert [(row["rule"], row["message"], row["claim_id"]) for row in file_rows] == [
        (error["code"], error["message"], "") for error in report["errors"]] and file_rows
    findings = sum(len(claim["findings"]) for claim in report["claims"])
    assert len(rows) == findings + 1 + len(file_rows) and rows[-1] is file_rows[-1]
    page = lxml.html.document_fromstring(files["fault.report.html"])
    (listed,) = page.xpath("//section[h2[starts-with(., 'Claims not checked')]]//li")
    assert listed.text_content() == f"segment {held['segment']}: claim FILL-006: {held['reason']}"
    assert "FILL-006" not in {c["claim_id"] for c in report["claims"]}


def test_a_clean_run_has_no_row_or_section_of_claims_not_checked(tmp_path, monkeypatch):
    code, text, files = _cli(tmp_path, monkeypatch, [SAMPLES / "clean_837p.837"], 1)
    assert code == 0 and "not-checked" not in text
    rows = list(csv.DictReader(io.StringIO(files["clean_837p.report.csv"].decode("utf-8-sig"))))
    assert not [row for row in rows if row["disposition"] == "not checked" or row["category"] == "file"]
    assert b"Claims not checked" not in files["clean_837p.report.html"]


def _patients_in_two_files(tmp_path: Path) -> list[Path]:
    """The first claim of each patient in one set, the second in a later set or the next file."""
    first = _write(tmp_path / "first.837", _interchange([[
        _set_text([_claim("P-U008-WINDOW-A"), _claim("P-U009-CYCLE-A"),
                   _renamed("P-OK-MEDICARE-JZ", "DUP-1", "DUP0001"), *_fillers(0, 5)], 1),
        _set_text([*_fillers(5, 5)], 2),
        _set_text([_claim("P-U008-WINDOW-B"), *_fillers(10, 3)], 3),
    ]], 301))
    second = _write(tmp_path / "second.837", _interchange([[
        _set_text([*_fillers(20, 4)], 4),
        _set_text([_claim("P-U009-CYCLE-B"), _renamed("P-OK-MEDICARE-JZ", "DUP-2", "DUP0001")], 5),
    ]], 302))
    return [first, second]


def _assert_found_with_the_earlier_claims(files: dict[str, bytes]) -> None:
    found = {**_findings(files, "first.report.json"), **_findings(files, "second.report.json")}
    assert "U008" in found["P-U008-WINDOW-B"]
    assert "U009" in found["P-U009-CYCLE-B"]
    assert "U015" in found["DUP-2"] and "U015" not in found["DUP-1"]


def test_a_patients_doses_across_sets_are_checked_against_the_earlier_sets(tmp_path, monkeypatch, by_set):
    # The sets that hold a patient's second claim are scrubbed again against the run's history,
    # and the findings that need the earlier claim come out as with one job.
    inputs = _patients_in_two_files(tmp_path)
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, inputs, by_sets_expected=2)
    assert by_set["here"] == 2  # the sets of WINDOW-B, and of CYCLE-B and DUP-2
    _assert_found_with_the_earlier_claims(files)


def test_the_doses_of_spliced_sets_wait_for_an_idle_moment_and_none_is_lost(tmp_path, monkeypatch, by_set):
    """The main process inserts the doses of the sets it splices while it waits on a worker, not in
    each splice (RunHistory.record_pickled): the last set's wait in memory when the file ends. Every
    patient of the file is in the run's history all the same, and it inserts as usual afterwards."""
    from scrubber.rules import history

    first, _second = _patients_in_two_files(tmp_path)
    with Workers(2) as workers:
        run = RunContext.new(TODAY, workers)
        with first.open("rb") as source:
            scrub_stream(source, load_rules(), [JsonReport(io.StringIO(), str(first), {})], run=run)
        assert by_set["inputs"] == 1
        assert run.history.insert_at == history._COMMIT_EVERY
        assert run.history._rows  # the last set's doses: not inserted yet
        patients = [claim.patient_key for claim, _ in model_claims(io.BytesIO(first.read_bytes()))]
        assert all(run.history.knows_any([patient]) for patient in patients if patient[0])
        run.close()


def test_interchanges_groups_and_sets_with_no_claim_going_out_come_out_the_same(tmp_path, monkeypatch, by_set):
    path = _write(tmp_path / "envelopes.837", _interchange([
        [_set_text(_defects("P-U002-FRACTION", "P-U001-ZERO-UNITS", "P-U010-VIAL-SHARED", "P-M005-JZ-TWICE"), 11),
         _set_text(_defects("P-U004-DOSE-MISMATCH", "P-C005-NOT-A-CODE"), 12)],  # nothing goes out
        [_set_text(_defects("P-U003-MG-AS-UNITS"), 13), _set_text([], 14)],  # no claim at all
    ], 401) + _interchange([
        [_set_text(_defects("P-N002-NDC-HYPHENS", "P-S003-EMPTY-SEGMENT"), 15)],
        [_set_text(_defects("P-U011-JZ-PART-VIAL"), 16), _set_text(_defects("P-C007-ICD9"), 17)],
    ], 402))
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])
    report = json.loads(files["envelopes.report.json"])
    assert {c["disposition"] for c in report["claims"]} == {"accepted", "corrected", "rejected"}
    assert any(e["code"] == "transaction.no_claims" for e in report["errors"])
    corrected = files["envelopes.corrected.837"].decode("latin-1")
    assert corrected.count("ST*837*") == 4 and corrected.count("ISA*") == 2  # the sets of 12, 14 and 17 left out
    assert by_set["here"] == 0


@pytest.fixture
def grouped(by_set, monkeypatch):
    """`by_set`, with small sets going to the workers together (GROUP_BYTES: here a few of the
    tests' sets a job); `grouped["jobs"]` holds the number of sets of each job handed out."""
    monkeypatch.setattr(by_sets, "GROUP_BYTES", 6_000)
    sizes: list[int] = []
    next_group = by_sets._next_group

    def recorded(sets, start, found_all):
        group = next_group(sets, start, found_all)
        if group:
            sizes.append(len(group))
        return group

    monkeypatch.setattr(by_sets, "_next_group", recorded)
    by_set["jobs"] = sizes
    return by_set


def _envelopes(path: Path) -> Path:
    """Two interchanges of two groups each: sets with claims that go out, sets with none, a set with no claim."""
    return _write(path, _interchange([
        [_set_text(_defects("P-U002-FRACTION", "P-U001-ZERO-UNITS", "P-U010-VIAL-SHARED", "P-M005-JZ-TWICE"), 11),
         _set_text(_defects("P-U004-DOSE-MISMATCH", "P-C005-NOT-A-CODE"), 12),
         _set_text(_fillers(0, 2), 18), _set_text(_fillers(2, 1), 19), _set_text(_fillers(3, 2), 20)],
        [_set_text(_defects("P-U003-MG-AS-UNITS"), 13), _set_text([], 14)],
    ], 401) + _interchange([
        [_set_text(_defects("P-N002-NDC-HYPHENS", "P-S003-EMPTY-SEGMENT"), 15)],
        [_set_text(_defects("P-U011-JZ-PART-VIAL"), 16), _set_text(_defects("P-C007-ICD9"), 17),
         _set_text(_fillers(5, 3), 21)],
    ], 402))


def test_small_sets_go_to_a_worker_together_and_come_out_the_same(tmp_path, monkeypatch, grouped):
    """Consecutive small sets of one functional group are one job (a file of one-claim sets took
    5x the time of one job when each set was a job): the outputs are still those of one job, GE01
    counting the sets that went out, and no job crosses a GS or an ISA."""
    envelopes = _envelopes(tmp_path / "envelopes.837")
    generated = tmp_path / "generated.837"
    GENERATE.generate(120, generated, per_transaction=4)
    files = assert_same_as_one_job(tmp_path, monkeypatch, grouped, [envelopes, generated], by_sets_expected=2)
    assert max(grouped["jobs"]) > 1 and len(grouped["jobs"]) > 6, grouped["jobs"]
    assert sum(grouped["jobs"]) == 11 + 30
    corrected = files["envelopes.corrected.837"].decode("latin-1")
    assert corrected.count("ST*837*") == 8  # 12, 14 and 17 have nothing going out
    assert "GE*4*" in corrected and "GE*5*" not in corrected  # (the first group: 4 of its 5 sets)
    assert grouped["here"] == 0
    assert json.loads(files["generated.report.json"])["summary"]["claims"] == 120


def test_a_patients_doses_within_a_job_of_small_sets_are_exact_and_across_jobs_checked_again(
        tmp_path, monkeypatch, grouped):
    # As the test above for one set a job: WINDOW-A and WINDOW-B are now sets of one job, whose own
    # history holds both; CYCLE-B and DUP-2, in the next file, are scrubbed again in the main process.
    inputs = _patients_in_two_files(tmp_path)
    monkeypatch.setattr(by_sets, "GROUP_BYTES", 1 << 20)
    files = assert_same_as_one_job(tmp_path, monkeypatch, grouped, inputs, by_sets_expected=2)
    assert grouped["jobs"] == [3, 2]  # (one job a file)
    assert grouped["here"] == 1
    _assert_found_with_the_earlier_claims(files)


def test_an_envelope_error_stops_the_input_before_any_output_as_with_one_job(tmp_path, monkeypatch, by_set):
    text = _interchange([[_set_text(_fillers(0, 3), 1), _set_text(_fillers(3, 3), 2)]], 501)
    path = _write(tmp_path / "broken.837", text.replace("GE*2*5010~", "GE*2*9999~"))
    code, output, files = _cli(tmp_path, monkeypatch, [path], 2)
    assert code == 3 and "GE02 '9999' does not match GS06" in output and not files
    assert (code, output) == _cli(tmp_path, monkeypatch, [path], 1)[:2]
    assert by_set["here"] == 0


def test_a_control_number_used_twice_in_a_group_is_scrubbed_the_usual_way(tmp_path, monkeypatch, by_set):
    path = _write(tmp_path / "twice.837", _interchange([[_set_text(_fillers(0, 3), 7), _set_text(_fillers(3, 3), 7)]],
                                                       601))
    plan = set_scan.scan(io.BytesIO(path.read_bytes()), 1 << 40)
    assert plan is not None and by_sets.control_numbers_repeat(plan)
    assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path], by_sets_expected=0)
    assert by_set["inputs"] == 0


@pytest.mark.parametrize("per_set", [20, 5], ids=["one-set", "sets-over-the-largest"])
def test_a_file_of_one_set_or_of_too_large_sets_is_checked_claim_by_claim(tmp_path, monkeypatch, by_set, per_set):
    # (when it is not cut into chunks: by default it is, test_chunks.py)
    monkeypatch.setenv(pipeline.CHUNKS_ENV, "0")
    handed = []
    queue = parallel.OrderedChecks.claim
    monkeypatch.setattr(parallel.OrderedChecks, "claim", lambda self, *a: (handed.append(1), queue(self, *a)))
    monkeypatch.setattr(by_sets, "LARGEST_SET", 1000 if per_set == 5 else by_sets.LARGEST_SET)  # 5 claims: ~2 KB
    path = tmp_path / "one.837"
    GENERATE.generate(20, path, per_transaction=per_set)
    assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path], by_sets_expected=0)
    assert by_set["inputs"] == 0 and handed


class _KillOnSplice(JsonReport):
    """Kills a worker (as the OOM killer would) when the first set is spliced."""

    workers: ClassVar[Workers | None] = None
    killed: ClassVar[list[int]] = []

    def splice(self, fragment: str) -> None:
        if not self.killed and self.workers is not None:
            victim = self.workers.processes()[0]
            victim.kill()
            victim.join(10)
            self.killed.append(victim.pid)
        super().splice(fragment)


def _scrub_into(path: Path, run: RunContext, report_class=JsonReport) -> tuple[bytes, str, str, dict]:
    corrected, report, rows = io.BytesIO(), io.StringIO(), io.StringIO()
    with path.open("rb") as source:
        summary = scrub_stream(source, load_rules(), [ClaimFileWriter(corrected), report_class(report, "x", {}),
                                                      CsvReport(rows, "x")], run=run)
    return corrected.getvalue(), report.getvalue(), rows.getvalue(), summary.as_dict()


@pytest.mark.parametrize(("per_set", "group_bytes"), [(10, 0), (5, 8_000)], ids=["a-set-a-job", "small-sets-a-job"])
def test_a_killed_worker_loses_no_set(tmp_path, monkeypatch, caplog, grouped, per_set, group_bytes):
    path = tmp_path / "generated.837"
    GENERATE.generate(160, path, per_transaction=per_set)
    monkeypatch.setattr(by_sets, "GROUP_BYTES", group_bytes)
    assert_a_killed_worker_loses_nothing(path, monkeypatch, caplog)
    assert grouped["inputs"] == 1 and grouped["here"] > 0
    assert (max(grouped["jobs"]) > 1) == bool(group_bytes)


def assert_a_killed_worker_loses_nothing(path: Path, monkeypatch, caplog) -> None:
    """With two jobs, a worker killed at the first splice: the outputs are those of one job, with
    one warning."""
    expected = _scrub_into(path, RunContext.new(TODAY))
    with Workers(2) as workers:
        monkeypatch.setattr(_KillOnSplice, "workers", workers)
        monkeypatch.setattr(_KillOnSplice, "killed", [])
        with caplog.at_level(logging.WARNING, logger="scrubber"):
            got = _scrub_into(path, RunContext.new(TODAY, workers), _KillOnSplice)
    assert _KillOnSplice.killed, "no worker was killed: the test proves nothing"
    assert got == expected
    assert caplog.text.count("worker process stopped") == 1


def test_regression_the_main_process_held_the_sets_in_flight_whole(tmp_path, monkeypatch, by_set):
    # Each set's bytes went to its worker through the pool's pipe and stayed in the main process
    # until the set was spliced, and its rendered parts and recorded doses came back the same way
    # and waited there, unpickled, for their turn: up to 30 MiB for sets of 5,000 claims. Now what
    # crosses the pipe is a few KB whatever the set's size, and the sets' files are gone at the end.
    import tempfile
    from multiprocessing.reduction import ForkingPickler

    crossed: list[int] = []
    dumps, loads = ForkingPickler.dumps, ForkingPickler.loads

    def counted_dumps(obj, protocol=None):
        data = dumps(obj, protocol)
        crossed.append(len(data))
        return data

    def counted_loads(data, /, **kwargs):
        crossed.append(len(data))
        return loads(data, **kwargs)

    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    path = tmp_path / "generated.837"
    GENERATE.generate(1200, path, per_transaction=300)
    assert path.stat().st_size / 4 > 100_000  # a set's bytes
    expected = _scrub_into(path, RunContext.new(TODAY))
    seen_on_disk: list[str] = []

    class Watching(JsonReport):
        def splice(self, fragment: str) -> None:
            seen_on_disk.extend(p.name for p in spool.glob("scrubber-sets-*/*"))
            super().splice(fragment)

    monkeypatch.setattr(ForkingPickler, "dumps", classmethod(lambda cls, obj, protocol=None: counted_dumps(obj)))
    monkeypatch.setattr(ForkingPickler, "loads", staticmethod(counted_loads))
    with Workers(2) as workers:
        got = _scrub_into(path, RunContext.new(TODAY, workers), Watching)
    assert by_set["inputs"] == 1 and by_set["here"] == 0
    assert got == expected
    assert seen_on_disk, "no set was on disk while spliced: the test looked in the wrong place"
    assert crossed and max(crossed) < 16_000, f"{max(crossed)} bytes crossed the pipe at once"
    assert list(spool.iterdir()) == [], "the sets' files were left behind"


def test_the_envelope_pass_raises_what_pass_one_raises(tmp_path):
    # The IEA left out: the envelope reader's error, with the offset of the end of the last segment.
    text = _interchange([[_set_text(_fillers(0, 2), 1), _set_text(_fillers(2, 2), 2)]], 701)
    data = text[:text.rindex("IEA*")].encode("latin-1")
    plan = set_scan.scan(io.BytesIO(data), 1 << 40)
    assert plan is not None
    with pytest.raises(InputError) as by_envelope:
        list(by_sets._EnvelopePass(plan, "compiled"))
    reader = SegmentReader(io.BytesIO(data))
    with pytest.raises(InputError) as by_pass1:
        list(EnvelopeReader(reader, reader.delimiters))
    assert by_envelope.value.as_dict() == by_pass1.value.as_dict()


def test_progress_moves_set_by_set(tmp_path, by_set):
    path = tmp_path / "generated.837"
    GENERATE.generate(60, path, per_transaction=10)
    seen: list[tuple[int, int]] = []
    with path.open("rb") as source, Workers(2) as workers:
        scrub_stream(source, load_rules(), [JsonReport(io.StringIO(), "x", {})], progress=lambda *a: seen.append(a),
                     run=RunContext.new(TODAY, workers))
    assert by_set["inputs"] == 1
    assert [claims for _, claims in seen] == [10, 20, 30, 40, 50, 60]
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and seen[-1][0] <= path.stat().st_size


def test_progress_of_one_job_gives_pass_one_its_share_of_the_time(tmp_path):
    # Pass 1 was shown as 85% of the scrub (pyx12's walker's share): with the compiled validator
    # the bar stood near the end while the claims were checked. Now pass 1 ends at its share.
    path = tmp_path / "generated.837"
    GENERATE.generate(600, path, per_transaction=20)
    seen: list[tuple[int, int]] = []
    with path.open("rb") as source:
        scrub_stream(source, load_rules(), [JsonReport(io.StringIO(), "x", {})], progress=lambda *a: seen.append(a))
    size = path.stat().st_size
    in_pass1 = [done for done, claims in seen if claims == 0]
    assert in_pass1 and max(in_pass1) <= 0.3 * size
    assert seen[-1][0] > 0.9 * size and [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_sets_too_large_to_hold_are_read_twice_alike(tmp_path, monkeypatch, by_set):
    # A set over KEEP_SEGMENTS is tokenized again for pass 2 rather than held: the same outputs.
    monkeypatch.setattr(by_sets, "KEEP_SEGMENTS", 0)
    path = tmp_path / "generated.837"
    GENERATE.generate(90, path, per_transaction=30)
    assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])


def test_the_run_history_answers_for_many_patients_at_once():
    # What splicing asks of the run's history for a whole set: whether any of its patients has
    # doses (more than SQLite takes in one statement), and the set's doses in one insert.
    from decimal import Decimal

    from scrubber.rules.history import Dose, RunHistory

    history = RunHistory()
    try:
        many = [("P", str(n)) for n in range(1200)]
        assert not history.knows_any(many)
        dose = Dose("belinostat", "J9032", dt.date(2026, 11, 2), Decimal(150), "C-1")
        history.record_all([(("P", "1100"), [dose]), (("P", "7"), []), (("P", "1100"), [dose])])
        assert history.knows_any(many) and not history.knows_any(many[:1000])
        assert history.doses(("P", "1100")) == [dose, dose] and history.doses(("P", "7")) == []
    finally:
        history.close()


def test_a_parts_history_is_taken_by_the_run_as_stored_unless_it_asked_for_a_patient_the_run_has():
    # A worker's history of one set or file crosses to the main process as keys and rows (no patient
    # hashed again, no dose rebuilt there): what the run then answers must be what the part recorded.
    import pickle
    from decimal import Decimal

    from scrubber.rules.history import Dose, LocalHistory, RunHistory

    first = Dose("belinostat", "J9032", dt.date(2026, 11, 2), Decimal("150.5"), "C-1", "JW")
    second = Dose("belinostat", "J9032", dt.date(2026, 11, 3), Decimal(20), "C-2")
    part = LocalHistory()
    run = RunHistory()
    try:
        assert part.doses(("P", "1")) == []  # asked for: its findings depend on the run having none
        part.record(("P", "1"), [first])
        part.record(("P", "2"), [second])
        part.record(("P", "3"), [])
        handed = pickle.loads(pickle.dumps(part.part()))
        assert run.take_part(handed)
        assert run.doses(("P", "1")) == [first] and run.doses(("P", "2")) == [second]
        assert run.doses(("P", "3")) == []
        # The same part again: patient P 1, whom it asked for, now has doses in the run.
        assert not run.take_part(handed)
        assert run.doses(("P", "2")) == [second]  # nothing recorded by a refused part
    finally:
        part.close()
        run.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process's memory from /proc")
def test_regression_the_run_historys_page_cache_grew_the_process_by_4_mib():
    # SQLite's page cache (4 MiB) filled as the history grew: the main process of a --jobs 2 run of
    # one set peaked 4 MiB higher at 100,000 claims than at 10,000 (the history is the one thing
    # there that grows with the claims). Recording 98,000 more doses now leaves the memory where it
    # was. (The resident memory, not the peak: a peak reached while importing would hide the growth.)
    import subprocess
    import sys

    script = """
import datetime as dt
from decimal import Decimal
from scrubber.rules.history import Dose, RunHistory
def resident():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
history = RunHistory()
day = dt.date(2026, 11, 2)
def record(first, last):
    for n in range(first, last):
        history.record(("P", str(n)), [Dose("belinostat", "J9032", day, Decimal(150), f"C{n}")])
    history.doses(("P", "1"))  # (what is recorded is inserted before a query)
record(0, 2000)
before = resident()
record(2000, 100_000)
print(resident() - before)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    grown = float(done.stdout.strip())
    assert grown < 2, f"the process grew by {grown:.1f} MiB"


def test_a_sink_that_changes_what_it_does_with_claims_gets_every_claim(tmp_path, by_set):
    # A library caller's JsonReport that also counts claims: its parts would be made by JsonReport
    # and its own claim() never run, so the input is scrubbed claim by claim.
    class Counting(JsonReport):
        seen = 0

        def claim(self, item) -> None:
            Counting.seen += 1
            super().claim(item)

    path = tmp_path / "generated.837"
    GENERATE.generate(40, path, per_transaction=10)
    with path.open("rb") as source, Workers(2) as workers:
        scrub_stream(source, load_rules(), [Counting(io.StringIO(), "x", {})], run=RunContext.new(TODAY, workers))
    assert Counting.seen == 40 and by_set["inputs"] == 0


def _mutant(segments: list[bytes], rng) -> bytes:
    """A file of several sets with one to three segments deleted, doubled, swapped, cut or changed."""
    segments = list(segments)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(1, len(segments) - 1)
        change = rng.choice(["delete", "double", "swap", "byte", "cut"])
        if change == "delete":
            del segments[i]
        elif change == "double":
            segments.insert(i, segments[i])
        elif change == "swap":
            segments[i], segments[i + 1] = segments[i + 1], segments[i]
        elif change == "byte" and segments[i]:
            j = rng.randrange(len(segments[i]))
            segments[i] = segments[i][:j] + bytes([rng.choice(b"*:~X0 1")]) + segments[i][j + 1:]
        elif change == "cut":
            segments[i] = segments[i][:rng.randrange(len(segments[i]) + 1)]
    return b"~\n".join(segments)


def _outputs(data: bytes, run: RunContext):
    corrected, report, rows = io.BytesIO(), io.StringIO(), io.StringIO()
    try:
        summary = scrub_stream(io.BytesIO(data), load_rules(), [ClaimFileWriter(corrected), JsonReport(report, "x", {}),
                                                                CsvReport(rows, "x")], run=run)
    except InputError as exc:
        return exc.as_dict()
    return corrected.getvalue(), report.getvalue(), rows.getvalue(), summary.as_dict(), summary.errors


def test_mutated_files_of_several_sets_come_out_the_same_by_sets(tmp_path, by_set):
    # The validator's state runs across sets (HL and LX counts, the walk, control numbers): broken
    # sets next to good ones must be judged by sets as the whole file's validation judges them.
    # (450 mutants of this kind, seeds 1 and 2 of the same generator, differed in nothing.)
    path = tmp_path / "generated.837"
    GENERATE.generate(24, path, per_transaction=4)
    assert_mutants_come_out_the_same(path.read_bytes().split(b"~\n"), seed=11, count=40)
    assert by_set["inputs"] >= 30


def assert_mutants_come_out_the_same(segments: list[bytes], seed: int, count: int) -> None:
    """Each of `count` mutants of a file's segments (_mutant) comes out with two jobs as with one."""
    import random

    rng = random.Random(seed)
    with Workers(2) as workers:
        for number in range(count):
            data = _mutant(segments, rng)
            one = _outputs(data, RunContext.new(TODAY))
            assert _outputs(data, RunContext.new(TODAY, workers)) == one, f"mutant {number} differs"


@pytest.mark.parametrize("options", [["--no-fix"], ["--unsafe-fixes", "--redact"], ["-q"], ["--format", "json"]],
                         ids=["no-fix", "unsafe-fixes-redacted", "quiet", "json-summary"])
def test_the_scrub_options_reach_the_workers(tmp_path, monkeypatch, by_set, options):
    path = _write(tmp_path / "options.837", _interchange([[
        _set_text(_defects("P-U002-FRACTION", "P-U003-MG-AS-UNITS", "P-U004-DOSE-MISMATCH"), 21),
        _set_text(_defects("P-N002-NDC-HYPHENS", "P-D003-Z51-ONLY", "P-U001-ZERO-UNITS"), 22),
    ]], 801))
    assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path], options=options)


def test_the_main_process_splices_with_its_heap_frozen_and_thaws_it_after(tmp_path, by_set):
    # The doses read back at each splice make many objects: the collections they set off walked
    # the rule set and the tables every time (0.03 to 0.06 s at 10,000 claims; 0.01 s frozen).
    import gc

    frozen_at_splice: list[int] = []

    class Watching(JsonReport):
        def splice(self, fragment: str) -> None:
            frozen_at_splice.append(gc.get_freeze_count())
            super().splice(fragment)

    path = tmp_path / "generated.837"
    GENERATE.generate(40, path, per_transaction=10)
    expected = _scrub_into(path, RunContext.new(TODAY))
    with Workers(2) as workers:
        got = _scrub_into(path, RunContext.new(TODAY, workers), Watching)
    assert by_set["inputs"] == 1 and len(frozen_at_splice) == 4
    assert min(frozen_at_splice) > 10_000
    assert gc.get_freeze_count() == 0
    assert got == expected


def test_scrubbing_collects_the_young_and_middle_generations_seldom():
    """A worker holds its set's segments for both passes: a middle-generation collection would
    walk every one of them again (pipeline.fewer_collections). The thresholds come back after."""
    before = gc.get_threshold()
    with pipeline.fewer_collections():
        young, middle, _ = gc.get_threshold()
        assert young >= 10_000 and middle >= 100
    assert gc.get_threshold() == before


def test_a_set_past_the_error_limit_comes_out_the_same_by_sets(tmp_path, monkeypatch, by_set):
    """Its worker finds the set's errors and rejects every claim of it, as one job does; the sets
    around it go out."""
    from test_error_flood import flooded

    from scrubber.x12 import structural

    path = tmp_path / "generated.837"
    GENERATE.generate(12, path, per_transaction=4)
    data = path.read_bytes()
    second = data.index(b"ST*837*", data.index(b"ST*837*") + 1)
    path.write_bytes(data[:second] + flooded(data[second:], b"", structural.SET_ERROR_LIMIT + 1))
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])
    report = json.loads(files["generated.report.json"])
    assert [c["disposition"] for c in report["claims"]].count("rejected") == 4
    assert [e["code"] for e in report["errors"]].count("guide.too_many_errors") == 1
    assert by_set["here"] == 0  # (scrubbed in the workers)
