"""Where `scrubber scrub` reads and writes, checked before anything is scrubbed: an input must be a
claim file (a regular file or a FIFO), every output path one the scrubber may write (see
output/atomic.py), so a wrong path stops the run at once with exit 2 and nothing written."""

from __future__ import annotations

import stat
from pathlib import Path

import click

from ..output.atomic import OutputRefused, output_target
from ..output.files import KINDS, output_paths
from .exit_codes import EXIT_USAGE
from .terminal import printable


class OutputProblem(click.ClickException):
    """An output path that cannot be used: said before anything is scrubbed (exit 2)."""

    exit_code = EXIT_USAGE


def check_input(path: Path) -> None:
    """A claim file is a regular file or a FIFO (a pipe, e.g. `<(zcat x.gz)`), read as a stream."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise click.BadParameter(f"{printable(path)}: no such file", param_hint="INPUTS") from None
    except OSError as exc:
        raise click.BadParameter(f"{printable(path)}: {exc.strerror}", param_hint="INPUTS") from None
    if stat.S_ISDIR(mode):
        raise click.BadParameter(f"{printable(path)}: is a directory (name the claim files in it)",
                                 param_hint="INPUTS")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise click.BadParameter(f"{printable(path)}: is a device or a socket, not a claim file",
                                 param_hint="INPUTS")


def make_directory(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
        raise OutputProblem(f"{option} {printable(path)}: cannot create the directory: {reason}") from None


def prepare_outputs(kinds: tuple[str, ...], paths: list[Path], out_dir: Path | None,
                     report_path: Path | None) -> None:
    """Make the output directories and check every output path before anything is scrubbed, so a
    path that cannot be written (a link, a directory, under a file) stops the run at once (exit 2)."""
    with_report = report_path is not None and "json" in kinds
    if out_dir is not None:
        make_directory(out_dir, "--out")
    if with_report:
        make_directory(report_path.parent, "--report")  # type: ignore[union-attr]
    targets = [report_path] if with_report else []
    if out_dir is not None:
        stems = [(p.stem, p.suffix) for p in paths] or [("stdin", ".837")]
        for stem, suffix in stems:
            targets += output_paths(out_dir, stem, suffix, file_kinds(kinds, report_path, stdin=not paths)).values()
    for target in targets:
        try:
            output_target(target)  # type: ignore[arg-type]
        except OutputRefused as exc:
            raise OutputProblem(f"cannot write an output: {printable(exc)}") from None


def file_kinds(kinds: tuple[str, ...], report_path: Path | None, stdin: bool) -> tuple[str, ...]:
    """The outputs written into --out: not the JSON report when --report names its place, not the
    corrected file of standard input (it goes to standard output)."""
    return tuple(k for k in kinds if not (k == "json" and report_path is not None) and not (stdin and k == "corrected"))


def output_names(path: Path) -> tuple[str, str]:
    """p.837 gives p.corrected.837 and p.report.json."""
    return KINDS["corrected"].file_name(path.stem, path.suffix), KINDS["json"].file_name(path.stem, path.suffix)
