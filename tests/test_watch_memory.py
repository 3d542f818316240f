"""A file too large to scrub in the memory a watcher process may use (`--memory-limit`) goes to
error/ with the reason, and the files after it are scrubbed: the out-of-memory killer never picks
the watcher, and a restart never takes the same file again and again (watch/memory.py).

The watchers run in processes of their own: a limit set here would hold for the test run."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, TODAY
from test_jobs import _module
from test_watch import FAST, drop, files, watch

from scrubber import ClaimFileWriter, JsonReport, RunContext, load_rules, scrub_stream
from scrubber.rules import units
from scrubber.watch import EventLog, memory
from scrubber.watch.log import pipeline_notes_in

PATHOLOGICAL = _module("pathological_memory", ROOT / "bench" / "pathological.py")
CLEAN = (SAMPLES / "clean_837p.837").read_bytes()
# A claim of 60,000 service lines (3.8 MB): some 250 to 300 MB to scrub, well under the watcher's
# default limit on any machine it runs on, well over the 256 MiB the tests give it.
LARGE_CLAIM = 60_000


@pytest.fixture(scope="module")
def large_claim() -> bytes:
    return PATHOLOGICAL.build("lines", LARGE_CLAIM).encode("latin-1")


@pytest.mark.parametrize("value, expected", [
    ("auto", "auto"), ("none", None), ("0", None), ("2G", 2 << 30), ("800M", 800 << 20), ("800MiB", 800 << 20),
    ("4096", 4096 << 20), ("1T", 1 << 40), ("300mb", 300 << 20),
])
def test_memory_limits_are_read_as_sizes(value, expected):
    assert memory.parse_limit(value) == expected


@pytest.mark.parametrize("value", ["1.5G", "lots", "-1G", "100M", "2P"])
def test_a_memory_limit_that_is_not_a_size_or_too_small_is_refused(value):
    with pytest.raises(ValueError):
        memory.parse_limit(value)


def test_the_default_shares_three_quarters_of_the_memory_among_the_processes():
    gib = 1 << 30
    assert memory.default_limit(1, 24 * gib) == 18 * gib  # the watcher alone
    assert memory.default_limit(2, 24 * gib) == 6 * gib  # the watcher and two workers
    assert memory.default_limit(8, 2 * gib) == memory.FLOOR  # never less than the floor
    assert memory.default_limit(2, 0) is None  # memory not known: no limit


def test_a_limit_holds_for_the_process_and_its_children(tmp_path):
    code = ("import os, resource\nfrom scrubber.watch import memory\nprint(memory.apply_limit(300 << 20))\n"
            "if os.fork() == 0:\n    print(resource.getrlimit(resource.RLIMIT_DATA)[0]); os._exit(0)\nos.wait()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.split() == [str(300 << 20)] * 2


def test_a_limit_already_set_is_never_raised(tmp_path):
    code = ("import resource\nfrom scrubber.watch import memory\n"
            "resource.setrlimit(resource.RLIMIT_DATA, (400 << 20, resource.RLIM_INFINITY))\n"
            "print(memory.apply_limit(2 << 30))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.split() == [str(400 << 20)]


def test_a_memory_error_in_a_rule_stops_the_scrub_rather_than_holding_the_claim_back(monkeypatch):
    # A rule's bug holds its claim back (unattributed) and the file goes on; running out of memory
    # says nothing of the claim: the scrub stops, and the watcher says why.
    def exhausted(*_args, **_kwargs):
        raise MemoryError

    monkeypatch.setattr(units, "check", exhausted)
    sinks = [ClaimFileWriter(io.BytesIO()), JsonReport(io.StringIO(), "x", {})]
    with pytest.raises(MemoryError):
        scrub_stream(io.BytesIO(CLEAN), load_rules(), sinks, run=RunContext.new(TODAY))


def _watch_in(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`watch`, with the temporary files of the scrub (its spool of sets or chunks) in root/tmp."""
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once", *FAST, *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp)})


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_too_large_for_the_limit_goes_to_error_and_the_next_is_scrubbed(tmp_path, large_claim, jobs):
    drop(tmp_path, "a-large-claim.837", large_claim)
    drop(tmp_path, "b-clean.837", CLEAN)
    done = _watch_in(tmp_path, "--memory-limit", "256M", "--jobs", jobs, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    # The scrub that ran out of memory ran its spool's removal out of memory too: it was left in
    # /tmp (empty), once a test, until its removal was tried again.
    assert not list((tmp_path / "tmp").iterdir())
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    # Every line an event, a worker's death too (it may die rather than raise, as the limit falls).
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert events[0]["event"] == "started" and events[0]["memory_limit"] == "256 MiB per process"
    assert files(tmp_path, "error") == ["a-large-claim.837", "a-large-claim.837.reason.txt"]
    reason = (tmp_path / "error" / "a-large-claim.837.reason.txt").read_text()
    assert "out of memory" in reason and "256 MiB" in reason and "--memory-limit" in reason
    published = [e for e in events if e["event"] == "published"]
    assert [e["file"] for e in published] == ["b-clean.837"] and published[0]["accepted"] == 7


def test_the_same_file_is_scrubbed_under_a_limit_it_fits(tmp_path, large_claim):
    drop(tmp_path, "a-large-claim.837", large_claim)
    done = _watch_in(tmp_path, "--memory-limit", "2G", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert not files(tmp_path, "error")
    assert any(p.endswith("a-large-claim.report.json") for p in files(tmp_path, "outbox"))


def test_a_memory_limit_that_cannot_be_read_stops_the_watcher_before_it_starts(tmp_path):
    done = watch(tmp_path, "--memory-limit", "lots")
    assert done.returncode == 2
    assert "--memory-limit" in done.stderr and "not a size" in done.stderr
    assert not Path(tmp_path, ".scrubber-journal.sqlite").exists()


def test_the_scrub_command_under_a_memory_limit_says_it_ran_out(tmp_path, large_claim):
    # `scrubber scrub` sets no limit of its own; under one set for it (ulimit -d), it says what happened.
    path = tmp_path / "large.837"
    path.write_bytes(large_claim)
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_DATA, (256 << 20, resource.RLIM_INFINITY))\n"
            "from scrubber.cli import cli\ncli.main(sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-c", code, "scrub", str(path), "--out", str(tmp_path / "out"), "-j", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stderr
    assert "out of memory" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_pipeline_s_notes_are_events_of_the_watcher_s_log():
    # A worker that stopped is noted by the pipeline on the "scrubber" logger; in the watcher the
    # note is an event of its log (a JSON line in a JSON log), not a bare line on standard error.
    stream = io.StringIO()
    logger = logging.getLogger("scrubber")
    with pipeline_notes_in(EventLog(stream, "json")):
        assert logger.propagate is False
        logger.warning("scrubber: a worker process stopped (%s); the chunks it had not returned are scrubbed "
                       "again in the main process", "BrokenProcessPool")
    assert logger.propagate is True and not logger.handlers
    [event] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert event["event"] == "worker stopped"
    assert event["detail"].startswith("a worker process stopped (BrokenProcessPool); the chunks")
