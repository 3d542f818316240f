"""`scrubber watch`: the drop-folder watcher, on local folders or an SFTP server."""

from __future__ import annotations

import errno
import hashlib
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import click

from ..output.files import DEFAULT_OUTPUTS
from ..output.parallel import one_malloc_arena, usable_cores
from ..rules.engine import FixMode
from ..x12.guide import DEFAULT_VALIDATOR
from . import cli
from .common import describe, jobs_option, load, rules_option, validator_option
from .scrub_command import parse_outputs

if TYPE_CHECKING:  # the watcher's modules load when `scrubber watch` runs, not with every command
    from ..watch import EventLog, Journal
    from ..watch.storage import Storage

DEFAULT_STATE = Path("~/.local/state/scrubber")


class WatchSetupProblem(click.ClickException):
    exit_code = 2


def _storage(root: str, identity: Path | None, known_hosts: Path | None, log: EventLog) -> tuple[Storage, Path]:
    """The storage for ROOT, and where its journal lives by default."""
    from ..watch import LocalStorage
    from ..watch.storage import AccessRefused

    if root.startswith("sftp://"):
        from ..watch.sftp import SftpStorage  # paramiko loads only for remote mode

        url = urlparse(root)
        if not url.hostname or not url.username:
            raise click.BadParameter("an SFTP root reads sftp://user@host[:port]/path", param_hint="ROOT")
        try:
            storage = SftpStorage(url.hostname, url.port or 22, url.username, unquote(url.path) or ".",
                                  identity=identity, known_hosts=known_hosts, log=log)
        except AccessRefused as exc:  # a host key or a login refused: no point in trying again
            log.event("cannot start", root=root, problem=str(exc))
            raise WatchSetupProblem(f"cannot connect to {root}: {exc}") from None
        except Exception as exc:  # paramiko's and the socket's: say what, where, and stop
            log.event("cannot start", root=root, problem=f"{type(exc).__name__}: {exc}")
            raise WatchSetupProblem(f"cannot connect to {root}: {type(exc).__name__}: {exc}") from None
        # The journal stays on this machine: one per remote root.
        key = hashlib.sha256(root.encode()).hexdigest()[:12]
        return storage, DEFAULT_STATE.expanduser() / f"journal-{url.hostname}-{key}.sqlite"
    local = Path(root)
    try:
        local.mkdir(parents=True, exist_ok=True)
        if not local.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
    except OSError as exc:
        log.event("cannot start", root=root, problem=f"{type(exc).__name__}: {exc.strerror or exc}")
        raise WatchSetupProblem(f"cannot start: the root {root} cannot be made: {exc.strerror or exc}") from None
    return LocalStorage(local), local / ".scrubber-journal.sqlite"


def _journal(path: Path, log: EventLog) -> Journal:
    from ..watch import Journal

    try:
        return Journal(path)
    except (OSError, sqlite3.Error) as exc:
        log.event("cannot start", journal=str(path), problem=f"{type(exc).__name__}: {exc}")
        raise WatchSetupProblem(f"cannot start: the journal {path} cannot be opened: {exc}") from None


def _stop_at_once(_signum: int, _frame: object) -> None:
    raise SystemExit(130)


@cli.command()
@click.argument("root")
@click.option("--once", is_flag=True, help="Process what is in the inbox now, then exit (for cron and tests).")
@click.option("--settle", type=float, default=5.0, show_default=True,
              help="Seconds a file's size and time must hold before it is taken.")
@click.option("--stale", type=float, default=600.0, show_default=True,
              help="Seconds after which a file that never became a whole interchange goes to error/.")
@click.option("--poll", type=float, default=2.0, show_default=True, help="Seconds between looks at the inbox.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The journal (SQLite). Default: ROOT/.scrubber-journal.sqlite, or for an SFTP root "
                   "~/.local/state/scrubber/journal-HOST-….sqlite on this machine.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="One line per event on standard error, as text or JSON.")
@click.option("--outputs", "outputs_value", metavar="LIST",
              help=f"Which outputs to write for each file (default: {','.join(DEFAULT_OUTPUTS)}).")
@click.option("--redact", is_flag=True, help="Leave patient names out of the HTML reports.")
@click.option("--no-fix", is_flag=True, help="Report fixes without applying them.")
@click.option("--unsafe-fixes", is_flag=True, help="Apply unsafe fixes too.")
@rules_option
@click.option("--inbox", default="inbox", show_default=True, help="Folder names under ROOT, if not these.")
@click.option("--work", default="work", show_default=True)
@click.option("--outbox", default="outbox", show_default=True)
@click.option("--archive", default="archive", show_default=True)
@click.option("--error", "error_folder", default="error", show_default=True)
@click.option("--identity", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SFTP: the private key to log in with (default: ssh's usual keys).")
@click.option("--known-hosts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SFTP: the known_hosts file the server's key must be in (default: ~/.ssh/known_hosts).")
@click.option("--memory-limit", "memory_limit", default="auto", show_default=True, metavar="SIZE",
              help="Data each watcher process (the watcher, each worker) may use, e.g. 2G or 800M; a file whose scrub "
                   "needs more goes to ROOT/error with the reason, and the rest go on. auto: three quarters of the "
                   "machine's memory (or its control group's), shared among the processes; none: no limit.")
@validator_option
@jobs_option
def watch(root: str, once: bool, settle: float, stale: float, poll: float, journal_path: Path | None,
          log_format: str, outputs_value: str | None, redact: bool, no_fix: bool, unsafe_fixes: bool,
          rule_dirs: tuple[Path, ...], inbox: str, work: str, outbox: str, archive: str, error_folder: str,
          identity: Path | None, known_hosts: Path | None, memory_limit: str = "auto",
          validator: str = DEFAULT_VALIDATOR, jobs: int | None = None) -> None:
    """Watch ROOT (a folder, or sftp://user@host:port/path) for claim files and scrub each once.

    Files dropped in ROOT/inbox are taken when complete (unchanged for --settle seconds and a
    whole interchange, ISA ... IEA), scrubbed, their outputs published into ROOT/outbox/<name>.<token>/
    all at once, and the input archived in ROOT/archive/YYYYMMDD/. A file that cannot be scrubbed,
    or that repeats one already scrubbed, goes to ROOT/error with a .reason.txt beside it. With
    --jobs N > 1 (the default on several cores), small files are scrubbed whole in N worker
    processes, a few ahead of the one being finished; the outbox is the same for any N. SIGTERM
    or SIGINT finishes the files in hand (those taken ahead too) and stops; a second one stops at
    once. Only regular files are taken: links, FIFOs, devices and folders in the inbox go to
    ROOT/error unopened. Each process may use --memory-limit of data: a file whose scrub needs more
    (a claim of millions of lines) goes to ROOT/error, and the watcher goes on. Exit
    codes: 0 stopped, 2 a file could not be finished for an operational reason (it waits in
    work/), or the root, the journal or the SFTP server (host key, login) refused at start, 130
    stopped at once.
    """
    # Outside the run (setting up, closing) a signal stops at once, with the documented 130: the
    # run puts this handler back when it ends, so a late second signal cannot end a clean stop
    # as death by SIGINT while the journal closes.
    for stopping in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stopping, _stop_at_once)
    if no_fix and unsafe_fixes:
        raise click.UsageError("--no-fix and --unsafe-fixes contradict each other")
    from ..watch import EventLog, Layout, Watcher, WatchOptions
    from ..watch.log import pipeline_notes_in
    from ..watch.memory import apply_limit, default_limit, parse_limit

    try:
        wanted = parse_limit(memory_limit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--memory-limit") from None
    rules = load(rule_dirs)
    log = EventLog(sys.stderr, log_format)
    jobs = jobs or usable_cores()
    # Before any worker is forked: each inherits the limit (watch/memory.py says why).
    limit = apply_limit(default_limit(jobs) if wanted == "auto" else wanted)  # type: ignore[arg-type]
    if jobs > 1:
        # As the scrub command does, before any thread starts (the pool's, SFTP's): a long-running
        # watcher would otherwise keep an arena's pages for each of them.
        one_malloc_arena()
    storage, default_journal = _storage(root, identity, known_hosts, log)
    try:
        journal = _journal((journal_path or default_journal).expanduser(), log)
    except WatchSetupProblem:
        storage.close()
        raise
    options = WatchOptions(settle=settle, stale=stale, poll=poll, once=once, outputs=parse_outputs(outputs_value),
                           mode=FixMode.NONE if no_fix else FixMode.UNSAFE if unsafe_fixes else FixMode.SAFE,
                           redact=redact, validator=validator, jobs=jobs, memory_limit=limit)
    layout = Layout(inbox=inbox, work=work, outbox=outbox, archive=archive, error=error_folder)
    watcher = Watcher(storage, journal, rules, log, describe(rules), layout, options)
    try:
        with pipeline_notes_in(log):
            code = watcher.run()
        # Done, the exit code decided. Python puts its own handlers back to the default while it
        # shuts down, so a late signal would still kill it: ignore it instead.
        for late in (signal.SIGINT, signal.SIGTERM):
            signal.signal(late, signal.SIG_IGN)
    finally:
        journal.close()
        storage.close()
    sys.exit(code)
