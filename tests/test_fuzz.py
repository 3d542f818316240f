"""The short fuzzing run of CI: the harness of tests/fuzz/ over every seed, over a fixed set of X12-level
mutations of the small seeds, and over the saved reproducers of tests/fuzz/crashes/; and proof
that the harness notices a broken Result. The long runs are bench/fuzz.py.

Tests marked xfail(strict=True) fail today because of a defect in scrubber/ named in the reason:
remove the mark when the fix lands (strict: a fixed defect turns the test red until then).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz import harness, mutate, seeds

from scrubber import InputError

# Defects in scrubber/ that the fuzzer finds today, by a short name. Fixed ones leave the list; their
# reproducers stay in tests/fuzz/crashes/ as regression tests, named after the defect.
DEFECTS: dict[str, str] = {
    # None known today. The last five (a stray CLM in the header, a bare CLM, an HL02 naming no open
    # loop, a control byte in a refusal message, a CLM02 of 1e309 in the 277CA) are fixed; their
    # reproducers below are regression tests.
}


def known(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason="; ".join(DEFECTS[n] for n in names))


# ---------------------------------------------------------------- every seed as it is

SEEDS = seeds.seed_files()


@pytest.mark.parametrize("path", SEEDS, ids=[p.name for p in SEEDS])
def test_every_seed_holds_the_invariants(path):
    data = path.read_bytes()
    # scrub() against the renderers too, but not on the 820-claim files (10 s a scrub).
    check = harness.check_api if len(data) <= seeds.MUTABLE_SIZE else harness.check
    assert check(data) in ("scrubbed", "refused")


def test_the_seeds_are_the_samples_and_the_public_corpus():
    names = {p.name for p in SEEDS}
    assert {p.name for p in seeds.SAMPLES.glob("*.837")} <= names
    assert len(names) >= 80  # 4 samples and the corpus's 77 files
    assert not names & seeds.NOT_CLAIMS


# ---------------------------------------------------------------- the saved reproducers

CRASHES = {  # reproducer -> the defect that makes it fail today (None: fixed, a regression test)
    "html-control-byte-in-claim-id.837": None,  # issue 8 item 1
    "deep-hl-recursion.837": None,  # issue 8 item 6
    "diagnosis-pointer-superscript-digit.837": None,  # issue 8 item 6
    "npi-superscript-digit.837": None,  # issue 8 item 6
    "only-clm-before-hl-lost.837": None,  # issue 8 item 5
    "leading-space-before-clm-lost.837": None,
    "ack999-non-ascii-byte.837": None,
    "hl-parent-mismatch.837": None,
    "stray-clm-before-hl.837": None,
    "bare-clm-before-a-claim.837": None,
    "space-and-line-break-before-clm-lost.837": None,
    "leading-space-before-gs-message.837": None,  # issue 8 item 8
    "escape-in-segment-id-message.837": None,  # issue 8 item 8
    "ack277-huge-charge.837": None,
    "clm-inside-billing-provider-loop.837": None,  # a CLM right under HL 20 took the provider's REF*EI
    # An LX with no SV2 ending a claim, then HLs the guide cannot place: the claim went out, and its
    # corrected file, scrubbed again, was rejected (bench/fuzz.py --seed 20261203).
    "service-line-without-sv2-before-unplaced-hls.837": None,
    # Segments of a claim in HL loops that end with no claim in them or below them: under an HL
    # level the guide does not have ("AAA...", "0"), in a billing provider loop whose subscriber
    # loop holds no claim, in a file of two delimiter sets spliced. They were in neither file; the
    # segments invariant found them (bench/fuzz.py --seed 20261201g).
    "lines-under-an-unknown-hl-level-lost.837": None,
    "drug-segments-under-hl-level-0-lost.837": None,
    "lines-in-a-billing-provider-loop-with-no-claim-below-lost.837": None,
    "spliced-delimiters-lines-lost.837": None,
    # A claim's last line with no service date, then an HL of a level the guide does not have: the
    # validator read on in that line past the HL, took a later DTP*472 for its date and reported
    # nothing; the claim went out without one, and its corrected file, scrubbed again, was
    # rejected (bench/fuzz.py --seed 20261201s1).
    "line-without-service-date-before-an-unknown-hl-level.837": None,
}


def test_every_reproducer_is_listed():
    assert {p.name for p in seeds.CRASHES.glob("*.837")} == set(CRASHES)


@pytest.mark.parametrize("name", [pytest.param(name, marks=known(defect) if defect else (),
                                               id=name.removesuffix(".837"))
                                  for name, defect in CRASHES.items()])
def test_reproducer_holds_the_invariants(name):
    harness.check((seeds.CRASHES / name).read_bytes())


# ---------------------------------------------------------------- a fixed set of mutations

# Small seeds only (a few kB: a check takes 20-60 ms), so a few thousand mutations fit in CI.
SMALL = [data for data in seeds.mutable_seeds() if len(data) <= 4_000]
# Inputs per mutation; the ones that build large inputs (deep HL, many lines or segments) fewer.
COUNTS = dict.fromkeys(mutate.MUTATIONS, 140) | {"deep_hl": 30, "many_lines": 20, "many_segments": 20}
MIXED = 500  # and this many of one to three mutations of any cheap kind: 2,530 inputs in all
# Which batches hit a known defect today (the same inputs every run: the generator is seeded).
FAILING: dict[str, tuple[str, ...]] = {}


def mutations(name: str, count: int) -> list[bytes]:
    """`count` inputs, each one mutation `name` of a small seed: the same inputs on every run."""
    out = []
    for i in range(count):
        rng = random.Random(f"ci-{name}-{i}")
        out.append(mutate.MUTATIONS[name](rng.choice(SMALL), rng, SMALL))
    return out


def mixed(count: int) -> list[bytes]:
    """One to three mutations of any kind (the cheap ones), as the long runs make them."""
    cheap = [n for n in mutate.MUTATIONS if n not in ("deep_hl", "many_lines", "many_segments")]
    out = []
    for i in range(count):
        rng = random.Random(f"ci-mixed-{i}")
        out.append(mutate.mutate(rng.choice(SMALL), rng, SMALL, names=cheap))
    return out


def failures_of(inputs: list[bytes]) -> tuple[collections.Counter, collections.Counter]:
    outcomes: collections.Counter[str] = collections.Counter()
    failed: collections.Counter[str] = collections.Counter()
    for data in inputs:
        try:
            outcomes[harness.check(data)] += 1
        except harness.InvariantError as exc:
            outcomes["failed"] += 1
            failed[re.sub(r"\d+", "N", str(exc))[:160]] += 1
    return outcomes, failed


@pytest.mark.parametrize("name", [pytest.param(n, marks=known(*FAILING[n]) if n in FAILING else ())
                                  for n in mutate.MUTATIONS])
def test_mutations_hold_the_invariants(name):
    outcomes, failed = failures_of(mutations(name, COUNTS[name]))
    assert not failed, f"{outcomes}: " + " | ".join(f"{n}x {m}" for m, n in failed.most_common(5))


def test_mixed_mutations_hold_the_invariants():
    outcomes, failed = failures_of(mixed(MIXED))
    assert not failed, f"{outcomes}: " + " | ".join(f"{n}x {m}" for m, n in failed.most_common(5))


def test_the_mutations_are_the_same_every_run_and_change_the_input():
    first, again = mutations("odd_value", 30), mutations("odd_value", 30)
    assert first == again
    assert sum(data not in SMALL for data in first) >= 25
    for name in mutate.MUTATIONS:
        assert any(data not in SMALL for data in mutations(name, 5)), name


def test_the_mutations_reach_the_scrub_not_only_the_refusal():
    # A fuzzer whose inputs are all refused at the ISA tests the tokenizer only.
    outcomes, _ = failures_of(mixed(60))
    assert outcomes["scrubbed"] >= 30, outcomes


# ---------------------------------------------------------------- the harness can fail

BOTH = (seeds.SAMPLES / "defects_837i.837").read_bytes()  # accepted, corrected and rejected claims


def test_the_sample_used_below_has_claims_in_both_files():
    result = harness.run_scrub(BOTH)
    assert result.corrected and result.rejected and harness.check_api(BOTH) == "scrubbed"


def breaking(monkeypatch, change):
    """Make run_renderers return outputs changed by `change` (for the input under test only); the
    report is handed to `change` as a dict and written back as JSON."""
    real = harness.run_renderers

    def broken(data):
        rendered = real(data)
        if data == BOTH:
            rendered = harness.Rendered(dict(rendered.outputs), copy.deepcopy(rendered.summary))
            report = json.loads(rendered.outputs["json"])
            change(rendered, report)
            rendered.outputs["json"] = json.dumps(report)
        return rendered

    monkeypatch.setattr(harness, "run_renderers", broken)


def expect(invariant: str, data: bytes = BOTH, check=harness.check) -> str:
    with pytest.raises(harness.InvariantError) as caught:
        check(data)
    assert caught.value.invariant == invariant, caught.value
    return str(caught.value)


def test_the_harness_flags_a_lost_claim(monkeypatch):
    breaking(monkeypatch, lambda r, report: r.outputs.__setitem__("rejected", None))
    assert "lost" in expect("conservation")


def test_the_harness_flags_a_segment_of_a_claim_that_is_in_neither_file(monkeypatch):
    # The claims are all there, but one of the rejected file's service lines lost its date.
    def drop_a_date(rendered, _report):
        rejected = rendered.outputs["rejected"]
        start = rejected.index(b"DTP*472*")
        rendered.outputs["rejected"] = rejected[:start] + rejected[rejected.index(b"~", start) + 1:]

    breaking(monkeypatch, drop_a_date)
    assert "DTP*472" in expect("segments")


def test_the_harness_flags_the_segments_of_a_damaged_clm_dropped_with_their_loop():
    # What the scrubber did before it delivered a claim with no CLM: the CLX claim's segments
    # went with the subscriber loop, in neither file. Taking them out of the rejected file here
    # is that, and the segments invariant says so.
    data = (seeds.SAMPLES / "clean_837p.837").read_bytes()
    at = data.index(b"CLM*P-OK-MEDICARE-JZ*")
    data = data[:at] + b"CLX" + data[at + 3:]
    assert harness.check(data) == "scrubbed"
    rendered = harness.run_renderers(data)
    rejected = rendered.rejected
    rendered.outputs["rejected"] = rejected[:rejected.index(b"CLX*")] + rejected[rejected.rindex(b"\nSE*") + 1:]
    with pytest.raises(harness.InvariantError) as caught:
        harness._check_segments_kept(data, rendered, json.loads(rendered.outputs["json"]))
    assert caught.value.invariant == "segments" and "HI*ABK:C8440" in str(caught.value)


def test_the_harness_flags_a_claim_in_both_files(monkeypatch):
    breaking(monkeypatch, lambda r, report: r.outputs.__setitem__("rejected", BOTH))
    assert "both" in expect("conservation")


def test_the_harness_flags_an_unattributed_claim_that_is_also_delivered(monkeypatch):
    def unattributed(rendered, report):
        first = harness.claim_ids(BOTH)[0]
        report["unattributed"] = [{"segment": first[0], "claim_id": first[1], "reason": "test"}]

    breaking(monkeypatch, unattributed)
    assert "extra" in expect("conservation")


def test_the_harness_flags_an_unattributed_entry_that_is_no_claim(monkeypatch):
    breaking(monkeypatch, lambda r, report: report.setdefault("unattributed", []).append(
        {"segment": 1, "claim_id": None, "reason": "test"}))
    assert "does not point at a CLM" in expect("conservation")


def test_the_harness_flags_a_wrong_count(monkeypatch):
    def more(rendered, report):
        rendered.summary.claims += 1

    breaking(monkeypatch, more)
    expect("summary")


def test_the_harness_flags_a_report_that_is_not_json(monkeypatch):
    breaking(monkeypatch, lambda r, report: report["summary"].__setitem__("claims", float("nan")))
    assert "not JSON" in expect("report")


def test_the_harness_flags_a_report_against_the_schema(monkeypatch):
    breaking(monkeypatch, lambda r, report: report.pop("errors"))
    assert "schema" in expect("report")


def test_the_harness_flags_a_report_that_is_not_the_files(monkeypatch):
    def other(rendered, report):
        first = report["claims"][0]
        first["disposition"] = "accepted" if first["disposition"] == "rejected" else "rejected"

    breaking(monkeypatch, other)
    expect("report")


def test_the_harness_flags_an_exception_that_is_no_scrubber_error(monkeypatch):
    def crash(rendered, report):
        raise KeyError("boom")

    breaking(monkeypatch, crash)
    assert "KeyError" in expect("crash")


def test_the_harness_flags_a_csv_report_that_is_not_the_findings(monkeypatch):
    def extra(rendered, report):
        rendered.outputs["csv"] += "one,row,too,many\r\n"

    breaking(monkeypatch, extra)
    assert "CSV" in expect("renderer")


def test_the_harness_flags_html_without_the_claims(monkeypatch):
    def fewer(rendered, report):
        rendered.outputs["html"] = re.sub(rb'<tbody class="claim [a-z]+"', b"<tbody", rendered.outputs["html"],
                                          count=1)

    breaking(monkeypatch, fewer)
    assert "HTML" in expect("renderer")


def test_the_harness_flags_a_corrected_file_that_is_not_final(monkeypatch):
    real = harness.run_scrub
    # Scrubbing the corrected file again rejects what went out the first time.
    monkeypatch.setattr(harness, "run_scrub", lambda data: real(BOTH))
    expect("idempotence")


def test_the_harness_flags_scrub_that_is_not_the_renderers(monkeypatch):
    real = harness.run_scrub

    def broken(data):
        return dataclasses.replace(real(data), rejected=None)

    monkeypatch.setattr(harness, "run_scrub", broken)
    assert harness.check(BOTH) == "scrubbed"
    expect("renderer", check=harness.check_api)


def test_the_harness_flags_a_refusal_that_forges_a_line(monkeypatch):
    def refuse(data):
        # InputError escapes control characters itself now: forge one past its constructor.
        error = InputError("placeholder", code="test")
        error.message = "ISA found\r\nscrubber: all claims accepted"
        error.args = (error.message,)
        raise error

    monkeypatch.setattr(harness, "run_renderers", refuse)
    assert "unprintable" in expect("refusal")


def test_a_clm_behind_whitespace_or_a_control_byte_is_still_a_claim():
    data = (seeds.CRASHES / "leading-space-before-clm-lost.837").read_bytes()
    assert [claim_id for _, claim_id in harness.claim_ids(data)] == ["P-OK-MEDICARE-JW"]
    assert harness.claim_ids(data.replace(b" CLM*", b"\x00CLM*")) == harness.claim_ids(data)
    assert harness.claim_ids(data.replace(b" CLM*", b"XCLM*")) == []


# ---------------------------------------------------------------- atheris, briefly

ROOT = Path(__file__).resolve().parent.parent


def _has_atheris() -> bool:
    import importlib.util

    return importlib.util.find_spec("atheris") is not None


@pytest.mark.skipif(not _has_atheris(), reason="atheris is not installed (pip install '.[fuzz]')")
def test_a_short_coverage_guided_run(tmp_path):
    # Two seeds, not the whole corpus: the run is to show the atheris path works, not to search.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("clean_837p.837", "defects_837i.837"):
        shutil.copy(seeds.SAMPLES / name, corpus / name)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--atheris", "--keep-going", "--every", "0",
         "--out", str(tmp_path), "--corpus", str(corpus), "--instrument", "scrubber", "-runs=40", "-seed=1"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Done 40 runs" in done.stderr
    stats = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert stats and stats[-1]["inputs"] >= 40, done.stderr[-2000:]
    assert len(list(corpus.iterdir())) > 2  # coverage feedback kept new inputs
    # Every kind of failure it met was saved, with what broke.
    saved = {(tmp_path / "failures" / p.name).read_text().split("\n", 1)[0]
             for p in (tmp_path / "failures").glob("*.txt")}
    assert saved == set(stats[-1]["failures"])


def test_a_short_plain_run_counts_and_saves_what_failed(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--inputs", "30", "--batch", "10", "--seed", "ci",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["inputs"] == 30 == final["scrubbed"] + final["refused"] + final["crashes"] + \
        final["invariant_failures"] + final["slow"]
    assert final["peak_rss_mib"] > 0 and final["inputs_per_second"] > 0
    failed = final["crashes"] + final["invariant_failures"] + final["slow"]
    assert done.returncode == (1 if failed else 0), done.stderr[-2000:]
    assert sum(final["failures"].values()) == failed
    kinds = {p.read_text().split("\n", 1)[0] for p in tmp_path.glob("*.txt")}
    assert kinds == set(final["failures"])
    assert len(list(tmp_path.glob("*.837"))) == len(list(tmp_path.glob("*.txt")))
