"""`scrubber data ...`: import CMS's reference files into a store, list what is loaded, check it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import cli
from .common import EXIT_USAGE

# scrubber.refdata is imported inside the commands: every other command (a one-claim scrub above
# all) starts without it. These two mirror it (a test keeps them equal).
DATA_ENV = "SCRUBBER_DATA"
FLAGS, INCONSISTENT = ("arithmetic", "implausible", "not-an-ndc", "unreadable"), ("arithmetic", "implausible",
                                                                                  "unreadable")


class DataProblem(click.ClickException):
    exit_code = EXIT_USAGE


def data_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--data DIR: a site's store (repeatable: later wins), after those in $SCRUBBER_DATA."""
    return click.option(
        "--data", "data_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
        help=f"A site's reference data store, on top of the shipped one (repeatable; later wins). "
             f"${DATA_ENV} names stores the same way, before these.",
    )(function)


def _open(data_dirs: tuple[Path, ...]):  # -> scrubber.refdata.ReferenceData
    from ..refdata import ReferenceData

    return ReferenceData.open(data_dirs)


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@cli.group()
def data() -> None:
    """Reference data from CMS: import its quarterly files, list what is loaded, check it."""


@data.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "store", type=click.Path(file_okay=False, path_type=Path),
              help=f"The store to import into (created if need be); default: the last store in ${DATA_ENV}.")
@click.option("--effective", callback=_date, metavar="YYYY-MM-DD",
              help="The quarter of files that do not state it (OPPS Addendum B names only its year, MUE tables "
                   "no date) when their name does not say it either.")
@click.option("--from-scratch", is_flag=True, help="Empty the store first (the shipped store is built so).")
def data_import(files: tuple[Path, ...], store: Path | None, effective: dt.date | None, from_scratch: bool) -> None:
    """Import CMS files as CMS publishes them (CSV, Excel workbook, the HCPCS file in fixed columns, or
    the zip they come in: its CSVs, else its workbooks, else its text files): the ASP NDC-HCPCS
    crosswalk, ASP pricing, the HCPCS file, OPPS Addendum B, MUE tables (practitioner, outpatient
    hospital). Each file is recognised by its content; a file of a quarter already in the store
    replaces it. Nothing is written unless every file can be read (exit 2 otherwise).
    """
    from ..refdata import ReferenceDataError, add_sources, read_files

    if store is None:
        from_env = [p for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
        if not from_env:
            raise DataProblem(f"name the store to import into: --data DIR (or set ${DATA_ENV})")
        store = Path(from_env[-1])
    try:
        parsed, skipped = read_files(list(files), effective)
        changes = add_sources(store, parsed, from_scratch=from_scratch)
    except ReferenceDataError as exc:
        raise DataProblem(str(exc)) from None
    for note in skipped:
        click.echo(note, err=True)
    for info, replaced in changes:
        note = f", replaces {replaced.source}" if replaced else ""
        click.echo(f"{store}: {info.title}, {info.quarter} ({info.effective_from} to {info.effective_to}): "
                   f"{info.rows} rows, {info.flagged} inconsistent, from {info.source}{note}")


@data.command("list")
@data_option
def data_list(data_dirs: tuple[Path, ...]) -> None:
    """List the files loaded: kind, quarter, effective dates, rows, inconsistent rows, digest, source, store."""
    from ..refdata import ReferenceDataError

    reference = _open(data_dirs)
    try:
        sources = reference.sources
    except ReferenceDataError as exc:
        raise DataProblem(str(exc)) from None
    header = ("file", "quarter", "effective", "rows", "inconsistent", "digest", "source", "store")
    rows = [header] + [
        (info.title, info.quarter, f"{info.effective_from} to {info.effective_to}", str(info.rows), str(info.flagged),
         info.digest[:12], info.source, "built-in" if info.store == reference.stores[0] else str(info.store))
        for info in sources
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@data.command("check")
@data_option
@click.option("--flag", "flags", multiple=True, type=click.Choice(FLAGS),
              help=f"List rows with this flag (repeatable); default: {', '.join(INCONSISTENT)}.")
@click.option("--quarter", help='Only this quarter ("October 2025").')
def data_check(data_dirs: tuple[Path, ...], flags: tuple[str, ...], quarter: str | None) -> None:
    """Check every table against its digest, and list the crosswalk rows CMS published
    inconsistently (BILLUNITS x PKG QTY != BILLUNITSPKG, implausible or unreadable values). Such
    rows never drive an error. Exit 0 when the store is whole, 2 when a table is damaged.
    """
    from ..refdata import ReferenceDataError

    reference = _open(data_dirs)
    try:
        sources = reference.verify()
        found = reference.flagged_rows(flags or INCONSISTENT)
    except ReferenceDataError as exc:
        raise DataProblem(str(exc)) from None
    shown = 0
    for info, item in found:
        if quarter is not None and info.quarter.lower() != quarter.strip().lower():
            continue
        shown += 1
        click.echo(f"{info.quarter} {info.source}: {item.hcpcs} {item.ndc} {item.drug_name.strip()} ({item.labeler}): "
                   f"BILLUNITS {_number(item.billing_units_per_item)} x PKG QTY {_number(item.package_quantity)}, "
                   f"BILLUNITSPKG {_number(item.billing_units_per_package)}: " + "; ".join(item.problems))
    click.echo(f"{len(sources)} files checked, {shown} rows flagged", err=True)


def _number(value: object) -> str:
    return "?" if value is None else f"{value}"
