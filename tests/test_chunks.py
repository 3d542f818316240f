"""Parallel scrubbing of a large transaction set in chunks (output/by_chunks.py): chunks scrubbed
in workers, after the loops above them are read again, and spliced give the outputs of one job,
byte for byte, whatever the structural errors of the set and wherever a patient's claims fall."""

from __future__ import annotations

import io
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, TODAY, corpus_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_jobs import GENERATE, TOOL, _claim, _fillers, _renamed, freeze_report_clock
from test_sets import (
    _cli,
    _defects,
    _findings,
    _interchange,
    _outputs,
    _scrub_into,
    _set_text,
    _write,
    assert_a_killed_worker_loses_nothing,
    assert_mutants_come_out_the_same,
)

from scrubber import JsonReport, RunContext, load_rules, scrub_stream
from scrubber.output import by_chunks, by_files, by_sets, parallel, pipeline
from scrubber.output.parallel import Workers
from scrubber.rules.engine import FixMode


@pytest.fixture
def by_chunk(monkeypatch):
    """Workers for the tests' small files, every file cut into chunks (sets too: by_sets.py would
    take a file of several), each chunk as small as the cuts allow (one subscriber loop); and a count
    of the inputs scrubbed in chunks, of the chunks cut and of those scrubbed again here."""
    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    monkeypatch.setattr(by_files, "SMALL_FILE", -1)
    monkeypatch.setattr(by_sets, "plan_for", lambda *args, **kwargs: None)
    monkeypatch.setattr(by_chunks, "CHUNK_BYTES", 0)
    monkeypatch.setattr(by_chunks, "_WRITE_EVERY", 7)  # a chunk's text written in several pieces
    freeze_report_clock(monkeypatch)
    seen = {"inputs": 0, "chunks": 0, "here": 0}
    scrub_by_chunks, scrub_chunk = by_chunks.scrub_by_chunks, by_chunks.scrub_chunk
    new_job = by_chunks._Chunked._new_job
    main = os.getpid()

    def counted_inputs(*args, **kwargs):
        seen["inputs"] += 1
        return scrub_by_chunks(*args, **kwargs)

    def counted_jobs(*args, **kwargs):
        seen["chunks"] += 1
        return new_job(*args, **kwargs)

    def counted_here(*args, **kwargs):
        seen["here"] += os.getpid() == main
        return scrub_chunk(*args, **kwargs)

    monkeypatch.setattr(by_chunks, "scrub_by_chunks", counted_inputs)
    monkeypatch.setattr(by_chunks._Chunked, "_new_job", counted_jobs)
    monkeypatch.setattr(by_chunks, "scrub_chunk", counted_here)
    return seen


def assert_same_in_chunks(tmp_path, monkeypatch, seen, inputs: list[Path], options=()) -> dict[str, bytes]:
    """The CLI's outputs, linter lines, counts and exit code with two jobs, in chunks, are those of one."""
    code, text, files = _cli(tmp_path, monkeypatch, inputs, 1, options=options)
    assert seen["inputs"] == 0
    other_code, other_text, other_files = _cli(tmp_path, monkeypatch, inputs, 2, options=options)
    assert seen["inputs"] >= 1 and seen["chunks"] > seen["inputs"], "nothing was cut: nothing was compared"
    assert sorted(other_files) == sorted(files)
    for name, data in files.items():
        assert other_files[name] == data, f"{name} differs from --jobs 1"
    assert (other_code, other_text) == (code, text)
    return files


def test_one_large_set_comes_out_the_same_in_chunks(tmp_path, monkeypatch, by_chunk):
    path = tmp_path / "generated.837"
    GENERATE.generate(240, path, per_transaction=240)
    files = assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, [path])
    assert json.loads(files["generated.report.json"])["summary"]["claims"] == 240
    assert by_chunk["chunks"] >= 100  # a chunk a subscriber loop, or nearly
    assert by_chunk["here"] == 0  # no patient's doses cross chunks, every error found in time: all spliced


def test_the_samples_corpus_and_fuzzing_finds_come_out_the_same_in_chunks(tmp_path, monkeypatch, by_chunk):
    # Rejected claims between kept ones (HL loops dropped and renumbered across chunks), broken
    # hierarchies, claims in the header or in a billing provider loop, other separators.
    crashes = sorted((ROOT / "tests" / "fuzz" / "crashes").glob("*.837"))
    inputs = [*sorted(SAMPLES.glob("*.837")), *corpus_files(), *crashes]
    assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, inputs)
    assert by_chunk["inputs"] >= 90


def test_a_patients_doses_across_chunks_are_checked_against_the_earlier_chunks(tmp_path, monkeypatch, by_chunk):
    # Each patient's first claim early in the set, the second many chunks later: those chunks are
    # scrubbed again here, against the run's history, and the findings that need the earlier claim
    # come out as with one job.
    path = _write(tmp_path / "patients.837", _interchange([[_set_text([
        _claim("P-U008-WINDOW-A"), _claim("P-U009-CYCLE-A"), _renamed("P-OK-MEDICARE-JZ", "DUP-1", "DUP0001"),
        *_fillers(0, 6), _claim("P-U008-WINDOW-B"), *_fillers(6, 4), _claim("P-U009-CYCLE-B"),
        _renamed("P-OK-MEDICARE-JZ", "DUP-2", "DUP0001"), *_fillers(10, 3)], 1)]], 901))
    files = assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, [path])
    found = _findings(files, "patients.report.json")
    assert "U008" in found["P-U008-WINDOW-B"]
    assert "U009" in found["P-U009-CYCLE-B"]
    assert "U015" in found["DUP-2"] and "U015" not in found["DUP-1"]
    assert by_chunk["here"] == 3  # the chunks of WINDOW-B, CYCLE-B and DUP-2; the rest were spliced


def test_chunks_handed_other_errors_than_their_sets_are_scrubbed_again_here(tmp_path, monkeypatch, by_chunk):
    # A chunk is handed out while pass 1 reads on, with the errors found so far. The last claim's
    # CLM cut to "C": the guide's errors for its segments are reported at the SE (the id "C" is
    # invalid, and the walk places none of them). Every chunk handed out before was scrubbed
    # without them, and is scrubbed again here. (They are the last claim's, a claim with no CLM:
    # the 59 others go out, as with one job.)
    path = tmp_path / "generated.837"
    GENERATE.generate(60, path, per_transaction=60)
    text = path.read_text(encoding="latin-1")
    last = text.rindex("\nCLM*")
    path.write_text(text[:last] + "\nC*" + text[last + 5:], encoding="latin-1")
    files = assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, [path])
    summary = json.loads(files["generated.report.json"])["summary"]
    assert (summary["claims"], summary["accepted"], summary["rejected"]) == (60, 59, 1)
    # (the first chunks go out before the SE whatever the workers' pace: `ahead` of them at least)
    assert by_chunk["here"] >= by_chunks.AHEAD


def test_mutated_files_of_one_set_come_out_the_same_in_chunks(by_chunk):
    # Segments deleted, doubled, swapped, cut or changed in one set: errors reported a segment or
    # a loop late, loops misplaced, claims outside their loops. Each mutant's outputs in chunks are
    # those of one job. (1,050 mutants of this kind, seeds 1 to 6 of the same generator, with chunks
    # of one subscriber loop, 700 and 1,500 bytes, differed in nothing once a chunk handed errors
    # other than its set's was scrubbed again here: 13 of seed 1's first 150 were.)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.837"
        GENERATE.generate(30, path, per_transaction=30)
        segments = path.read_bytes().split(b"~\n")
    assert_mutants_come_out_the_same(segments, seed=1, count=60)
    assert by_chunk["inputs"] >= 40 and by_chunk["chunks"] > 10 * by_chunk["inputs"]


def test_a_killed_worker_loses_no_chunk(tmp_path, monkeypatch, caplog, by_chunk):
    path = tmp_path / "generated.837"
    GENERATE.generate(160, path, per_transaction=160)
    assert_a_killed_worker_loses_nothing(path, monkeypatch, caplog)
    assert by_chunk["inputs"] == 1 and by_chunk["here"] > 0


def test_a_file_level_error_after_chunks_went_out_leaves_no_output_and_no_chunk(tmp_path, monkeypatch, by_chunk):
    # The IEA left out: pass 1 finds it at the end, after chunks went to the workers. Nothing is
    # written, as with one job, and the chunks' files are gone.
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    path = tmp_path / "generated.837"
    GENERATE.generate(80, path, per_transaction=80)
    data = path.read_bytes()
    data = data[:data.rindex(b"IEA*")]
    with Workers(2) as workers:
        one = _outputs(data, RunContext.new(TODAY))
        two = _outputs(data, RunContext.new(TODAY, workers))
    assert two == one and one["code"] == "envelope.unclosed"
    assert by_chunk["chunks"] > 10
    assert list(spool.iterdir()) == [], "the chunks' files were left behind"


def test_a_file_of_one_set_is_cut_into_chunks_by_default(tmp_path, monkeypatch):
    # Without the fixture's forcing: the real plan (a single set: not by sets), chunks of their size.
    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    monkeypatch.setattr(by_chunks, "CHUNK_BYTES", 4_000)
    cut: list[int] = []  # their sizes, in bytes
    new_job = by_chunks._Chunked._new_job
    monkeypatch.setattr(by_chunks._Chunked, "_new_job",
                        lambda *a, **k: (cut.append(a[5]), new_job(*a, **k))[1])  # (its size)
    path = tmp_path / "one.837"
    GENERATE.generate(60, path, per_transaction=60)
    expected = _scrub_into(path, RunContext.new(TODAY))
    with Workers(2) as workers:
        assert _scrub_into(path, RunContext.new(TODAY, workers)) == expected
    # 60 claims of about 370 bytes: the first chunk a quarter of 4,000 bytes (the workers wait for
    # it), then 4,000 bytes or more, and a quarter again in the last 8,000 bytes of the file.
    assert 1_000 <= cut[0] < 2_000
    assert any(size >= 4_000 for size in cut[1:-1])
    assert all(size < 2_000 for size in cut[-5:-1])
    assert sum(cut) > path.stat().st_size - 400  # (the envelope's segments are in no chunk)


def test_an_output_that_cannot_be_written_in_chunks_sends_the_file_claim_by_claim(tmp_path, monkeypatch):
    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    handed = []
    queue = parallel.OrderedChecks.claim
    monkeypatch.setattr(parallel.OrderedChecks, "claim", lambda self, *a: (handed.append(1), queue(self, *a)))
    path = tmp_path / "one.837"
    GENERATE.generate(20, path, per_transaction=20)

    class SetsOnly(by_chunks.Sink):  # (whole sets or nothing: no chunk_fragments)
        claims = 0

        def claim(self, item) -> None:
            self.claims += 1

    sink = SetsOnly()
    with Workers(2) as workers, path.open("rb") as source:
        scrub_stream(source, load_rules(), [sink], run=RunContext.new(TODAY, workers))
    assert sink.claims == 20 and handed


def test_the_cutter_reads_the_loops_above_a_chunk_as_pass_two_holds_them(monkeypatch):
    # Where a chunk begins, what is read again above it is the set's header and the loops open
    # there, by their positions in the set: the billing provider loop's own segments, not its
    # earlier subscribers'.
    monkeypatch.setattr(by_chunks, "CHUNK_BYTES", 0)
    cut: list[by_chunks.ChunkJob] = []
    text = _interchange([[_set_text(_fillers(0, 3), 1)]], 902)
    data = io.BytesIO(text.encode("latin-1"))

    class Recording(by_chunks._Chunked):
        def _new_job(self, *args):
            job = super()._new_job(*args)
            cut.append(job)
            return job

    with Workers(2) as workers:
        chunked = Recording(data, 0, load_rules(), [], FixMode.SAFE, None, RunContext.new(TODAY, workers),
                            workers, "compiled")
        try:
            chunked._pass1()
        finally:
            workers.abandon()
            chunked.spool.cleanup()
    # Cut before each subscriber loop but the first: a chunk holds a claim at least.
    assert [job.last for job in cut] == [False, False, True]
    first, second, third = cut
    assert first.position == 1 and first.above == []
    assert [job.position for job in cut[1:]] == [job.end for job in cut[:-1]]
    header, provider = second.above
    assert header[0] == 1 and [s.text.split("*")[0] for s in header[1]] == ["BHT", "NM1", "PER", "NM1"]
    assert provider[1][0].text.startswith("HL*1**20*") and provider[0] == header[0] + len(header[1])
    assert provider[0] + len(provider[1]) < first.end  # (the first subscriber loop and claim follow it)
    assert third.above == second.above
    assert third.above[1][1] is provider[1]  # the same loop above each: its segments are not copied


def test_no_cut_is_made_below_loops_too_large_to_read_again_for_every_chunk(tmp_path, monkeypatch, by_chunk):
    # A billing provider loop of 60 segments above 40 claims: each chunk's worker would read them
    # again. Over the limit, the set is one chunk; under it, cut as usual. Either way, one job's outputs.
    path = tmp_path / "provider.837"
    GENERATE.generate(40, path, per_transaction=40)
    text = path.read_text(encoding="latin-1")
    after = text.index("~\n", text.index("HL*1**20*")) + 2
    path.write_text(text[:after] + "REF*G2*PROVIDER01~\n" * 60 + text[after:], encoding="latin-1")
    monkeypatch.setattr(by_chunks, "ABOVE_LIMIT", 60)
    with Workers(2) as workers:
        one = _outputs(path.read_bytes(), RunContext.new(TODAY))
        assert _outputs(path.read_bytes(), RunContext.new(TODAY, workers)) == one
        assert by_chunk["chunks"] == 1
        monkeypatch.setattr(by_chunks, "ABOVE_LIMIT", 80)
        assert _outputs(path.read_bytes(), RunContext.new(TODAY, workers)) == one
        assert by_chunk["chunks"] > 30


def test_progress_moves_chunk_by_chunk_through_pass_one_and_the_splice(tmp_path, by_chunk):
    # A file of one set shows progress as pass 1 cuts it (its share of the bar: pass1_share), then
    # as the chunks are spliced, to the end of the file: never backwards.
    path = tmp_path / "generated.837"
    GENERATE.generate(100, path, per_transaction=100)
    size = path.stat().st_size
    seen: list[tuple[int, int]] = []
    with path.open("rb") as source, Workers(2) as workers:
        scrub_stream(source, load_rules(), [JsonReport(io.StringIO(), "x", {})], progress=lambda *a: seen.append(a),
                     run=RunContext.new(TODAY, workers))
    done = [value for value, _ in seen]
    assert done == sorted(done) and done[-1] > 0.95 * size
    share = pipeline.pass1_share("compiled")
    in_pass1 = [value for value, claims in seen if claims == 0]
    assert len(in_pass1) > 20 and max(in_pass1) <= share * size
    assert len(seen) - len(in_pass1) > 20  # and a step a chunk spliced


def test_a_chunk_too_large_for_a_worker_is_scrubbed_here_straight_into_the_outputs(tmp_path, monkeypatch, by_chunk):
    # A set that cannot be cut (a claim in its billing provider loop) is one chunk: over the size
    # a worker may hold, it is scrubbed here, a claim at a time, rather than rendered whole there.
    path = tmp_path / "generated.837"
    GENERATE.generate(40, path, per_transaction=40)
    text = path.read_text(encoding="latin-1")
    first_subscriber = text.index("HL*2*1*22*")
    claim = text[text.index("CLM*", first_subscriber):text.index("HL*3*", first_subscriber)]
    path.write_text(text[:first_subscriber] + claim + text[first_subscriber:], encoding="latin-1")
    monkeypatch.setattr(by_chunks, "LARGEST_CHUNK", 10_000)
    submitted = []
    submit = ProcessPoolExecutor.submit
    monkeypatch.setattr(ProcessPoolExecutor, "submit", lambda self, fn, *a, **k: (submitted.append(fn),
                                                                                 submit(self, fn, *a, **k))[1])
    with Workers(2) as workers:
        one = _outputs(path.read_bytes(), RunContext.new(TODAY))
        assert _outputs(path.read_bytes(), RunContext.new(TODAY, workers)) == one
    assert by_chunk["chunks"] == 1 and by_chunk["here"] == 1
    assert submitted and by_chunks._chunk_task not in submitted  # (the workers were started, not handed it)
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("options", [["--no-fix"], ["--unsafe-fixes", "--redact"], ["--format", "json"]],
                         ids=["no-fix", "unsafe-fixes-redacted", "json-summary"])
def test_the_scrub_options_reach_the_chunks(tmp_path, monkeypatch, by_chunk, options):
    path = _write(tmp_path / "options.837", _interchange([[_set_text(
        _defects("P-U002-FRACTION", "P-U003-MG-AS-UNITS", "P-U004-DOSE-MISMATCH", "P-N002-NDC-HYPHENS",
                 "P-D003-Z51-ONLY", "P-U001-ZERO-UNITS"), 21)]], 903))
    assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, [path], options=options)


_SAMPLE_CLAIMS = [*TOOL.DEFECTS_837P.claims, *TOOL.CLEAN_837P.claims]


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(picked=st.lists(st.integers(0, len(_SAMPLE_CLAIMS) - 1), min_size=1, max_size=14),
       chunk_bytes=st.sampled_from([0, 600, 2_500]))
def test_any_run_of_sample_claims_in_one_set_comes_out_the_same_in_chunks(by_chunk, monkeypatch, picked,
                                                                          chunk_bytes):
    # Claims of every kind (rejected, fixed, warned, clean; a patient's claims together or apart,
    # the same claim twice) in any order in one set, cut anywhere the cutter may: one job's outputs.
    monkeypatch.setattr(by_chunks, "CHUNK_BYTES", chunk_bytes)
    data = _interchange([[_set_text([_SAMPLE_CLAIMS[i] for i in picked], 1)]], 904).encode("latin-1")
    with Workers(2) as workers:
        assert _outputs(data, RunContext.new(TODAY, workers)) == _outputs(data, RunContext.new(TODAY))
    assert by_chunk["inputs"] > 0


def test_a_set_past_the_error_limit_comes_out_the_same_in_chunks(tmp_path, monkeypatch, by_chunk):
    """The chunks before the flood are handed out with the errors known then: at the set's end
    their errors prove other (the overflow reaches every claim), and they are scrubbed again here,
    so every claim of the set is rejected, as with one job."""
    from test_error_flood import flooded

    from scrubber.x12 import structural

    path = tmp_path / "generated.837"
    GENERATE.generate(12, path, per_transaction=100)
    data = path.read_bytes()
    sixth = data.index(b"~\nCLM*C0000006*")
    path.write_bytes(data[:sixth] + flooded(data[sixth:], b"", structural.SET_ERROR_LIMIT + 1))
    files = assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, [path])
    report = json.loads(files["generated.report.json"])
    assert [c["disposition"] for c in report["claims"]] == ["rejected"] * 12
    assert by_chunk["here"] >= 5  # (the first chunks at least, scrubbed again here)
