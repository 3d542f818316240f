"""The HTML report for the billing office: one self-contained page, built with lxml.

Every value goes into the page as element text or an attribute set through lxml, so it is escaped
by construction: a name like `<script>` shows as text and runs nothing. The page has no script
at all (a Content-Security-Policy says so to the browser too) and fetches nothing: the styles are
inline, the charts inline SVG, and the filter to rejected claims is plain CSS (radio buttons).

Claims are written to a spool as they come (memory does not grow with the file); the summary and
charts, known only at the end, go at the top when the page is put together.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import tempfile
from collections import Counter
from typing import Any, BinaryIO

from lxml import etree
from lxml.builder import ElementMaker

from ..model.claim import Claim, Party
from ..rules.catalog import CATEGORIES
from ..rules.engine import ClaimResult
from ..rules.findings import Finding
from .sink import FragmentSink, ScrubbedClaim, Sink
from .summary import Summary
from .text import visible


def _add_text(element: etree._Element, text: str) -> None:
    """Element text as lxml's builder adds it, with control characters shown as escapes: XML
    cannot hold them (lxml raises), and a byte a sender slipped in must not stop the report."""
    text = visible(text, markup=True)
    if len(element):
        last = element[-1]
        last.tail = (last.tail or "") + text
    else:
        element.text = (element.text or "") + text


def _set_attributes(element: etree._Element, attributes: dict[str, str]) -> None:
    for key, value in attributes.items():
        element.set(key, visible(value, markup=True))


E = ElementMaker(typemap={str: _add_text, dict: _set_attributes})

_MARKER = b"<!--claims-->"
_DISPOSITIONS = ("rejected", "corrected", "accepted")

_CSS = """
:root { --ink: #1b1f24; --muted: #5b6570; --line: #d7dce1; --bad: #b3261e; --warn: #8a5a00; --good: #1e6b34;
        --fixed: #2458a6; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 1.5rem auto; max-width: 78rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.meta { color: var(--muted); margin: 0 0 1rem; }
.cards { display: flex; gap: .75rem; flex-wrap: wrap; margin: 1rem 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.card b { display: block; font-size: 1.6rem; }
.card.rejected b { color: var(--bad); } .card.corrected b { color: var(--fixed); }
.card.accepted b { color: var(--good); }
.charts { display: flex; gap: 2rem; flex-wrap: wrap; margin: 1rem 0 1.5rem; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .25rem; }
svg text { font: 12px system-ui, sans-serif; fill: var(--ink); }
svg rect.bar { fill: #4a6fa5; }
.problems { border-left: 4px solid var(--bad); padding: .25rem .75rem; margin: 1rem 0; }
.filters { margin: 1rem 0 .5rem; }
input[name=show] { position: absolute; opacity: 0; }
.filters label { display: inline-block; border: 1px solid var(--line); border-radius: 999px; padding: .2rem .8rem;
                 margin-right: .4rem; cursor: pointer; }
#show-all:checked ~ .filters label[for=show-all], #show-rejected:checked ~ .filters label[for=show-rejected],
#show-corrected:checked ~ .filters label[for=show-corrected],
#show-accepted:checked ~ .filters label[for=show-accepted] { background: var(--ink); color: #fff; }
#show-rejected:checked ~ table.claims tbody.claim:not(.rejected),
#show-corrected:checked ~ table.claims tbody.claim:not(.corrected),
#show-accepted:checked ~ table.claims tbody.claim:not(.accepted) { display: none; }
table.claims { border-collapse: collapse; width: 100%; }
table.claims th, table.claims td { border-bottom: 1px solid var(--line); padding: .3rem .45rem; text-align: left;
                                   vertical-align: top; }
thead th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
tr.claim-head th { background: #f3f5f7; font-weight: 600; }
tr.claim-head .disposition { text-transform: uppercase; font-size: .8rem; }
tbody.rejected .disposition { color: var(--bad); } tbody.corrected .disposition { color: var(--fixed); }
tbody.accepted .disposition { color: var(--good); }
td.severity-error { color: var(--bad); font-weight: 600; } td.severity-warning { color: var(--warn); }
td.value, td.fix { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; }
.fixed { color: var(--fixed); }
.none { color: var(--muted); font-style: italic; }
@media print {
  body { font-size: 10pt; margin: 0; max-width: none; }
  .filters { display: none; }
  tbody.claim { break-inside: avoid; }
  .charts, .cards { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _name(party: Party | None) -> str:
    if party is None:
        return ""
    last = party.last_name.value if party.last_name else ""
    first = party.first_name.value if party.first_name else ""
    return ", ".join(p for p in (last, first) if p)


def patient_name(claim: Claim) -> str:
    """The name the billing office finds the claim by: the patient's, else the subscriber's."""
    return _name(claim.patient) or _name(claim.subscriber)


def _fix_cell(finding: Finding) -> etree._Element:
    if finding.fix is None:
        return E.td({"class": "fix none"}, "no automatic fix")
    if finding.fixed:
        return E.td({"class": "fix fixed"}, f"fixed: {finding.fix.after}")
    label = "suggested" if finding.fix.safety == "safe" else "suggested (unsafe)"
    return E.td({"class": "fix"}, f"{label}: {finding.fix.after}")


def claim_html(result: ClaimResult, number: int, redact: bool) -> bytes:
    """The claim's tbody as HTML. Its finding rows are made and written one at a time: a claim
    of 25,000 findings held as one tree took some 120 MB (the bytes are the same)."""
    claim = result.claim
    where = f"transaction set {claim.transaction.control_number}"
    if claim.clm_segment is not None:
        where += f", segment {claim.clm_segment}"
    name = "(name withheld)" if redact else patient_name(claim) or "(no name)"
    head = E.tr({"class": "claim-head"},
                E.th({"colspan": "2"}, f"Claim {claim.label}"),
                E.th({"colspan": "2"}, name),
                E.th({"class": "disposition"}, result.disposition),
                E.th({"colspan": "2"}, where))
    rows = [head]
    if not result.findings:
        rows.append(E.tr(E.td({"colspan": "7", "class": "none"}, "no findings")))
    shell = etree.tostring(E.tbody({"class": f"claim {result.disposition}", "id": f"claim-{number}"}, *rows),
                           method="html", encoding="utf-8")
    if not result.findings:
        return shell
    end = b"</tbody>"
    assert shell.endswith(end)
    findings = [etree.tostring(_finding_row(finding), method="html", encoding="utf-8") for finding in result.findings]
    return b"".join([shell[: -len(end)], *findings, end])


def _finding_row(finding: Finding) -> etree._Element:
    return E.tr(
        {"class": f"finding {finding.severity}" + (" fixed" if finding.fixed else "")},
        E.td(str(finding.line) if finding.line is not None else "claim"),
        E.td(E.span({"title": finding.rule.summary}, f"{finding.rule.id} {finding.rule.name}")),
        E.td({"class": f"severity-{finding.severity}"}, finding.severity),
        E.td(" ".join(str(p) for p in (finding.segment and f"segment {finding.segment}", finding.element) if p)),
        E.td({"class": "value"}, finding.value if finding.value is not None else "-"),
        E.td(finding.message),
        _fix_cell(finding),
    )


def bar_chart(title: str, counts: list[tuple[str, int]], width: int = 520) -> etree._Element:
    """A horizontal bar chart as inline SVG; an empty one says so."""
    row, label_width = 22, 230
    height = max(1, len(counts)) * row + 8
    top = max((c for _, c in counts), default=1) or 1
    bars = []
    for i, (label, count) in enumerate(counts):
        y = i * row + 4
        length = max(2, int((width - label_width - 50) * count / top))
        bars += [
            E.text({"x": str(label_width - 6), "y": str(y + 14), "text-anchor": "end"}, label),
            E.rect({"class": "bar", "x": str(label_width), "y": str(y + 3), "width": str(length), "height": "14"}),
            E.text({"x": str(label_width + length + 6), "y": str(y + 14)}, str(count)),
        ]
    if not counts:
        bars.append(E.text({"x": "0", "y": "16"}, "no findings"))
    svg = E.svg({"viewBox": f"0 0 {width} {height}", "width": str(width), "height": str(height), "role": "img",
                 "aria-label": title}, E.title(title), *bars)
    return E.figure(E.figcaption(title), svg)


class HtmlReport(Sink):
    """Writes the page to `stream` (binary) at finish; claims are spooled until then."""

    parts_hold_claims_only = True  # (Sink.chunk_fragments)

    def __init__(self, stream: BinaryIO, input_name: str, scrubber: dict[str, Any], *, redact: bool = False) -> None:
        self._stream = stream
        self._input = input_name
        self._scrubber = scrubber
        self._redact = redact
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115 (closed at finish)
        self._claims = 0
        self._by_category: Counter[str] = Counter()
        self._by_rule: Counter[str] = Counter()
        self._rule_names: dict[str, str] = {}

    def claim(self, item: ScrubbedClaim) -> None:
        result = item.result
        self._claims += 1
        for finding in result.findings:
            self._by_category[finding.rule.category] += 1
            self._by_rule[finding.rule.id] += 1
            self._rule_names[finding.rule.id] = finding.rule.name
        self._keep(claim_html(result, self._claims, self._redact))

    def _keep(self, row: bytes) -> None:
        self._spool.write(row)

    def fragments(self) -> functools.partial[HtmlClaims]:
        return functools.partial(HtmlClaims, self._redact)

    def splice(self, fragment: tuple[list[bytes], Counter[str], Counter[str], dict[str, str]]) -> None:
        """A set's claims as HtmlClaims rendered them, numbered from 1: each takes the next number of
        the page (the id of its tbody, the first attribute of the first tag)."""
        parts, by_category, by_rule, names = fragment
        for local, part in enumerate(parts, start=1):
            self._claims += 1
            if local != self._claims:
                part = part.replace(b'id="claim-%d"' % local, b'id="claim-%d"' % self._claims, 1)
            self._spool.write(part)
        # Counters keep the order keys first came in (most_common breaks ties by it): sets are
        # spliced in input order, so the order is the one-job order.
        self._by_category.update(by_category)
        self._by_rule.update(by_rule)
        self._rule_names.update(names)

    def finish(self, summary: Summary, trailer: str = "") -> None:
        page = etree.tostring(self._page(summary), method="html", encoding="utf-8", doctype="<!DOCTYPE html>")
        before, after = page.split(_MARKER, 1)
        self._stream.write(before)
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, self._stream)
        self._stream.write(after)
        self._spool.close()

    def _page(self, summary: Summary) -> etree._Element:
        scrubber = self._scrubber
        rules = scrubber.get("rules", {})
        meta = (f"{self._input} · scrubbed {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} · scrubber "
                f"{scrubber.get('version', '')} · rule data {rules.get('digest', '')}")
        cards = [E.div({"class": "card"}, E.b(str(summary.claims)), "claims")]
        cards += [E.div({"class": f"card {d}"}, E.b(str(getattr(summary, d))), d) for d in _DISPOSITIONS]
        if summary.unattributed:
            cards.append(E.div({"class": "card rejected"}, E.b(str(len(summary.unattributed))), "not checked"))
        categories = [(c, self._by_category[c]) for c in CATEGORIES if self._by_category[c]]
        rules_seen = [(f"{r} {self._rule_names[r]}"[:34], n) for r, n in self._by_rule.most_common(15)]
        body = [
            E.h1("Claim scrub report"),
            E.p({"class": "meta"}, meta),
            E.section({"class": "cards"}, *cards),
            E.section({"class": "charts"}, bar_chart("Findings by category", categories),
                      bar_chart("Findings by rule (most frequent)", rules_seen)),
        ]
        if summary.unattributed:
            # In neither 837 and in no claim's table below: listed here, or the clerk could not find them.
            body.append(E.section({"class": "problems"}, E.h2("Claims not checked (in neither file)"),
                                  E.ul(*[E.li(f"segment {item.segment}: {item.label}: {item.reason}")
                                         for item in summary.unattributed])))
        if summary.errors:
            body.append(E.section({"class": "problems"}, E.h2("File-level problems"),
                                  E.ul(*[E.li(f"segment {e['segment']}: {e['message']}"
                                              + (" (fixed in the corrected file)" if e["fixed"] else ""))
                                         for e in summary.errors])))
        counts = {"all": summary.claims, **{d: getattr(summary, d) for d in _DISPOSITIONS}}
        radios = [E.input({"type": "radio", "name": "show", "id": f"show-{key}", **({"checked": "checked"}
                           if key == "all" else {})}) for key in counts]
        labels = [E.label({"for": f"show-{key}"}, f"{'All claims' if key == 'all' else key.capitalize()} ({n})")
                  for key, n in counts.items()]
        head_row = E.tr(*[E.th(h) for h in ("Line", "Rule", "Severity", "Where", "Value found", "What to do",
                                            "Fix")])
        table = E.table({"class": "claims"}, E.thead(head_row), etree.Comment("claims"))
        return E.html(
            {"lang": "en"},
            E.head(E.meta({"charset": "utf-8"}),
                   E.meta({"http-equiv": "Content-Security-Policy", "content": _CSP}),
                   E.meta({"name": "viewport", "content": "width=device-width, initial-scale=1"}),
                   E.title(f"Claim scrub report: {self._input}"),
                   E.style(_CSS)),
            E.body(*body, *radios, E.div({"class": "filters"}, "Show: ", *labels), table),
        )


class HtmlClaims(HtmlReport, FragmentSink):
    """One transaction set's claims for the page, numbered from 1 (HtmlReport.splice renumbers them)."""

    def __init__(self, redact: bool) -> None:
        self._redact = redact
        self._claims = 0
        self._parts: list[bytes] = []
        self._by_category: Counter[str] = Counter()
        self._by_rule: Counter[str] = Counter()
        self._rule_names: dict[str, str] = {}

    def _keep(self, row: bytes) -> None:
        self._parts.append(row)

    def take(self) -> tuple[list[bytes], Counter[str], Counter[str], dict[str, str]]:
        return self._parts, self._by_category, self._by_rule, self._rule_names
