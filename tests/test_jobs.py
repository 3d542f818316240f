"""--jobs: claims checked in worker processes give the same outputs, byte for byte, as one job,
and the checks across claims (U008 windows, U009 cycles, U015 duplicates) stay exact across
chunks, transaction sets and files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import io
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES, TODAY, corpus_files, make_a_rule_raise

from scrubber import ClaimFileWriter, JsonReport, RunContext, load_rules, scrub, scrub_stream
from scrubber.cli import cli
from scrubber.output import ack999, by_files, html_report, parallel
from scrubber.output.parallel import Workers
from scrubber.output.sink import Sink

ALL_OUTPUTS = "corrected,rejected,json,html,csv,999,277ca"


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TOOL = _module("make_samples_jobs", ROOT / "tools" / "make_samples.py")
GENERATE = _module("generate_jobs", ROOT / "bench" / "generate.py")


def freeze_report_clock(monkeypatch):
    """Hold still the minute the acknowledgments and the HTML report name (workers forked from this
    process hold it too), so outputs made at different moments compare byte for byte."""
    class _Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 11, 27, 9, 30)

    frozen = types.SimpleNamespace(**{**vars(dt), "datetime": _Frozen})
    for module in (ack999, html_report):
        monkeypatch.setattr(module, "dt", frozen)


@pytest.fixture
def small_inputs_in_parallel(monkeypatch):
    """Workers even for the small files of the tests (the size threshold is for speed only), and
    the time the outputs name held still (the acknowledgments' ISA09-10 and GS04-05, the HTML
    report's "scrubbed" line: they name the minute they are made). Several inputs are not sent to
    the workers whole (output/by_files.py, tests/test_files_jobs.py): their sets or claims are."""
    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    monkeypatch.setattr(by_files, "SMALL_FILE", -1)
    freeze_report_clock(monkeypatch)


def scrub_cli(tmp_path: Path, monkeypatch, inputs: list[Path], jobs: int) -> tuple[int, str, dict[str, bytes]]:
    """One CLI run into its own folder (named relative, so the summary's paths read the same)."""
    where = tmp_path / f"jobs{jobs}"
    where.mkdir()
    monkeypatch.chdir(where)
    result = CliRunner().invoke(cli, ["scrub", *map(str, inputs), "--out", "out", "--outputs", ALL_OUTPUTS,
                                      "--today", TODAY.isoformat(), "--jobs", str(jobs)])
    assert "Traceback" not in result.output
    files = {p.name: p.read_bytes() for p in sorted((where / "out").iterdir())}
    return result.exit_code, result.output, files


def assert_same_for_any_jobs(tmp_path, monkeypatch, inputs: list[Path], jobs=(2, 3)) -> dict[str, bytes]:
    code, summary, files = scrub_cli(tmp_path, monkeypatch, inputs, 1)
    assert files, "the run wrote nothing: nothing was compared"
    handed = []
    queue = parallel.OrderedChecks.claim
    monkeypatch.setattr(parallel.OrderedChecks, "claim", lambda self, *a: (handed.append(1), queue(self, *a)))
    for n in jobs:
        handed.clear()
        other_code, other_summary, other_files = scrub_cli(tmp_path, monkeypatch, inputs, n)
        assert handed, f"--jobs {n} checked no claim in a worker: nothing was compared"
        assert sorted(other_files) == sorted(files)
        for name, data in files.items():
            assert other_files[name] == data, f"--jobs {n}: {name} differs from --jobs 1"
        assert (other_code, other_summary) == (code, summary)
    return files


def test_the_samples_come_out_the_same_with_two_and_three_jobs(tmp_path, monkeypatch, small_inputs_in_parallel):
    assert_same_for_any_jobs(tmp_path, monkeypatch, sorted(SAMPLES.glob("*.837")))


def test_the_corpus_files_come_out_the_same_with_two_jobs(tmp_path, monkeypatch, small_inputs_in_parallel):
    # One run over the whole corpus: the files that cannot be read fail alike, the rest are compared.
    assert_same_for_any_jobs(tmp_path, monkeypatch, corpus_files(), jobs=(2,))


def test_the_fuzzers_hard_cases_come_out_the_same_with_two_jobs(tmp_path, monkeypatch, small_inputs_in_parallel):
    # Leading spaces before a CLM, claims before the first HL, broken and deep hierarchies: the
    # claims a worker reads again from their text must be the claims the main process read.
    assert_same_for_any_jobs(tmp_path, monkeypatch, sorted((ROOT / "tests" / "fuzz" / "crashes").glob("*.837")),
                             jobs=(2,))


def test_regression_an_indented_segment_inside_a_claim_is_read_alike_in_a_worker(tmp_path, monkeypatch,
                                                                                small_inputs_in_parallel):
    # The main process reads " SV1" as SV1 (TransactionReader cleans a segment id of leading
    # spaces); a worker reading the claim again from its text must too, or the line loses its
    # code and units, and with them its findings (U003 here).
    data = (SAMPLES / "defects_837p.837").read_bytes().replace(b"~\nSV1*", b"~\n SV1*")
    path = tmp_path / "indented.837"
    path.write_bytes(data)
    files = assert_same_for_any_jobs(tmp_path, monkeypatch, [path], jobs=(2,))
    claims = {c["claim_id"]: c for c in json.loads(files["indented.report.json"])["claims"]}
    assert "U003" in {f["rule"] for f in claims["P-U003-MG-AS-UNITS"]["findings"]}


def test_a_generated_file_of_many_sets_comes_out_the_same(tmp_path, monkeypatch, small_inputs_in_parallel):
    path = tmp_path / "generated.837"
    GENERATE.generate(150, path, per_transaction=40)
    monkeypatch.setattr(parallel, "BATCH", 7)  # batches that straddle the sets
    files = assert_same_for_any_jobs(tmp_path, monkeypatch, [path])
    assert json.loads(files["generated.report.json"])["summary"]["claims"] == 150


def _renamed(claim_id: str, new_id: str, member: str):
    claim = next(c for c in TOOL.CLEAN_837P.claims + TOOL.DEFECTS_837P.claims if c.claim_id == claim_id)
    return dataclasses.replace(claim, claim_id=new_id, member=member)


def _fillers(start: int, count: int) -> list:
    return [_renamed("P-OK-MEDICARE-JZ", f"FILL-{i:03d}", f"FILL{i:04d}") for i in range(start, start + count)]


def _claim(claim_id: str):
    return next(c for c in TOOL.DEFECTS_837P.claims if c.claim_id == claim_id)


def _render(path: Path, claims: list, control: int) -> Path:
    path.write_text(TOOL.render(TOOL.SampleFile(path.name, "837P", "jobs", claims), control), encoding="latin-1")
    return path


def test_checks_across_claims_stay_exact_across_chunks_sets_and_files(tmp_path, monkeypatch,
                                                                      small_inputs_in_parallel):
    # The first claim of each patient early in a large set, the second many chunks later, or in
    # the next file: every finding that needs the earlier claim must come out as with one job.
    first = _render(tmp_path / "first.837", [
        _claim("P-U008-WINDOW-A"), _claim("P-U009-CYCLE-A"), _renamed("P-OK-MEDICARE-JZ", "DUP-1", "DUP0001"),
        *_fillers(0, 20), _claim("P-U008-WINDOW-B"), *_fillers(20, 5)], 301)
    second = _render(tmp_path / "second.837", [
        *_fillers(25, 4), _claim("P-U009-CYCLE-B"), _renamed("P-OK-MEDICARE-JZ", "DUP-2", "DUP0001")], 302)
    monkeypatch.setattr(parallel, "BATCH", 3)  # 3 claims a chunk: the pairs are chunks apart
    files = assert_same_for_any_jobs(tmp_path, monkeypatch, [first, second])
    found = {}
    for name in ("first.report.json", "second.report.json"):
        for claim in json.loads(files[name])["claims"]:
            found[claim["claim_id"]] = {f["rule"] for f in claim["findings"]}
    assert "U008" in found["P-U008-WINDOW-B"]
    assert "U009" in found["P-U009-CYCLE-B"]
    assert "U015" in found["DUP-2"]
    assert "U015" not in found["DUP-1"]


def test_a_claim_too_large_to_send_is_checked_in_the_main_process_in_its_place(tmp_path, monkeypatch,
                                                                               small_inputs_in_parallel):
    """A claim of more segments and structural errors than CHECK_HERE_ABOVE costs more to send to
    a worker and take back than to check: it is checked in the main process, between claims
    checked in the workers, and the outputs stay those of one job. (Fuzzing found a claim of
    153,000 unknown segments that took 1.6x the time and 2.2x the memory of one job.)"""
    data = (SAMPLES / "defects_837p.837").read_bytes()
    flood = data.replace(b"~\nLX*1~", b"~\n" + b"ZZZ~\n" * 300 + b"LX*1~", 1)
    assert flood != data
    path = tmp_path / "flood.837"
    path.write_bytes(flood)
    monkeypatch.setattr(parallel, "CHECK_HERE_ABOVE", 200)
    here = []
    original = parallel.OrderedChecks._here_in_order
    monkeypatch.setattr(parallel.OrderedChecks, "_here_in_order", lambda self, work, deliver: (
        here.append(work.claim.claim_id.value), original(self, work, deliver)))
    files = assert_same_for_any_jobs(tmp_path, monkeypatch, [path], jobs=(2,))
    assert len(here) == 1, here
    claims = json.loads(files["flood.report.json"])["claims"]
    assert len(claims) > 40 and claims[0]["claim_id"] == here[0] and claims[0]["disposition"] == "rejected"


def test_the_library_scrubs_alike_with_jobs(small_inputs_in_parallel):
    data = (SAMPLES / "defects_837p.837").read_bytes()
    one = scrub(data, rules=load_rules(), run=RunContext.new(TODAY))
    two = scrub(data, rules=load_rules(), run=RunContext.new(TODAY), jobs=2)
    assert (two.corrected, two.rejected, two.report) == (one.corrected, one.rejected, one.report)


class _KillAWorker(Sink):
    """Kills a worker (as the OOM killer would) when the first claim comes back."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.killed: list[int] = []

    def claim(self, item) -> None:
        if not self.killed:
            victim = self.workers.processes()[0]
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(10)
            self.killed.append(victim.pid)


def _scrub_into(path: Path, run: RunContext, extra: list[Sink]) -> tuple[bytes, str, object]:
    corrected, report = io.BytesIO(), io.StringIO()
    with path.open("rb") as source:
        summary = scrub_stream(source, load_rules(), [ClaimFileWriter(corrected), JsonReport(report, "x", {}), *extra],
                               run=run)
    return corrected.getvalue(), report.getvalue(), summary


def test_a_killed_worker_loses_no_claim(tmp_path, monkeypatch, caplog, small_inputs_in_parallel):
    path = tmp_path / "generated.837"
    GENERATE.generate(120, path, per_transaction=60)
    monkeypatch.setattr(parallel, "BATCH", 4)  # many batches in flight when the worker dies
    expected = _scrub_into(path, RunContext.new(TODAY), [])
    with Workers(2) as workers:
        killer = _KillAWorker(workers)
        with caplog.at_level(logging.WARNING, logger="scrubber"):
            got = _scrub_into(path, RunContext.new(TODAY, workers), [killer])
    assert killer.killed, "no worker was killed: the test proves nothing"
    assert got[:2] == expected[:2]
    assert got[2].claims == 120 and not got[2].unattributed
    assert caplog.text.count("worker process stopped") == 1


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:  # it ended between being listed and being read
        return b""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers_of(pid: int) -> set[int]:
    """The worker processes of a scrubber: its children, spawned or forked (not multiprocessing's
    resource tracker, which outlives a run by design)."""
    return {child for child in _children(pid) if b"resource_tracker" not in _cmdline(child)}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
@pytest.mark.parametrize(("stop", "code"), [
    (lambda process: process.send_signal(signal.SIGTERM), 143),
    # Ctrl-C on a terminal: SIGINT to the whole process group, workers included.
    (lambda process: os.killpg(process.pid, signal.SIGINT), 130),
], ids=["sigterm", "ctrl-c"])
# The default outputs (the HTML report is written claim by claim: claims checked in the workers),
# and outputs the workers write by transaction set (output/by_sets.py).
@pytest.mark.parametrize("outputs", [[], ["--outputs", "corrected,json,csv"]], ids=["by-claim", "by-set"])
def test_a_signal_during_a_parallel_run_leaves_no_worker_and_no_temporary_file(tmp_path, stop, code, outputs):
    path = tmp_path / "claims.837"
    # Enough claims that the signal lands in pass 2, not while the finished process exits (where a
    # signal is too late to matter and the run rightly ends 0).
    GENERATE.generate(6000, path, per_transaction=500)
    out = tmp_path / "out"
    temporary = tmp_path / "tmp"  # where the sets in flight are spooled (output/by_sets.py)
    temporary.mkdir()
    env = {**os.environ, parallel.MIN_BYTES_ENV: "0", "TMPDIR": str(temporary)}
    scrubber_cli = Path(sys.executable).parent / "scrubber"
    process = subprocess.Popen([str(scrubber_cli), "scrub", str(path), "--out", str(out), "--jobs", "2",
                                "--today", TODAY.isoformat(), *outputs], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2 and process.poll() is None:
            time.sleep(0.1)
            workers = _workers_of(process.pid)
        assert len(workers) >= 2, "the workers never started"
        # Pass 2 under way: claims are coming back from the workers into the outputs' temporary files.
        while time.monotonic() < deadline and process.poll() is None and not any(
                p.stat().st_size for p in (out.iterdir() if out.exists() else ())):
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be stopped"
        stop(process)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert b"Traceback" not in stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the run"
    assert not out.exists() or not [p.name for p in out.iterdir()], "an output or a temporary file was left"
    assert not list(temporary.iterdir()), "a temporary file was left"


def _watch_outputs(root: Path, jobs: int) -> dict[str, bytes]:
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for name in ("defects_837p.837", "drugs_837i.837"):
        (inbox / name).write_bytes((SAMPLES / name).read_bytes())
    env = {**os.environ, parallel.MIN_BYTES_ENV: "0"}
    done = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once", "--settle", "0.2",
                           "--poll", "0.1", "--outputs", "corrected,rejected,json,csv", "--jobs", str(jobs)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "worker process stopped" not in done.stderr
    # The outbox folders carry a token of their own: compare the outputs by name.
    return {p.name: p.read_bytes() for p in sorted((root / "outbox").rglob("*")) if p.is_file()}


def test_the_watcher_publishes_the_same_outputs_with_two_jobs(tmp_path):
    one = _watch_outputs(tmp_path / "one", 1)
    two = _watch_outputs(tmp_path / "two", 2)
    assert len(one) == 8 and one == two


def test_small_inputs_are_checked_in_process(tmp_path, monkeypatch):
    monkeypatch.delenv(parallel.MIN_BYTES_ENV, raising=False)
    started = []
    monkeypatch.setattr(Workers, "start", lambda self, rules: started.append(rules))
    sample = SAMPLES / "defects_837p.837"
    assert sample.stat().st_size < parallel.MIN_PARALLEL_BYTES
    code, _, files = scrub_cli(tmp_path, monkeypatch, [sample], 2)
    assert code == 1 and "defects_837p.report.json" in files
    assert started == []


def test_a_rule_that_raises_in_a_worker_fails_that_claim_only(monkeypatch):
    """What a worker runs on a batch, here in process: the claims cross as they would (pickled and
    read again), a rule raises on one, and that one comes back as failed, the others checked."""
    from multiprocessing.reduction import ForkingPickler

    from scrubber.rules import engine

    works: list[parallel.ClaimWork] = []

    class Keep(Sink):
        pass

    def keep(self, work, deliver):  # one job's path, recording what would cross
        works.append(work)
        deliver(work, parallel.check_locally(work, load_rules(), engine.FixMode.SAFE, TODAY))

    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    monkeypatch.setattr(parallel.OrderedChecks, "claim", keep)
    with (SAMPLES / "clean_837p.837").open("rb") as source, Workers(2) as workers:
        monkeypatch.setattr(workers, "start", lambda rules: None)
        scrub_stream(source, load_rules(), [Keep()], run=RunContext.new(TODAY, workers))
    make_a_rule_raise(monkeypatch, "P-OK-MEDICARE-JZ")
    monkeypatch.setattr(parallel, "_worker_rules", load_rules())
    crossed = ForkingPickler.loads(bytes(ForkingPickler.dumps(works)))
    results = parallel._check_batch(crossed, engine.FixMode.SAFE, TODAY)
    failed = [w.claim.id for w, r in zip(crossed, results, strict=True) if isinstance(r, parallel.CheckFailed)]
    assert failed == ["P-OK-MEDICARE-JZ"]
    assert {r.kind for r in results if isinstance(r, parallel.CheckFailed)} == {"ZeroDivisionError"}
    assert sum(isinstance(r, engine.LocalResult) for r in results) == len(works) - 1 > 0


@pytest.mark.parametrize("sample", ["clean_837p.837", "drugs_837i.837", "defects_837p.837"])
def test_a_claim_sent_to_a_worker_reads_its_hl_loops_as_here(monkeypatch, sample):
    """A claim crosses to a worker as text, with the texts of the HL loops above it, which the worker
    reads again (claim_text._party_of, through the guide's HL loops): the parties come out as the
    main process read them. Regression: the worker's reader lacked the HL loop's tables, every
    worker died on its first batch, and the main process checked every claim itself."""
    from multiprocessing.reduction import ForkingPickler

    from scrubber.rules import engine

    works: list[parallel.ClaimWork] = []

    def keep(self, work, deliver):  # OrderedChecks.claim, recording what would cross
        work.loops = self._loops_of(work.claim.hl)
        works.append(work)
        deliver(work, parallel.check_locally(work, load_rules(), engine.FixMode.SAFE, TODAY))

    monkeypatch.setenv(parallel.MIN_BYTES_ENV, "0")
    monkeypatch.setattr(parallel.OrderedChecks, "claim", keep)
    with (SAMPLES / sample).open("rb") as source, Workers(2) as workers:
        monkeypatch.setattr(workers, "start", lambda rules: None)
        scrub_stream(source, load_rules(), [Sink()], run=RunContext.new(TODAY, workers))
    crossed = ForkingPickler.loads(bytes(ForkingPickler.dumps(works)))
    assert works and len(crossed) == len(works)

    def parties(claim):
        def show(party):
            return None if party is None else [f.value if f is not None else None for f in (
                party.last_name, party.first_name, party.identifier, party.id_qualifier, party.birth_date)]
        return (show(claim.billing_provider), show(claim.subscriber), show(claim.patient),
                claim.payer_class_code, claim.payer_id_code)

    for here, there in zip(works, crossed, strict=True):
        assert parties(there.claim) == parties(here.claim), here.claim.id


def test_a_worker_stopped_half_way_through_a_result_does_not_hang_the_run():
    """A worker killed while it wrote a large result (a set's outputs) left half a message in the
    result pipe: the pool's thread waited in recv() for the rest, and the run hung after Ctrl-C or
    SIGTERM instead of ending (found by sending SIGTERM to `--jobs 2` runs: 5 hangs in 60)."""
    import struct

    rules = load_rules()
    workers = Workers(2)
    workers.start(rules)
    pool = workers.pool_for(rules)
    pool.submit(parallel._ready).result(timeout=60)
    # What a worker stopped mid-write leaves: a length header and only part of what it announces.
    writer = pool._result_queue._writer
    os.write(writer.fileno(), struct.pack("!i", 1 << 20) + b"\x80" * 100)
    time.sleep(0.5)  # the pool's thread is now waiting for the rest
    stopping = threading.Thread(target=workers.abandon, daemon=True)
    stopping.start()
    stopping.join(60)
    assert not stopping.is_alive(), "stopping the workers hung on a half-written result"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="M_ARENA_MAX is glibc's")
def test_one_malloc_arena_is_set_on_glibc():
    assert parallel.one_malloc_arena()


def test_the_cli_asks_for_one_malloc_arena_only_when_it_runs_workers(tmp_path, monkeypatch):
    """One set of 1,000,000 claims with --jobs 2 grew 1.12x from 10,000 claims, a step of the pool
    threads' own malloc arenas in the main process; 1.03x with one arena (README, "Memory against
    the number of claims")."""
    from scrubber.cli import scrub_command

    asked = []
    monkeypatch.setattr(scrub_command, "one_malloc_arena", lambda: asked.append(1) or True)
    for jobs in (1, 2):
        result = CliRunner().invoke(cli, ["scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path / str(jobs)),
                                          "--jobs", str(jobs), "-q"])
        assert result.exit_code == 0, result.output
        assert len(asked) == jobs - 1


def test_the_heap_frozen_in_a_block_stays_frozen_until_the_outermost_block_ends():
    import gc

    assert gc.get_freeze_count() == 0
    with parallel.frozen_heap():
        outer = gc.get_freeze_count()
        made = [[i] for i in range(1000)]  # objects the collector tracks, made inside the outer block
        with parallel.frozen_heap():
            assert gc.get_freeze_count() >= outer + len(made)  # frozen in turn by the inner block
        assert gc.get_freeze_count() >= outer + len(made)  # the inner block thawed nothing
    assert gc.get_freeze_count() == 0


@pytest.mark.skipif(parallel._start_method() != "fork", reason="only forked workers inherit the parent's heap")
def test_regression_forked_workers_walked_the_heap_they_share_with_the_main_process():
    # The cyclic collector of each worker walked the rule set, the code tables and the guide's
    # tables it inherited, writing to every page of them (copied into the worker: 1,900 pages
    # more in the two workers of a 10,000-claim run) at every full collection. They are now
    # forked from a frozen heap, which their collector leaves alone; the main process's is thawed.
    import gc

    rules = load_rules()
    with Workers(2) as workers:
        workers.start(rules, share=True)
        pool = workers.pool_for(rules)
        counts = [pool.submit(gc.get_freeze_count).result(timeout=60) for _ in range(4)]
        assert gc.get_freeze_count() == 0
    assert min(counts) > 10_000, counts
