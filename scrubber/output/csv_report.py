"""The CSV report: one row per finding, for a spreadsheet; then a row for each claim the rules could
not check (disposition "not checked": it is in neither 837) and for each file-level problem
(category "file", no claim id), so that a clerk who reads only the spreadsheet misses none of them.

Written as UTF-8 with a byte-order mark, so spreadsheet programs read it as UTF-8 without being
told; comma-separated, CRLF line ends, every field quoted when it needs to be. A cell that starts
with =, +, -, @ (or a tab or carriage return) would be read as a formula: it gets a leading
apostrophe, the usual neutraliser, so it shows as the text it is.
"""

from __future__ import annotations

import csv
import functools
import io
from typing import TextIO

from .report import finding_dict
from .sink import FragmentSink, ScrubbedClaim, Sink
from .summary import Summary
from .text import visible

COLUMNS = ("input", "claim_id", "disposition", "transaction_set", "line", "segment", "segment_id", "element",
           "rule", "name", "category", "severity", "message", "before", "after", "fix", "fixed")

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """A cell's text: control characters (a CR or LF would start a row of the sender's making in
    some readers) shown as escapes, and a formula start neutralised."""
    text = visible("" if value is None else str(value))
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class CsvReport(Sink):
    """Open the stream with newline="" (the csv module writes the line ends)."""

    parts_hold_claims_only = True  # (Sink.chunk_fragments)

    def __init__(self, stream: TextIO, input_name: str) -> None:
        self._input = input_name
        self._stream = stream
        stream.write("\ufeff")
        self._writer = csv.writer(stream, lineterminator="\r\n")
        self._writer.writerow(COLUMNS)
        self.rows = 0

    def claim(self, item: ScrubbedClaim) -> None:
        result = item.result
        claim = {"claim_id": result.claim.id, "disposition": result.disposition,
                 "transaction_set": result.claim.transaction.control_number}
        for finding in result.findings:
            self._row({**claim, **finding_dict(finding), "fixed": "yes" if finding.fixed else "no"})

    def finish(self, summary: Summary, trailer: str = "") -> None:
        # At the end, from the summary: the same rows, in the same order, whatever --jobs.
        for item in summary.unattributed:
            self._row({"claim_id": item.claim_id, "disposition": "not checked", "segment": item.segment,
                       "segment_id": "CLM", "category": "internal", "severity": "error", "message": item.reason,
                       "fixed": "no"})
        for error in summary.errors:
            self._row({"segment": error["segment"], "rule": error["code"], "category": "file", "severity": "error",
                       "message": error["message"], "fixed": "yes" if error["fixed"] else "no"})

    def _row(self, cells: dict[str, object]) -> None:
        """One row: the input's name, then `cells` (a column not among them is left empty)."""
        row = {"input": self._input, **cells}
        self._writer.writerow([neutralise(row.get(column)) for column in COLUMNS])
        self.rows += 1

    def fragments(self) -> functools.partial[CsvRows]:
        return functools.partial(CsvRows, self._input)

    def splice(self, fragment: tuple[str, int]) -> None:
        text, rows = fragment
        self._stream.write(text)
        self.rows += rows


class CsvRows(CsvReport, FragmentSink):
    """The rows of one transaction set's findings, without the byte-order mark and the header."""

    def __init__(self, input_name: str) -> None:
        self._input = input_name
        self._stream = io.StringIO()
        self._writer = csv.writer(self._stream, lineterminator="\r\n")
        self.rows = 0

    def take(self) -> tuple[str, int]:
        return self._stream.getvalue(), self.rows
