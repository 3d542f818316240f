"""Issue 8: a fault in one input never stops the run, tracebacks never reach a user, and SIGTERM
ends a scrub as cleanly as Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from scrubber.cli import main
from scrubber.cli import scrub_command as cli_module
from scrubber.output import files as files_module
from scrubber.output.html_report import HtmlReport

LXML_REFUSAL = "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters"


class HtmlThatBreaksOnDefects(HtmlReport):
    """A renderer fault on one input, as lxml refusing a control byte raised one (issue 8, item 1)."""

    def __init__(self, stream, input_name, scrubber, *, redact=False):
        super().__init__(stream, input_name, scrubber, redact=redact)
        self._breaks = "defects" in input_name

    def claim(self, item):
        super().claim(item)
        if self._breaks:
            self._stream.write(b"<html>half a page")
            raise ValueError(LXML_REFUSAL + "\nsecond line of the message")


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["scrubber", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capsys.readouterr()
    return stopped.value.code, out, err


def test_a_renderer_fault_no_longer_stops_the_run_or_leaves_later_inputs_unscrubbed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(files_module, "HtmlReport", HtmlThatBreaksOnDefects)
    monkeypatch.delenv("SCRUBBER_DEBUG", raising=False)
    code, out, err = run_main(monkeypatch, capsys, "scrub", str(SAMPLES / "defects_837i.837"),
                              str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path), "-q")
    assert code == 4  # over the 1 that defects_837i's rejected claims would give
    assert err == f"scrubber: {SAMPLES / 'defects_837i.837'}: internal error: ValueError: {LXML_REFUSAL}\n"
    # Nothing of the broken input, not even its outputs that were fine; the next input is whole.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clean_837p.corrected.837", "clean_837p.report.csv", "clean_837p.report.html", "clean_837p.report.json"]
    assert "clean_837p.837: 7 claims" in out
    assert "total: 7 claims: 7 accepted, 0 corrected, 0 rejected; 1 of 2 inputs not scrubbed" in out


def test_an_internal_error_shows_its_traceback_only_with_scrubber_debug(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(files_module, "HtmlReport", HtmlThatBreaksOnDefects)
    monkeypatch.setenv("SCRUBBER_DEBUG", "1")
    code, _, err = run_main(monkeypatch, capsys, "scrub", str(SAMPLES / "defects_837i.837"), "--out", str(tmp_path))
    assert code == 4
    assert "Traceback (most recent call last)" in err and "internal error: ValueError" in err


def test_json_summary_names_the_internal_error_of_an_input(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setattr(files_module, "HtmlReport", HtmlThatBreaksOnDefects)
    code, out, _ = run_main(monkeypatch, capsys, "scrub", str(SAMPLES / "defects_837i.837"), "--out", str(tmp_path),
                            "--format", "json")
    summary = json.loads(out)
    assert code == summary["exit_code"] == 4
    assert summary["inputs"][0]["error"]["code"] == "internal_error"
    assert summary["inputs"][0]["error"]["message"] == f"ValueError: {LXML_REFUSAL}"


def test_no_traceback_reaches_a_user_from_outside_an_input(tmp_path, monkeypatch, capsys):
    def broken_summary(*_args):
        raise RuntimeError("the summary broke\x1b[2J")

    monkeypatch.setattr(cli_module, "text_summary", broken_summary)
    monkeypatch.delenv("SCRUBBER_DEBUG", raising=False)
    code, _, err = run_main(monkeypatch, capsys, "scrub", str(SAMPLES / "clean_837i.837"), "--out", str(tmp_path))
    assert code == 4
    assert err == "scrubber: internal error: RuntimeError: the summary broke\\x1b[2J\n"


# -- signals -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_input(tmp_path_factory) -> Path:
    """Several seconds of pass 2: long enough to be stopped while its outputs are being written."""
    path = tmp_path_factory.mktemp("large") / "large.837"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "12000", str(path)], check=True)
    return path


def _stop_mid_run(source: Path, out: Path, signum: int) -> subprocess.CompletedProcess:
    # One job: this is the CLI's own signal handling (test_jobs.py stops a parallel run). The signal
    # must land while the outputs are being written, not while the finished process is exiting
    # (a signal then is too late to matter): pass 2 of 12,000 claims lasts several seconds.
    process = subprocess.Popen([sys.executable, "-m", "scrubber", "scrub", str(source), "--out", str(out), "-q",
                                "--jobs", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # Wait until the outputs are being written under their temporary names, then a little more.
    while not (out.is_dir() and any(p.suffix == ".tmp" for p in out.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "the scrub ended before it could be stopped"
        time.sleep(0.05)
    time.sleep(0.3)
    assert process.poll() is None, "the scrub ended before it could be stopped"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_sigterm_on_scrub_no_longer_leaves_tmp_files_and_exits_143(tmp_path, large_input):
    done = _stop_mid_run(large_input, tmp_path / "out", signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    assert done.stderr.decode().strip().endswith("scrubber: terminated") and b"Traceback" not in done.stderr
    assert os.listdir(tmp_path / "out") == []  # neither outputs nor temporary files


def test_sigint_on_scrub_stays_clean_and_exits_130(tmp_path, large_input):
    done = _stop_mid_run(large_input, tmp_path / "out", signal.SIGINT)
    assert done.returncode == 130, done.stderr
    assert b"scrubber: interrupted" in done.stderr and b"Traceback" not in done.stderr
    assert os.listdir(tmp_path / "out") == []
