"""Issue 8, the smaller defects of the command line: what it says about odd inputs and output paths,
misnamed rule files, -h, the summary's wording, and that every exit code is a documented one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES

from scrubber.cli import cli

CLEAN = SAMPLES / "clean_837i.837"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrubber", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def documented_exit_codes() -> set[int]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| exit code | meaning |"):]
    table = table[: table.index("\n\n")]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}


def assert_clean_failure(done: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    for phrase in phrases:
        assert phrase in done.stderr


def test_a_folder_given_as_input_is_no_longer_called_no_such_file(tmp_path):
    done = run("scrub", str(SAMPLES), "--out", str(tmp_path / "out"))
    assert_clean_failure(done, 2, f"{SAMPLES}: is a directory")
    assert "no such file" not in done.stderr and not (tmp_path / "out").exists()


def test_an_input_that_is_a_fifo_is_read_as_a_stream(tmp_path):
    fifo = tmp_path / "claims.837"
    os.mkfifo(fifo)

    def send() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(CLEAN.read_bytes())

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    done = run("scrub", str(fifo), "--out", str(tmp_path / "out"), "--outputs", "corrected")
    sender.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "claims.corrected.837").read_bytes() == CLEAN.read_bytes()


def test_out_under_a_regular_file_no_longer_ends_in_a_traceback(tmp_path):
    (tmp_path / "file").write_text("in the way")
    done = run("scrub", str(CLEAN), "--out", str(tmp_path / "file" / "out"))
    assert_clean_failure(done, 2, "--out", "cannot create the directory: Not a directory")


def test_report_under_a_regular_file_no_longer_ends_in_a_traceback(tmp_path):
    (tmp_path / "file").write_text("in the way")
    done = subprocess.run([sys.executable, "-m", "scrubber", "scrub", "-", "--report",
                           str(tmp_path / "file" / "sub" / "r.json")], input=CLEAN.read_bytes(), capture_output=True)
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert b"--report" in done.stderr and b"cannot create the directory" in done.stderr
    assert done.stdout == b""  # refused before anything was scrubbed


def test_a_non_utf8_icd10_code_file_no_longer_ends_in_a_traceback(tmp_path):
    codes = tmp_path / "icd10cm-codes-2027.txt"
    codes.write_bytes(b"C8440   Peripheral T-cell lymphoma, not classified, unspecified site\nA000    Cholera d\xfc\n")
    done = run("scrub", str(CLEAN), "--out", str(tmp_path / "out"), "--icd10-codes", str(codes))
    offset = codes.read_bytes().index(b"\xfc")
    assert_clean_failure(done, 2, str(codes), f"byte 0xfc at byte offset {offset}")


def site_layer(tmp_path: Path, **files: str) -> Path:
    layer = tmp_path / "site"
    layer.mkdir()
    for name, text in files.items():
        (layer / name).write_text(text)
    return layer


def test_rules_check_no_longer_says_ok_for_a_misnamed_file_it_ignores(tmp_path):
    layer = site_layer(tmp_path, **{"payer.toml": '[[payer]]\nname = "Acme"\npayer_ids = ["ACME1"]\n'})
    done = run("rules", "check", str(layer))
    assert_clean_failure(done, 2, "payer.toml", "did you mean payers.toml?")
    assert "ok" not in done.stdout
    # The same layer given to a scrub is refused too, rather than silently passed over.
    done = run("scrub", str(CLEAN), "--out", str(tmp_path / "out"), "--rules", str(layer))
    assert_clean_failure(done, 2, "did you mean payers.toml?")


def test_rules_check_lists_the_files_it_read(tmp_path):
    layer = site_layer(tmp_path, **{"settings.toml": 'disabled = ["C003"]\n', "README.md": "notes\n",
                                    "payers.toml": '[[payer]]\nname = "Medicare"\nndc_required = true\n'})
    done = run("rules", "check", str(layer))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [f"  read {layer / 'payers.toml'}", f"  read {layer / 'settings.toml'}"]


def test_rules_check_names_a_code_table_that_is_not_utf8(tmp_path):
    layer = site_layer(tmp_path, **{"code_tables.toml": '[hcpcs]\nfile = "hcpcs.csv"\n'})
    data = b"code,descriptor\nJ9032,Injection, belinostat, 10 mg \xe9\n"
    (layer / "hcpcs.csv").write_bytes(data)
    done = run("rules", "check", str(layer))
    assert_clean_failure(done, 2, "hcpcs.csv", f"not UTF-8 text: byte 0xe9 at byte offset {data.index(0xE9)}")


def test_summary_no_longer_says_no_claim_can_go_out_when_the_corrected_file_was_not_asked_for(tmp_path):
    done = run("scrub", str(CLEAN), "--out", str(tmp_path), "--outputs", "json")
    assert done.returncode == 0
    assert "corrected file: not asked for (2 claims can go out)" in done.stdout
    assert "no claim can go out" not in done.stdout


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *(path for path, _ in _commands(cli))], ids=lambda p: " ".join(p) or "scrubber")
def test_h_is_no_longer_refused_every_command_has_help_text(path):
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    short, long = CliRunner().invoke(cli, [*path, "-h"]), CliRunner().invoke(cli, [*path, "--help"])
    assert short.exit_code == 0, short.output
    assert short.output == long.output
    first_line = " ".join(command.help.split("\n\n")[0].split())  # as click wraps it
    assert "Usage: " in short.output and first_line in " ".join(short.output.split())


def test_every_exit_code_is_a_documented_one():
    codes = documented_exit_codes()
    assert codes == {0, 1, 2, 3, 4, 130, 143}
    from scrubber.cli import exit_codes

    assert set(exit_codes.PRIORITY) | {exit_codes.EXIT_INTERRUPTED, exit_codes.EXIT_TERMINATED} == codes
    assert exit_codes.worst([1, 3, 0]) == 3 and exit_codes.worst([3, 2]) == 2 and exit_codes.worst([2, 4, 1]) == 4


def _with_stdout_closed(*args: str) -> tuple[int, str]:
    """Run with a standard output whose reader has gone (as `| head` leaves it)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "scrubber", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_a_closed_standard_output_no_longer_exits_1_as_if_a_claim_were_rejected(tmp_path):
    code, err = _with_stdout_closed("rules", "list")
    assert code == 2 and "Traceback" not in err and "Exception ignored" not in err
    assert err == "scrubber: standard output was closed before everything was written\n"
    # A scrub whose lint lines meet the closed pipe still finishes and keeps its outputs.
    code, err = _with_stdout_closed("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path),
                                    "--outputs", "corrected,rejected")
    assert code == 2 and "Traceback" not in err and "cannot write its outputs" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["defects_837p.corrected.837", "defects_837p.rejected.837"]


def test_report_is_no_longer_ignored_in_silence_when_outputs_leaves_json_out(tmp_path):
    done = run("scrub", str(CLEAN), "--out", str(tmp_path / "out"), "--outputs", "corrected",
               "--report", str(tmp_path / "r.json"))
    assert_clean_failure(done, 2, "--report names the place of the json output, which --outputs leaves out")
    assert not (tmp_path / "out").exists()
