"""The output files of one input, written together: all under temporary names while the input is
scrubbed, all renamed to their final names once every one of them is complete.

    p.837 -> p.corrected.837, p.rejected.837, p.report.json, p.report.html, p.report.csv, p.999, p.277ca
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .atomic import AtomicFile
from .corrected import ClaimFileWriter
from .csv_report import CsvReport
from .html_report import HtmlReport
from .report import JsonReport
from .sink import Sink


@dataclass(frozen=True)
class OutputKind:
    name: str
    file_name: Callable[[str, str], str]  # (stem, suffix) -> name
    text: bool  # written as text (UTF-8) rather than bytes
    only_with_claims: bool  # not written when it would hold no claim (corrected, rejected)


KINDS = {
    "corrected": OutputKind("corrected", lambda stem, suffix: f"{stem}.corrected{suffix}", False, True),
    "rejected": OutputKind("rejected", lambda stem, suffix: f"{stem}.rejected{suffix}", False, True),
    "json": OutputKind("json", lambda stem, suffix: f"{stem}.report.json", True, False),
    "html": OutputKind("html", lambda stem, suffix: f"{stem}.report.html", False, False),
    "csv": OutputKind("csv", lambda stem, suffix: f"{stem}.report.csv", True, False),
    "999": OutputKind("999", lambda stem, suffix: f"{stem}.999", False, False),
    "277ca": OutputKind("277ca", lambda stem, suffix: f"{stem}.277ca", False, False),
}
DEFAULT_OUTPUTS = ("corrected", "rejected", "json", "html", "csv")


def make_sink(kind: str, stream: BinaryIO | TextIO, input_name: str, scrubber: dict[str, Any],
              redact: bool = False) -> Sink:
    """The renderer for one kind of output, writing to `stream`."""
    if kind == "corrected":
        return ClaimFileWriter(stream)  # type: ignore[arg-type]
    if kind == "rejected":
        return ClaimFileWriter(stream, rejected=True)  # type: ignore[arg-type]
    if kind == "json":
        return JsonReport(stream, input_name, scrubber)  # type: ignore[arg-type]
    if kind == "html":
        return HtmlReport(stream, input_name, scrubber, redact=redact)  # type: ignore[arg-type]
    if kind == "csv":
        return CsvReport(stream, input_name)  # type: ignore[arg-type]
    if kind == "999":
        from .ack999 import Ack999  # the acknowledgments load only when asked for

        return Ack999(stream)  # type: ignore[arg-type]
    if kind == "277ca":
        from .ack277 import Ack277CA

        return Ack277CA(stream)  # type: ignore[arg-type]
    raise ValueError(f"unknown output {kind!r}")


def output_paths(directory: Path, stem: str, suffix: str, kinds: tuple[str, ...]) -> dict[str, Path]:
    """Where each output of an input goes, so they can be checked before anything is written."""
    return {kind: directory / KINDS[kind].file_name(stem, suffix) for kind in kinds}


class OutputSet:
    """The outputs of one input, in `directory`, under temporary names until `commit()`."""

    def __init__(self, directory: Path, stem: str, suffix: str, kinds: tuple[str, ...], input_name: str,
                 scrubber: dict[str, Any], redact: bool = False, renderers: bool = True) -> None:
        """`renderers=False`: the outputs are rendered elsewhere (`write_rendered`); no sink is made
        (some write their heading as they are made)."""
        self.paths: dict[str, Path] = {}
        self._files: dict[str, AtomicFile] = {}
        self.sinks: dict[str, Sink] = {}
        self._rendered: dict[str, int] = {}
        self._finished = False
        try:
            for kind, path in output_paths(directory, stem, suffix, kinds).items():
                spec = KINDS[kind]
                atomic = AtomicFile(path, "w" if spec.text else "wb", newline="" if kind == "csv" else None)
                self._files[kind] = atomic
                self.paths[kind] = path
                if renderers:
                    self.sinks[kind] = make_sink(kind, atomic.file, input_name, scrubber, redact)
        except BaseException:
            self.discard()
            raise

    def claims_in(self, kind: str) -> int:
        if kind in self._rendered:
            return self._rendered[kind]
        return getattr(self.sinks.get(kind), "claims_written", 0)

    def write_rendered(self, kind: str, data: bytes, claims: int) -> None:
        """Write an output rendered elsewhere (in a worker: output/by_files.py) in place of what its
        renderer here would write; `claims` is how many claims it holds."""
        file = self._files[kind].file
        getattr(file, "buffer", file).write(data)
        self._rendered[kind] = claims

    def finish(self) -> None:
        """Complete every output (flushed to disk, or copied into its FIFO) before any is renamed.
        A claim file with no claim in it (nothing goes out, nothing was rejected) is dropped."""
        if self._finished:
            return
        for kind, atomic in self._files.items():
            if KINDS[kind].only_with_claims and not self.claims_in(kind):
                atomic.discard()
            else:
                atomic.finish()
        self._finished = True

    def commit(self) -> dict[str, Path]:
        """Rename every complete output to its final name (after `finish()`); returns what was written."""
        self.finish()
        written = {}
        for kind, atomic in self._files.items():
            if atomic.finished:
                atomic.commit()
                written[kind] = self.paths[kind]
        return written

    def discard(self) -> None:
        for atomic in self._files.values():
            atomic.discard()
