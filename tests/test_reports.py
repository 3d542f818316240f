"""The HTML and CSV reports and the rejected-claims file: renderers over the same findings."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import SAMPLES, TODAY
from pyx12_check import pyx12_valid

import scrubber
from scrubber.output.csv_report import CsvReport, neutralise
from scrubber.output.html_report import HtmlReport

DEFECTS = (SAMPLES / "defects_837p.837").read_bytes()
XSS = b"<script>window.__xss=1</script>"


def render(data: bytes, *, redact: bool = False) -> tuple[bytes, str]:
    html, text = io.BytesIO(), io.StringIO(newline="")
    scrubber.scrub_stream(io.BytesIO(data), scrubber.load_rules(),
                          [HtmlReport(html, "in.837", {"version": "test"}, redact=redact), CsvReport(text, "in.837")],
                          run=scrubber.RunContext.new(TODAY))
    return html.getvalue(), text.getvalue()


def test_the_rejected_file_holds_the_rejected_claims_as_they_came(samples):
    result = samples["defects_837p.837"]
    rejected = result.rejected.decode("latin-1")
    for claim in result.report["claims"]:
        assert (f"CLM*{claim['claim_id']}*" in rejected) == (claim["disposition"] == "rejected")
    # As they came: the rejected claim's fixable values are not fixed in it.
    assert "CLM*P-N002-NDC-HYPHENS*" not in rejected and "UN*1800***1~" not in rejected


def test_the_rejected_file_passes_pyx12_when_the_input_does(scrub):
    clean = (SAMPLES / "clean_837p.837").read_bytes()
    broken = clean.replace(b"SV1*HC:J9032*9445.32*UN*180***1~", b"SV1*HC:J9032*9445.32*UN*0***1~", 1)
    assert pyx12_valid(broken)
    result = scrub(broken)
    assert result.rejected.count(b"CLM*") == 1
    assert pyx12_valid(result.rejected) and pyx12_valid(result.corrected)


def test_the_corrected_and_rejected_files_split_the_claims(samples):
    for name, result in samples.items():
        claims = result.report["claims"]
        out = (result.corrected or b"").count(b"CLM*") + (result.rejected or b"").count(b"CLM*")
        assert out == len(claims), name


def test_the_html_is_one_self_contained_page():
    page, _ = render(DEFECTS)
    text = page.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "http://" not in text and "https://" not in text and "@import" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert text.count('<tbody class="claim ') == 52
    assert text.count('<tbody class="claim rejected"') == 37
    assert "<svg" in text and "Findings by category" in text and "Findings by rule" in text
    assert "@media print" in text


def test_html_escapes_every_value_and_redacts_names():
    data = DEFECTS.replace(b"NM1*IL*1*DOE*JANE****MI*MBR000001", b"NM1*IL*1*" + XSS + b"*JANE****MI*MBR000001")
    page, _ = render(data)
    assert XSS not in page and b"&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert b"DOE, JANE" in page
    redacted, _ = render(data, redact=True)
    assert b"DOE, JANE" not in redacted and b"__xss" not in redacted and b"(name withheld)" in redacted


def test_csv_has_one_row_per_finding_and_opens_as_utf8():
    _, text = render(DEFECTS)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    result = scrubber.scrub(DEFECTS, run=scrubber.RunContext.new(TODAY))
    assert len(rows) == sum(len(c["findings"]) for c in result.report["claims"])
    assert {r["claim_id"] for r in rows if r["rule"] == "U003"} == {"P-U003-MG-AS-UNITS"}
    assert "\r\n" in text


@pytest.mark.parametrize(("value", "shown"), [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"),
                                              ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("J9032", "J9032"),
                                              (None, ""), (3, "3")])
def test_csv_neutralises_formulas(value, shown):
    assert neutralise(value) == shown


def test_a_formula_in_a_claim_id_reaches_the_csv_as_text():
    data = DEFECTS.replace(b"CLM*P-U001-ZERO-UNITS*", b"CLM*=1+2*")
    _, text = render(data)
    assert "'=1+2" in text and "\n=1+2" not in text and ",=1+2" not in text


def test_a_claim_of_many_findings_is_one_tbody_with_a_row_for_each_finding():
    """A claim's finding rows are made and written one at a time (one tree for a claim of 25,000
    findings took some 120 MB): what comes out is still one well-formed tbody per claim, with a
    row for every finding, the same bytes as the tree read back and written again."""
    from lxml import html as lxml_html

    line = b"LX*1~\nSV1*HC:J9032:JZ*100*UN*0***1~\nDTP*472*D8*20261102~\n"  # (P-U001-ZERO-UNITS's, zero units)
    assert DEFECTS.count(line) == 1
    page, text = render(DEFECTS.replace(line, line * 120))
    rows = [row for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))) if row["category"] != "file"]
    start = page.index(b'<tbody class="claim ')
    bodies = lxml_html.fragments_fromstring(page[start:page.index(b"</table>", start)])
    assert len(bodies) == 52
    found = sum(len(body.find_class("finding")) for body in bodies)
    assert found == len(rows) > 120
    biggest = max(bodies, key=lambda body: len(body.find_class("finding")))
    assert len(biggest.find_class("finding")) >= 120  # (U001 on each copy of the line)
    for body in bodies:
        again = lxml_html.tostring(body, method="html", encoding="utf-8")
        assert again in page
