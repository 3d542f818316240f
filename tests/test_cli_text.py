"""Issue 8: raw CR, LF, ESC and other control characters from claim ids and file names no longer reach
the terminal: text output escapes them, JSON output stays JSON-escaped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import SAMPLES

from scrubber.cli.terminal import printable, short

FORGED_ID = b"P-U003\x1b[2J\rFORGED:1:X: Z999 all good\nx"
ESCAPED_ID = "P-U003\\x1b[2J\\rFORGED:1:X: Z999 all good\\nx"


def scrub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrubber", "scrub", *args], capture_output=True)


def raw_controls(data: bytes) -> set[int]:
    """Control bytes in output, other than the line feeds that end its lines."""
    return {b for b in data if (b < 0x20 and b != 0x0A) or b == 0x7F}


def test_control_characters_in_a_claim_id_no_longer_reach_the_terminal(tmp_path):
    source = tmp_path / "forged.837"
    source.write_bytes((SAMPLES / "defects_837p.837").read_bytes().replace(b"P-U003-MG-AS-UNITS", FORGED_ID))
    done = scrub(str(source), "--out", str(tmp_path / "out"), "--outputs", "json")
    assert done.returncode == 1
    assert raw_controls(done.stdout) == set() and raw_controls(done.stderr) == set()
    lines = [line for line in done.stdout.decode().splitlines() if ": U003 " in line]
    assert lines == [f"{source}:49:SV104: U003 1800 units of J9032 equals the 1800 mg given and is above the "
                     f"300-unit daily ceiling, but J9032 is billed per 10 mg: bill 180 units [claim {ESCAPED_ID}]"]
    assert not any(line.startswith("FORGED") for line in done.stdout.decode().splitlines())  # no forged line
    report = json.loads((tmp_path / "out" / "forged.report.json").read_text())
    assert FORGED_ID.decode() in [c["claim_id"] for c in report["claims"]]  # the data itself is kept


def test_control_characters_in_a_file_name_no_longer_reach_the_terminal(tmp_path):
    source = tmp_path / "claims\x1b]0;owned\x07\rX.837"
    source.write_bytes((SAMPLES / "defects_837p.837").read_bytes())
    done = scrub(str(source), str(tmp_path / "missing\x1b[31m.837"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and raw_controls(done.stderr) == set()
    assert "missing\\x1b[31m.837: no such file" in done.stderr.decode()
    done = scrub(str(source), "--out", str(tmp_path / "out"), "--outputs", "json")
    assert done.returncode == 1
    assert raw_controls(done.stdout) == set() and raw_controls(done.stderr) == set()
    assert "claims\\x1b]0;owned\\x07\\rX.837: 52 claims: " in done.stdout.decode()
    assert "claims\\x1b]0;owned\\x07\\rX.837:49:SV104: U003 " in done.stdout.decode()


def test_json_output_stays_json_escaped(tmp_path):
    source = tmp_path / "forged\r.837"
    source.write_bytes((SAMPLES / "defects_837p.837").read_bytes().replace(b"P-U003-MG-AS-UNITS", FORGED_ID))
    done = scrub(str(source), "--out", str(tmp_path / "out"), "--outputs", "json", "--format", "json")
    assert raw_controls(done.stdout) == set()
    summary = json.loads(done.stdout)
    assert summary["inputs"][0]["input"] == str(source)  # JSON's own escapes, read back as they were


def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_the_rest():
    assert printable("DOE\x1b[31m\r\n\t\x00\x7f\x9b") == "DOE\\x1b[31m\\r\\n\\t\\x00\\x7f\\x9b"
    assert printable("abc\u202edcba\u2028") == "abc\\u202edcba\\u2028"  # a bidi override, a line separator
    assert printable(os.fsdecode(b"name\xff.837")) == "name\\xff.837"  # a file name byte that is not UTF-8
    assert printable("Müller, José: 100% ok") == "Müller, José: 100% ok"
    assert short("first\nsecond") == "first" and short("x" * 300).endswith("…") and len(short("x" * 300)) == 200
