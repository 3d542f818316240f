"""edi_samples/ is what tools/make_samples.py writes, and its README says what the scrubber says."""

from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT, SAMPLES


def _tool():
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_sample_files_are_reproducible():
    for name, data in _tool().sample_files().items():
        assert (SAMPLES / name).read_bytes() == data, f"{name}: run python tools/make_samples.py"


def test_the_sample_readme_is_current():
    assert (SAMPLES / "README.md").read_text(encoding="utf-8") == _tool().readme_text(), (
        "edi_samples/README.md is out of date: run python tools/make_samples.py"
    )


def test_every_defect_claim_is_listed_with_what_is_wrong():
    text = (SAMPLES / "README.md").read_text(encoding="utf-8")
    for sample in _tool().ALL:
        for claim in sample.claims:
            assert f"| {claim.claim_id} |" in text
            assert claim.wrong or claim.claim_id.split("-")[1] == "OK"
