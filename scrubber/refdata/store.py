"""The reference data store: a directory of gzip'd CSV tables, one per CMS file, and a manifest.

    DIR/manifest.json                       what is loaded: kind, quarter, dates, rows, digests, source
    DIR/<kind>-<from>-<digest>.csv.gz       the rows kept of one CMS file (see sources.COLUMNS)

Text tables (gzip'd, written byte for byte the same for the same input) keep the shipped store small
and its changes readable in the repository; a table is only read when a lookup needs it. Writes are
atomic: the tables are written under new names, then the manifest is replaced in one rename, then
the tables no longer named are removed. Several quarters sit side by side; a file of the same kind
and quarter as one already in the store replaces it (a revision).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .columns import COLUMNS, INCONSISTENT, KINDS, SETTINGS
from .errors import ReferenceDataError
from .quarters import quarter_label

if TYPE_CHECKING:  # the readers of CMS files are loaded by an import only, not by a lookup
    from .sources import ParsedSource

MANIFEST = "manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class SourceInfo:
    """One CMS file in a store, as `scrubber data list` shows it."""

    kind: str
    setting: str
    effective_from: dt.date
    effective_to: dt.date
    rows: int
    flagged: int  # crosswalk rows CMS published inconsistently (sources.INCONSISTENT)
    digest: str  # sha256 of the CMS file as published
    content_digest: str  # sha256 of the table kept (uncompressed)
    source: str  # the CMS file's name
    file: str  # the table's file in the store
    store: Path

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.setting, self.effective_from.isoformat())

    @property
    def quarter(self) -> str:
        return quarter_label(self.effective_from)

    @property
    def title(self) -> str:
        """ "ASP pricing", "MUE table, outpatient hospital services"."""
        return KINDS[self.kind] + (f", {SETTINGS[self.setting]}" if self.setting else "")

    def as_manifest(self) -> dict[str, object]:
        return {"kind": self.kind, "setting": self.setting, "effective_from": self.effective_from.isoformat(),
                "effective_to": self.effective_to.isoformat(), "rows": self.rows, "flagged": self.flagged,
                "digest": self.digest, "content_digest": self.content_digest, "source": self.source,
                "file": self.file}


def render_table(kind: str, rows: list[tuple[str, ...]]) -> bytes:
    """The table as CSV, one row a line (a line break inside a cell becomes a space), so a lookup
    can index the lines and parse only the rows it needs."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[kind])
    writer.writerows(tuple(" ".join(cell.splitlines()) for cell in row) for row in rows)
    return out.getvalue().encode("utf-8")


def read_manifest(store: Path) -> list[SourceInfo]:
    """The sources of a store; an empty list for a directory that holds no store yet. A store
    directory that does not exist is an error (a mistyped SCRUBBER_DATA must not pass unseen)."""
    path = store / MANIFEST
    if not store.is_dir():
        raise ReferenceDataError(str(store), "no such reference data store (a directory)")
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ReferenceDataError(str(path), f"store format {document.get('format')!r}, expected {FORMAT}")
        return [
            SourceInfo(e["kind"], e["setting"], dt.date.fromisoformat(e["effective_from"]),
                       dt.date.fromisoformat(e["effective_to"]), int(e["rows"]), int(e["flagged"]), e["digest"],
                       e["content_digest"], e["source"], e["file"], store)
            for e in document["sources"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReferenceDataError(str(path), f"not a reference data manifest ({exc})") from None


def read_table(info: SourceInfo) -> list[dict[str, str]]:
    """The rows of one source as dicts, checked against the digest the manifest recorded."""
    columns = COLUMNS[info.kind]
    return [dict(zip(columns, row, strict=True)) for row in read_rows(info)]


def read_rows(info: SourceInfo) -> list[list[str]]:
    """The rows of one source in COLUMNS order, checked against the digest the manifest recorded."""
    return list(csv.reader(read_lines(info)))


def read_lines(info: SourceInfo, compressed: bytes | None = None) -> list[str]:
    """The table's data lines (one row each, see render_table), checked against the manifest's
    digest and columns; `compressed` is the table file's bytes when the caller has read them."""
    path = info.store / info.file
    try:
        data = gzip.decompress(path.read_bytes() if compressed is None else compressed)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ReferenceDataError(str(path), f"cannot be read ({exc})") from None
    if hashlib.sha256(data).hexdigest() != info.content_digest:
        raise ReferenceDataError(str(path), "its content does not match the manifest's digest (a damaged store)")
    lines = data.decode("utf-8").split("\n")
    if lines[0] != ",".join(COLUMNS[info.kind]):
        raise ReferenceDataError(str(path), f"columns {lines[0]!r}, expected {','.join(COLUMNS[info.kind])!r}")
    return [line for line in lines[1:] if line]


def _inconsistent(flags: str) -> bool:
    return any(flag in INCONSISTENT for flag in flags.split(";"))


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared store from its other users
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_sources(store: Path, parsed: list[ParsedSource], *, from_scratch: bool = False,
                ) -> list[tuple[SourceInfo, SourceInfo | None]]:
    """Write the sources into the store (created if need be); returns each new source with the one
    it replaced, if any. The later of two sources with the same kind and quarter wins. With
    `from_scratch`, the store holds only these sources afterwards (in one step: the manifest's rename)."""
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReferenceDataError(str(store), f"cannot be created ({exc.strerror or exc})") from None
    current = {} if from_scratch else {info.key: info for info in read_manifest(store)}
    changes: list[tuple[SourceInfo, SourceInfo | None]] = []
    try:
        for source in parsed:
            table = render_table(source.kind, source.rows)
            content_digest = hashlib.sha256(table).hexdigest()
            setting = f"-{source.setting}" if source.setting else ""
            name = f"{source.kind}{setting}-{source.effective_from.isoformat()}-{content_digest[:12]}.csv.gz"
            if not (store / name).exists():
                _atomic_write(store / name, gzip.compress(table, compresslevel=9, mtime=0))
            flagged = sum(1 for row in source.rows if source.kind == "asp_crosswalk" and _inconsistent(row[-1]))
            info = SourceInfo(source.kind, source.setting, source.effective_from, source.effective_to,
                              len(source.rows), flagged, source.digest, content_digest, source.source, name, store)
            changes.append((info, current.get(info.key)))
            current[info.key] = info
        ordered = sorted(current.values(), key=lambda i: (i.kind, i.setting, i.effective_from))
        manifest = {"format": FORMAT, "sources": [i.as_manifest() for i in ordered]}
        _atomic_write(store / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    except OSError as exc:
        raise ReferenceDataError(str(store), f"cannot be written ({exc.strerror or exc})") from None
    named = {i.file for i in current.values()}
    for stale in store.glob("*.csv.gz"):  # tables a replaced source left behind (ours only)
        if stale.name not in named and stale.name.split("-", 1)[0] in KINDS:
            stale.unlink(missing_ok=True)
    return changes
