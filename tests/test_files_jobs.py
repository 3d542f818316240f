"""Several small inputs with `--jobs` > 1: each scrubbed whole in a worker, ahead of the one being
written (output/by_files.py), and the outputs those of one job."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, TODAY, corpus_files
from test_jobs import GENERATE, scrub_cli, small_inputs_in_parallel  # noqa: F401 (a fixture)

from scrubber import RunContext, load_rules
from scrubber.output import by_files
from scrubber.output.by_files import FileJob, FilesAhead, small_file
from scrubber.output.parallel import Workers
from scrubber.rules.engine import FixMode

SMALL_FILE = by_files.SMALL_FILE  # (tests/test_jobs.py's fixture turns whole files off)


@pytest.fixture
def files_ahead(monkeypatch, small_inputs_in_parallel):  # noqa: F811
    """What became of each input handed to a worker whole: sent (its bytes), and exact (its outputs kept)."""
    monkeypatch.setattr(by_files, "SMALL_FILE", SMALL_FILE)
    seen = {"sent": 0, "exact": 0}
    take = FilesAhead.take

    def counted(self, index):
        data, done = take(self, index)
        seen["sent"] += data is not None
        seen["exact"] += done is not None
        return data, done

    monkeypatch.setattr(FilesAhead, "take", counted)
    return seen


def _generated(folder: Path, files: int, claims: int) -> list[Path]:
    """Files of different claims and patients (bench/generate.py --first)."""
    folder.mkdir()
    paths = []
    for k in range(files):
        path = folder / f"batch{k:02d}.837"
        GENERATE.generate(claims, path, per_transaction=claims, first=k * claims)
        paths.append(path)
    return paths


def assert_same_as_one_job(tmp_path, monkeypatch, seen, inputs: list[Path]) -> dict[str, bytes]:
    code, text, files = scrub_cli(tmp_path, monkeypatch, inputs, 1)
    assert seen["sent"] == 0
    other_code, other_text, other_files = scrub_cli(tmp_path, monkeypatch, inputs, 2)
    assert seen["sent"] > 0, "no input went to a worker whole: nothing was compared"
    assert sorted(other_files) == sorted(files)
    for name, data in files.items():
        assert other_files[name] == data, f"{name} differs from --jobs 1"
    assert (other_code, other_text) == (code, text)
    return files


def test_small_files_of_different_patients_are_scrubbed_whole_in_the_workers(tmp_path, monkeypatch, files_ahead):
    inputs = _generated(tmp_path / "in", 6, 30)
    assert_same_as_one_job(tmp_path, monkeypatch, files_ahead, inputs)
    assert files_ahead == {"sent": 6, "exact": 6}


def test_a_patients_claims_in_an_earlier_file_count_against_a_later_one(tmp_path, monkeypatch, files_ahead):
    # The samples share patients: U015 (the same drug line on an earlier claim of the run) fires on
    # the later files. Their workers did not know the earlier files: they are scrubbed again here.
    files = assert_same_as_one_job(tmp_path, monkeypatch, files_ahead, sorted(SAMPLES.glob("*.837")))
    assert 0 < files_ahead["exact"] < files_ahead["sent"] == 6
    rules = {f["rule"] for c in json.loads(files["defects_837i.report.json"])["claims"] for f in c["findings"]}
    assert "U015" in rules


def test_the_corpus_and_fuzzing_finds_come_out_the_same_whole_in_the_workers(tmp_path, monkeypatch, files_ahead):
    # The files that cannot be read fail alike (their workers give up; the main process says why).
    inputs = corpus_files() + sorted((ROOT / "tests" / "fuzz" / "crashes").glob("*.837"))
    assert_same_as_one_job(tmp_path, monkeypatch, files_ahead, inputs)
    assert files_ahead["exact"] > 10


def test_large_files_and_fifos_are_not_sent_whole(tmp_path, monkeypatch):
    small = _generated(tmp_path / "in", 1, 5)[0]
    assert small_file(small) == small.read_bytes()
    monkeypatch.setattr(by_files, "SMALL_FILE", small.stat().st_size - 1)
    assert small_file(small) is None
    fifo = tmp_path / "pipe.837"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert small_file(fifo) is None  # at once: no writer is waited for
    assert time.monotonic() - started < 5
    assert small_file(tmp_path / "gone.837") is None


def _dies_in_the_middle_of_its_result() -> None:
    """In a worker: write the start of a result message of 1 MiB into the pool's result pipe (its
    length, then 100 bytes of it), then die, as a worker killed while it sent a file's outputs."""
    import struct
    import sys

    frame = sys._getframe()
    while "result_queue" not in frame.f_locals:  # (concurrent.futures.process._process_worker's)
        frame = frame.f_back
    writer = frame.f_locals["result_queue"]._writer
    os.write(writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
    os._exit(1)


def test_a_worker_dead_in_the_middle_of_a_result_breaks_the_pool_rather_than_hang_the_run():
    # The pool's thread waited for the rest of the message for good (CPython 3.11), and the run
    # with it: test_a_killed_worker_loses_no_file hung so once in a full run of the suite.
    from concurrent.futures.process import BrokenProcessPool

    with Workers(2) as workers:
        future = workers.pool_for(load_rules()).submit(_dies_in_the_middle_of_its_result)
        started = time.monotonic()
        with pytest.raises(BrokenProcessPool):
            workers.result(future)
        assert time.monotonic() - started < 30
        assert workers.current_pool() is None  # abandoned: the next input gets a new pool


def test_a_killed_worker_loses_no_file(tmp_path):
    paths = _generated(tmp_path / "in", 6, 1500)
    rules = load_rules()
    run = RunContext.new(TODAY)

    def job_for(index: int, data: bytes) -> FileJob:
        return FileJob(str(paths[index]), data, ("corrected", "json"), {}, False, FixMode.SAFE, TODAY, "compiled")

    with Workers(2) as workers:
        ahead = FilesAhead(workers, rules, paths, run, job_for)
        outcomes = [ahead.take(0)]
        for process in workers.processes():
            process.kill()
        outcomes += [ahead.take(index) for index in range(1, len(paths))]
        ahead.abandon()
    run.close()
    for path, (data, _) in zip(paths, outcomes, strict=True):
        assert data == path.read_bytes(), "a file's bytes were lost: the main process could not scrub it"
    assert outcomes[0][1] is not None and outcomes[0][1].summary.claims == 1500
    assert any(done is None for _, done in outcomes[1:]), "no file was lost with the worker: the test proves nothing"
