"""Checks that look beyond one claim (the run's history) or beyond the claim file (the calendar,
a newer code file), and the NPI check digit."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import pickle
import subprocess
import sys
from decimal import Decimal

import pytest
from conftest import ROOT, SAMPLES, TODAY

from scrubber import RunContext, load_rules, scrub
from scrubber.rules import history
from scrubber.rules.history import Dose, RunHistory
from scrubber.rules.providers import npi_is_valid


def _tool():
    spec = importlib.util.spec_from_file_location("make_samples_run", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TOOL = _tool()


def one_claim_file(claim_id: str, control: int) -> bytes:
    """A file holding only one of the defect sample claims."""
    claim = next(c for c in TOOL.DEFECTS_837P.claims if c.claim_id == claim_id)
    sample = TOOL.SampleFile(f"{claim_id}.837", "837P", claim_id, [claim])
    return TOOL.render(sample, control).encode("latin-1")


def scrub_in(run: RunContext, data: bytes) -> dict:
    return scrub(data, rules=load_rules(), run=run).report


def test_the_quantity_window_spans_the_files_of_one_run():
    first, second = one_claim_file("P-U008-WINDOW-A", 201), one_claim_file("P-U008-WINDOW-B", 202)
    run = RunContext.new(TODAY)
    assert scrub_in(run, first)["claims"][0]["disposition"] == "accepted"
    claim = scrub_in(run, second)["claims"][0]
    assert [f["rule"] for f in claim["findings"]] == ["U008"]
    assert "1500" in claim["findings"][0]["message"] and "P-U008-WINDOW-A" in claim["findings"][0]["message"]
    # Alone, the second file is within the limit: the window needs the first.
    assert scrub_in(RunContext.new(TODAY), second)["claims"][0]["disposition"] == "accepted"


def test_a_rejected_claim_does_not_count_towards_the_window():
    first = one_claim_file("P-U008-WINDOW-A", 203).replace(b"REF*G1*PA20261101~\n", b"")  # A001: rejected
    run = RunContext.new(TODAY)
    assert scrub_in(run, first)["claims"][0]["disposition"] == "rejected"
    assert scrub_in(run, one_claim_file("P-U008-WINDOW-B", 204))["claims"][0]["findings"] == []


def _dose(claim_id: str, units: int = 100) -> Dose:
    return Dose("belinostat", "J9032", dt.date(2026, 11, 2), Decimal(units), claim_id, "JZ")


def _selects(store: RunHistory) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(lambda sql: seen.append(sql) if sql.startswith("SELECT") else None)
    return seen


def test_history_asks_sqlite_only_for_a_patient_it_may_have_recorded():
    store = RunHistory()
    selects = _selects(store)
    store.record(("MBR1", "DOE", "JANE", "19600101"), [_dose("C1")])
    assert store.doses(("MBR2", "ROE", "RICHARD", "19500101")) == []
    assert selects == []  # a patient never recorded: the Bloom filter answers
    assert store.doses(("MBR1", "DOE", "JANE", "19600101")) == [_dose("C1")]
    assert len(selects) == 1
    store.close()


def test_history_doses_recorded_but_not_yet_inserted_are_found():
    store = RunHistory()
    patient = ("MBR1", "DOE", "JANE", "19600101")
    for number in range(5):  # fewer than one batch of inserts: they wait in memory
        store.record(patient, [_dose(f"C{number}", number + 1)])
        assert store.doses(patient) == [_dose(f"C{n}", n + 1) for n in range(number + 1)]
    store.close()


def test_history_a_bloom_filter_false_positive_finds_no_doses(monkeypatch):
    monkeypatch.setattr(history, "_bloom_bits", lambda key: (1, 2, 3))  # every patient collides
    store = RunHistory()
    selects = _selects(store)
    store.record(("MBR1", "DOE", "JANE", "19600101"), [_dose("C1")])
    assert store.doses(("MBR2", "ROE", "RICHARD", "19500101")) == []
    assert len(selects) == 1  # asked, and SQLite said no
    store.close()


def _part(*patients: tuple[str, ...]) -> tuple[list[int], bytes]:
    """A part's history as a worker sends it (by_sets.render_parts): the keys, the rows pickled."""
    worker = history.LocalHistory()
    for number, patient in enumerate(patients):
        worker.record(patient, [_dose(f"P{number}")])
    return worker.keys, pickle.dumps(worker.rows)


def test_history_a_part_sent_pickled_is_read_only_when_needed_and_in_order():
    jane, richard = ("MBR1", "DOE", "JANE", "19600101"), ("MBR2", "ROE", "RICHARD", "19500101")
    ann = ("MBR3", "POE", "ANN", "19700101")
    store = RunHistory()
    assert not store.knows_any([jane])  # (an empty history)
    store.record_pickled(*_part(jane))
    store.record_pickled(*_part(richard))
    assert store._unread and not store._any_recorded  # nothing read yet
    assert store.knows_any([ann, richard])  # asked of the parts' keys themselves
    assert not store.knows_any([ann])
    assert store._unread  # still not read
    store.record(ann, [_dose("C9")])  # a write reads them first: the parts' doses come before
    assert not store._unread
    assert [store.doses(p) for p in (jane, richard, ann)] == [[_dose("P0")], [_dose("P0")], [_dose("C9")]]
    store.close()


def test_history_parts_sent_pickled_are_read_when_they_pile_up_or_on_flush():
    store = RunHistory()
    for number in range(history._UNREAD_PARTS + 1):
        store.record_pickled(*_part((f"MBR{number}", "DOE", "JANE", "19600101")))
    assert not store._unread and store._any_recorded
    store.record_pickled(*_part(("MBR9", "DOE", "JANE", "19600101")))
    store.flush()
    assert not store._unread
    assert store.doses(("MBR9", "DOE", "JANE", "19600101")) == [_dose("P0")]
    store.close()


def test_history_keeps_no_rollback_journal():
    """The private database is never rolled back and dies with the run: a journal would only cost."""
    store = RunHistory()
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("off",)
    store.close()


def test_history_keeps_its_doses_past_a_batch_of_inserts():
    store = RunHistory()
    patients = [(f"MBR{n}", "DOE", "JANE", "19600101") for n in range(2 * history._COMMIT_EVERY + 7)]
    for number, patient in enumerate(patients):
        store.record(patient, [_dose(f"C{number}")])
    assert [store.doses(patients[n]) for n in (0, 2000, len(patients) - 1)] == \
        [[_dose("C0")], [_dose("C2000")], [_dose(f"C{len(patients) - 1}")]]
    store.close()


def test_two_inputs_of_one_cli_run_share_the_history(tmp_path):
    (tmp_path / "a.837").write_bytes(one_claim_file("P-U009-CYCLE-A", 205))
    (tmp_path / "b.837").write_bytes(one_claim_file("P-U009-CYCLE-B", 206))
    subprocess.run([sys.executable, "-m", "scrubber", "scrub", "a.837", "b.837", "--out", "out", "--today",
                    "2026-11-27"], cwd=tmp_path, capture_output=True, check=False)
    report = json.loads((tmp_path / "out" / "b.report.json").read_text())
    assert [f["rule"] for f in report["claims"][0]["findings"]] == ["U009"]


def test_service_dates_are_held_against_the_day_given(tmp_path):
    data = one_claim_file("P-S005-AFTER-CREATION", 207)
    assert scrub_in(RunContext.new(dt.date(2026, 11, 23)), data)["claims"][0]["findings"][0]["rule"] == "S004"
    assert scrub_in(RunContext.new(dt.date(2026, 11, 30)), data)["claims"][0]["findings"][0]["rule"] == "S005"


@pytest.mark.parametrize(("npi", "valid"), [("1234567893", True), ("1245319599", True), ("1234567890", False),
                                            ("123456789", False), ("12345678AB", False), ("1999996666", False)])
def test_npi_check_digit(npi, valid):
    assert npi_is_valid(npi) is valid


def test_a_newer_icd10_code_file(tmp_path):
    """With the FY2027 file (made up here from the packaged list plus C84.4B), C84.4B is known."""
    from scrubber.rules.code_tables import packaged_icd10_code_list

    codes = packaged_icd10_code_list().read_text() + "\nC844B Peripheral T-cell lymphoma, made up for the test\n"
    newer = tmp_path / "icd10cm-codes-2027.txt"
    newer.write_text(codes)
    out = tmp_path / "out"
    base = [sys.executable, "-m", "scrubber", "scrub", str(SAMPLES / "defects_837p.837"), "--out", str(out),
            "--today", "2026-11-27"]
    subprocess.run([*base, "--icd10-codes", str(newer)], capture_output=True, check=False)
    report = json.loads((out / "defects_837p.report.json").read_text())
    claim = next(c for c in report["claims"] if c["claim_id"] == "P-C006-NEWER-CODE")
    assert claim["findings"] == []
    assert report["scrubber"]["code_tables"]["icd10cm"] == "ICD-10-CM FY2027 (icd10cm-codes-2027.txt)"
    unnamed = tmp_path / "codes.txt"
    unnamed.write_text(codes)
    done = subprocess.run([*base, "--icd10-codes", str(unnamed)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "fiscal year" in done.stderr
