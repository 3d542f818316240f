"""The command line: outputs, exit codes, atomic writes, help for every command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import CORPUS, SAMPLES

from scrubber.cli import cli
from scrubber.cli import scrub_command as cli_module


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrubber", *args], capture_output=True, text=True, cwd=cwd)


def test_clean_file_exits_0_and_writes_the_default_outputs(tmp_path, report_schema):
    done = run("scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # No rejected file: no claim was rejected.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean_837p.corrected.837", "clean_837p.report.csv",
                                                           "clean_837p.report.html", "clean_837p.report.json"]
    assert (tmp_path / "clean_837p.corrected.837").read_bytes() == (SAMPLES / "clean_837p.837").read_bytes()
    report_schema.validate(json.loads((tmp_path / "clean_837p.report.json").read_text()))
    assert "7 claims: 7 accepted, 0 corrected, 0 rejected" in done.stdout
    assert done.stderr == ""  # no progress, no noise in a pipeline


def test_a_rejected_claim_exits_1_and_names_the_frequent_reasons(tmp_path):
    done = run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path))
    assert done.returncode == 1
    assert "52 claims: 11 accepted, 4 corrected, 37 rejected" in done.stdout
    assert "S001 The segment breaks the 005010 implementation guide" in done.stdout


def test_usage_errors_exit_2(tmp_path):
    assert run("scrub", str(SAMPLES / "clean_837p.837")).returncode == 2  # no --out
    assert run("scrub", str(tmp_path / "missing.837"), "--out", str(tmp_path)).returncode == 2
    assert run("scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path), "--no-fix",
               "--unsafe-fixes").returncode == 2
    assert run("frobnicate").returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_same_stem_twice_is_a_usage_error(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(SAMPLES / "clean_837p.837", other / "clean_837p.837")
    done = run("scrub", str(SAMPLES / "clean_837p.837"), str(other / "clean_837p.837"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "same outputs" in done.stderr


def test_an_unreadable_input_exits_3_writes_nothing_for_it_and_the_rest_go_on(tmp_path):
    bad = CORPUS / "azoner__pyx12__simple_837p.txt"
    done = run("scrub", str(bad), str(SAMPLES / "clean_837i.837"), "--out", str(tmp_path))
    assert done.returncode == 3
    assert "4010" in done.stderr and "azoner__pyx12__simple_837p.txt" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean_837i.corrected.837", "clean_837i.report.csv",
                                                           "clean_837i.report.html", "clean_837i.report.json"]


def test_exit_3_wins_over_exit_1(tmp_path):
    done = run("scrub", str(SAMPLES / "defects_837i.837"), str(CORPUS / "kputnam__stupidedi__1.edi"),
               "--out", str(tmp_path))
    assert done.returncode == 3


def test_output_names(tmp_path):
    plain = tmp_path / "claims"
    shutil.copy(SAMPLES / "clean_837i.837", plain)
    assert run("scrub", str(plain), "--out", str(tmp_path / "out"), "--outputs", "corrected,json").returncode == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["claims.corrected", "claims.report.json"]
    assert cli_module.output_names(Path("p.837")) == ("p.corrected.837", "p.report.json")


def test_no_corrected_file_when_nothing_can_go_out(tmp_path):
    data = (SAMPLES / "clean_837i.837").read_bytes().replace(b"*UN*180~", b"*UN*0~").replace(b"*UN*200~", b"*UN*0~")
    source = tmp_path / "all_bad.837"
    source.write_bytes(data)
    done = run("scrub", str(source), "--out", str(tmp_path / "out"), "--outputs", "corrected,json")
    assert done.returncode == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["all_bad.report.json"]
    assert "none written" in done.stdout


def test_an_interrupted_run_leaves_no_partial_file(tmp_path, monkeypatch):
    def interrupted(source, rules, sinks, mode, progress, run):
        sinks[0]._stream.write(b"ISA*half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "scrub_stream", interrupted)
    result = CliRunner().invoke(cli, ["scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []  # neither the outputs nor their temporary files


def test_no_fix_and_unsafe_fixes(tmp_path):
    run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path / "nofix"), "--no-fix")
    report = json.loads((tmp_path / "nofix" / "defects_837p.report.json").read_text())
    assert report["summary"]["corrected"] == 0
    run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path / "unsafe"), "--unsafe-fixes")
    report = json.loads((tmp_path / "unsafe" / "defects_837p.report.json").read_text())
    assert report["summary"]["corrected"] > 5


def test_version_names_the_program_the_rule_data_and_the_code_tables():
    done = run("--version")
    assert done.returncode == 0
    for expected in ("scrubber 0.2.0", "rules: built-in", "data digest", "HCPCS Level II, October 2025",
                     "ICD-10-CM April 2026", "ASP NDC-HCPCS crosswalk", "belinostat (J9032/C9442)", "pyx12 4.0.0"):
        assert expected in done.stdout


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize(("path", "command"), list(_commands(cli)),
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_and_is_in_the_readme(path, command):
    assert command.help and command.help.strip()
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"scrubber {' '.join(path)}" in readme


def test_standard_input_to_standard_output(tmp_path):
    data = (SAMPLES / "defects_837i.837").read_bytes()
    done = subprocess.run([sys.executable, "-m", "scrubber", "scrub", "-", "--report", str(tmp_path / "r.json")],
                          input=data, capture_output=True)
    assert done.returncode == 1
    corrected = done.stdout
    assert corrected.startswith(b"ISA*") and corrected.count(b"CLM*") == 4  # 6 claims, 2 rejected
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["input"] == "-" and report["summary"]["rejected"] == 2
    assert b"6 claims: 3 accepted, 1 corrected, 2 rejected" in done.stderr  # the counts go to stderr


def test_standard_input_that_is_not_x12_writes_nothing_to_stdout():
    done = subprocess.run([sys.executable, "-m", "scrubber", "scrub", "-"], input=b"hello", capture_output=True)
    assert done.returncode == 3 and done.stdout == b"" and b"not an X12 interchange" in done.stderr


def test_lint_lines_for_terminals_and_ci_logs(tmp_path):
    done = run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path), "--outputs", "json")
    lines = [line for line in done.stdout.splitlines() if ": U003 " in line]
    assert lines == [f"{SAMPLES / 'defects_837p.837'}:49:SV104: U003 1800 units of J9032 equals the 1800 mg given "
                     "and is above the 300-unit daily ceiling, but J9032 is billed per 10 mg: bill 180 units "
                     "[claim P-U003-MG-AS-UNITS, fixed]"]
    quiet = run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path), "--outputs", "json", "-q")
    assert ": U003 " not in quiet.stdout and "52 claims" in quiet.stdout


def test_json_summary(tmp_path):
    done = run("scrub", str(SAMPLES / "clean_837i.837"), str(CORPUS / "kputnam__stupidedi__1.edi"), "--out",
               str(tmp_path), "--format", "json", "--outputs", "corrected,json")
    summary = json.loads(done.stdout)
    assert summary["exit_code"] == done.returncode == 3
    first, second = summary["inputs"]
    assert first["summary"]["accepted"] == 2 and set(first["outputs"]) == {"corrected", "json"}
    assert second["error"]["code"] == "not_x12" and second["outputs"] == {}


def test_choosing_outputs(tmp_path):
    assert run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path), "--outputs", "rejected,csv"
               ).returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["defects_837p.rejected.837", "defects_837p.report.csv"]
    assert run("scrub", str(SAMPLES / "defects_837p.837"), "--out", str(tmp_path), "--outputs", "pdf").returncode == 2


def test_redact_leaves_names_out_of_the_html(tmp_path):
    run("scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path), "--outputs", "html", "--redact")
    page = (tmp_path / "clean_837p.report.html").read_text()
    assert "DOE" not in page and "(name withheld)" in page
