"""The watcher against a real OpenSSH server on loopback: files uploaded with the real sftp
client, slowly and in pieces, are taken only when complete; remote mode scrubs them on the server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import SAMPLES
from sshd_server import sshd as sshd_fixture  # noqa: F401  (the fixture, registered as "sshd")

DEFECTS_P = (SAMPLES / "defects_837p.837").read_bytes()
CLEAN_I = (SAMPLES / "clean_837i.837").read_bytes()


def url(server) -> str:
    return f"sftp://{server.username}@{server.host}:{server.port}{server.root}"


def watch_args(server, *more: str) -> list[str]:
    return [sys.executable, "-m", "scrubber", "watch", url(server), "--identity", str(server.private_key),
            "--known-hosts", str(server.known_hosts), "--journal", str(server.directory / "journal.sqlite"),
            "--settle", "0.5", "--poll", "0.2", "--outputs", "corrected,rejected,json", *more]


def remote_files(server, folder: str) -> list[str]:
    base = server.root / folder
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) if base.exists() else []


def upload(server, local: Path, remote: str, **options) -> None:
    server.sftp([f"-mkdir {'inbox'}", f'put "{local}" "{remote}"'], **options)


def test_remote_mode_scrubs_files_on_the_server(sshd, tmp_path):
    local = tmp_path / "defects.837"
    local.write_bytes(DEFECTS_P)
    upload(sshd, local, "inbox/defects.837")
    done = subprocess.run(watch_args(sshd, "--once"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outbox = remote_files(sshd, "outbox")
    assert len(outbox) == 3 and all(p.startswith("defects.837.") for p in outbox)
    [report] = [p for p in outbox if p.endswith(".json")]
    assert json.loads((sshd.root / "outbox" / report).read_text())["summary"]["claims"] == 52
    assert [p.split("/")[1] for p in remote_files(sshd, "archive")] == ["defects.837"]
    assert remote_files(sshd, "inbox") == [] and remote_files(sshd, "work") == []


def test_remote_mode_with_jobs_scrubs_several_files_at_once(sshd, tmp_path):
    """--jobs 2 on an SFTP root: the next files are taken and copied here while one is finished."""
    commands = ["-mkdir inbox"]
    for n in range(4):
        local = tmp_path / f"f{n}.837"
        local.write_bytes(DEFECTS_P.replace(b"CLM*", b"CLM*R%d" % n))  # other content: no duplicates
        commands.append(f'put "{local}" "inbox/f{n}.837"')
    sshd.sftp(commands)
    done = subprocess.run(watch_args(sshd, "--once", "--jobs", "2"), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    log = done.stderr.splitlines()
    first = next(n for n, line in enumerate(log) if " published " in line)
    assert sum(" taken " in line for line in log[:first]) >= 2  # taken ahead, in flight together
    folders = {p.split("/")[0] for p in remote_files(sshd, "outbox")}
    assert sorted(f.rsplit(".", 1)[0] for f in folders) == [f"f{n}.837" for n in range(4)]
    for report in (sshd.root / "outbox").glob("*/*.report.json"):
        assert json.loads(report.read_text())["summary"]["claims"] == 52
    assert remote_files(sshd, "inbox") == [] and remote_files(sshd, "work") == []


def test_a_file_uploaded_in_pieces_is_taken_only_when_complete(sshd, tmp_path):
    local = tmp_path / "claims.837"
    local.write_bytes(DEFECTS_P[: len(DEFECTS_P) // 2])
    upload(sshd, local, "inbox/claims.837")
    first = subprocess.run(watch_args(sshd, "--once"), capture_output=True, text=True, timeout=120)
    assert "waiting file=claims.837" in first.stderr
    assert remote_files(sshd, "inbox") == ["claims.837"] and remote_files(sshd, "outbox") == []
    local.write_bytes(DEFECTS_P)
    sshd.server = None
    sshd.sftp([f'reput "{local}" "inbox/claims.837"'])
    second = subprocess.run(watch_args(sshd, "--once"), capture_output=True, text=True, timeout=120)
    assert "published file=claims.837" in second.stderr
    [report] = [p for p in remote_files(sshd, "outbox") if p.endswith(".json")]
    assert json.loads((sshd.root / "outbox" / report).read_text())["summary"]["claims"] == 52


def test_a_slow_upload_is_not_taken_half_way(sshd, tmp_path):
    """A throttled upload of a large file while the watcher runs: it waits for the whole of it."""
    big = DEFECTS_P.replace(b"SE*", b"SE*", 1)
    local = tmp_path / "slow.837"
    local.write_bytes(big)
    sshd.sftp(["-mkdir inbox"])
    watcher = subprocess.Popen(watch_args(sshd), stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        uploader = threading.Thread(target=sshd.sftp, args=([f'put "{local}" "inbox/slow.837"'],),
                                    kwargs={"limit_kbit": 40})
        started = time.monotonic()
        uploader.start()
        uploader.join(timeout=120)
        upload_seconds = time.monotonic() - started
        deadline = time.monotonic() + 60
        while not remote_files(sshd, "archive") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watcher.terminate()
        _, err = watcher.communicate(timeout=60)
    assert upload_seconds > 1.5, "the upload was meant to be slow"
    assert remote_files(sshd, "error") == [], err
    [report] = [p for p in remote_files(sshd, "outbox") if p.endswith(".json")]
    assert json.loads((sshd.root / "outbox" / report).read_text())["summary"]["claims"] == 52
    assert err.count("taken file=slow.837") == 1


def test_the_host_key_is_checked(sshd, tmp_path):
    other = tmp_path / "known_hosts"
    other.write_text(f"[{sshd.host}]:{sshd.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    args = watch_args(sshd, "--once")
    args[args.index("--known-hosts") + 1] = str(other)
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "host key" in done.stderr.lower()


def test_a_dropped_connection_is_retried(sshd, tmp_path):
    local = tmp_path / "after.837"
    local.write_bytes(CLEAN_I)
    sshd.sftp(["-mkdir inbox"])
    watcher = subprocess.Popen(watch_args(sshd), stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        sshd.stop()  # the server goes away under the watcher...
        time.sleep(2.0)
        assert sshd._launch()  # ...and comes back on the same port, with the same keys
        upload(sshd, local, "inbox/after.837")
        deadline = time.monotonic() + 90
        while not remote_files(sshd, "archive") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        watcher.terminate()
        _, err = watcher.communicate(timeout=60)
    assert "connection lost" in err, err
    assert [p.split("/")[1] for p in remote_files(sshd, "archive")] == ["after.837"], err


def test_symlink_on_the_sftp_server_is_never_followed(sshd, tmp_path):
    """Links on the server (to a file outside the root, or to nothing) and a FIFO, which would hang
    the server's sftp process in open(): each is moved to error/ unopened; the real file goes on."""
    secret = tmp_path / "outside.837"  # patient names, outside the drop root
    secret.write_bytes(CLEAN_I)
    local = tmp_path / "good.837"
    local.write_bytes(DEFECTS_P)
    upload(sshd, local, "inbox/good.837")
    inbox = sshd.root / "inbox"
    (inbox / "link.837").symlink_to(secret)
    (inbox / "dangling.837").symlink_to(tmp_path / "nowhere.837")
    os.mkfifo(inbox / "pipe.837")
    done = subprocess.run(watch_args(sshd, "--once"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    error = sshd.root / "error"
    assert (error / "link.837").is_symlink() and (error / "dangling.837").is_symlink()
    assert stat.S_ISFIFO((error / "pipe.837").lstat().st_mode)
    for name, kind in (("link.837", "symbolic link"), ("dangling.837", "symbolic link"), ("pipe.837", "FIFO")):
        assert f"a {kind}, not a regular file" in (error / f"{name}.reason.txt").read_text()
        assert done.stderr.count(f"error file={name}") == 1
    outbox = remote_files(sshd, "outbox")
    assert outbox and all(p.startswith("good.837.") for p in outbox)
    assert "DOE" not in "".join((sshd.root / "outbox" / p).read_text() for p in outbox if p.endswith(".json"))
    assert os.listdir(inbox) == []


def test_an_unknown_host_key_fails_at_once(sshd, tmp_path):
    """A server whose key is not in known_hosts at all (not a changed key): refused at once, exit
    2, not retried for half a minute as if the connection had dropped."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = watch_args(sshd, "--once")
    args[args.index("--known-hosts") + 1] = str(empty)
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert time.monotonic() - started < 15
    assert "not in" in done.stderr and "known_hosts" in done.stderr and "connection lost" not in done.stderr
