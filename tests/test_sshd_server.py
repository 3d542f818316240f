"""The throw-away OpenSSH server of sshd_server.py, proven against the real sftp client and paramiko."""

from __future__ import annotations

import os
import threading
import time

import pytest
import sshd_server
from sshd_server import SshdServer, generate_keypair, known_hosts_line, quote
from sshd_server import sshd as sshd_fixture  # noqa: F401  (the fixture is named "sshd"; an alias keeps F811 quiet)


def test_server_runs_as_this_user_on_loopback(sshd):
    assert sshd.host == "127.0.0.1" and 0 < sshd.port < 65536
    assert sshd.banner.startswith(b"SSH-2.0-OpenSSH_")
    assert sshd.process.poll() is None
    assert sshd.root.is_dir() and sshd.root.is_relative_to(sshd.directory)
    assert sshd.private_key.is_file() and sshd.known_hosts.is_file()
    assert sshd.known_hosts.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")


def test_missing_openssh_server_skips_with_a_clear_reason(monkeypatch):
    monkeypatch.setattr(sshd_server, "find_sshd", lambda: None)
    assert sshd_server.missing_reason() == sshd_server.SKIP_REASON
    with pytest.raises(pytest.skip.Exception, match="Debian package openssh-server is not installed"):
        sshd_server.require_sshd()


def test_directory_with_blanks_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must not contain blanks"):
        SshdServer(tmp_path / "a b")


def test_sftp_session_starts_in_root(sshd):
    result = sshd.sftp(["pwd"])
    assert f"Remote working directory: {sshd.root}\n" in result.stdout


def test_put_lands_under_root_with_the_same_bytes(sshd, tmp_path):
    data = os.urandom(5000) + b"ISA*00*~\r\n"
    local = tmp_path / "claims.837"
    local.write_bytes(data)
    (sshd.root / "in").mkdir()
    sshd.sftp([f"put {quote(local)} in/claims.837", f"put {quote(local)} {quote(sshd.root / 'abs.837')}"])
    assert (sshd.root / "in" / "claims.837").read_bytes() == data  # a relative path: under root
    assert (sshd.root / "abs.837").read_bytes() == data  # an absolute path: the same path on disk


def test_a_failing_batch_command_fails_the_batch(sshd):
    with pytest.raises(AssertionError, match="sftp exited 1"):
        sshd.sftp(["ls no-such-dir"])
    assert sshd.sftp(["ls no-such-dir"], check=False).returncode == 1


@pytest.mark.parametrize("resume", ["reput", "put -a"])
def test_upload_in_two_pieces_resumes(sshd, tmp_path, resume):
    data = os.urandom(64 * 1024 + 123)
    half = len(data) // 2
    local = tmp_path / "batch.837"
    local.write_bytes(data[:half])
    sshd.sftp([f"put {quote(local)} batch.837"])
    remote = sshd.root / "batch.837"
    assert remote.read_bytes() == data[:half]  # the watcher would see only a partial file

    # Spoil the local first half: a resumed upload sends only what is past the remote size, so the
    # remote file still comes out whole; a full re-upload would copy the zeros.
    local.write_bytes(bytes(half) + data[half:])
    sshd.sftp([f"{resume} {quote(local)} batch.837"])
    assert remote.read_bytes() == data


def test_throttled_upload_grows_visibly(sshd, tmp_path):
    data = os.urandom(48 * 1024)
    local = tmp_path / "slow.837"
    local.write_bytes(data)
    remote = sshd.root / "slow.837"
    sizes: list[int] = []
    done = threading.Event()

    def poll():
        while not done.is_set():
            try:
                size = remote.stat().st_size
            except FileNotFoundError:
                size = None
            if size is not None and (not sizes or sizes[-1] != size):
                sizes.append(size)
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    began = time.monotonic()
    try:
        sshd.sftp([f"put {quote(local)} slow.837"], limit_kbit=160)  # 20 KB/s: about 2.4 s
    finally:
        done.set()
        poller.join(timeout=5)
    elapsed = time.monotonic() - began
    assert remote.read_bytes() == data
    partial = [s for s in sizes if 0 < s < len(data)]
    assert len(set(partial)) >= 2, f"sizes seen: {sizes}"
    assert sizes == sorted(sizes), f"the remote file shrank: {sizes}"
    assert elapsed > 1.0, f"the limit did not throttle: {elapsed:.2f}s"


def test_sftp_refuses_a_different_host_key(sshd, tmp_path):
    other = generate_keypair(tmp_path / "other_host_key", "impostor")
    wrong = tmp_path / "known_hosts_wrong"
    wrong.write_text(known_hosts_line(sshd.host, sshd.port, other))
    result = sshd.sftp(["pwd"], known_hosts=wrong, check=False)
    assert result.returncode != 0
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert "Host key verification failed" in result.stderr


def test_sftp_refuses_an_unknown_host(sshd, tmp_path):
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    result = sshd.sftp(["pwd"], known_hosts=empty, check=False)
    assert result.returncode != 0
    assert "Host key verification failed" in result.stderr


def test_two_servers_do_not_share_anything(sshd):
    with SshdServer() as other:
        assert other.port != sshd.port
        assert other.known_hosts.read_text().split()[2] != sshd.known_hosts.read_text().split()[2]
        # the other server's key does not open this one
        assert sshd.sftp(["pwd"], known_hosts=other.known_hosts, check=False).returncode != 0
    assert other.process is None and not other.directory.exists()


# --- paramiko, as the watcher will use it -----------------------------------------------------


def paramiko_client(server, known_hosts=None):
    paramiko = pytest.importorskip("paramiko")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(server.host, port=server.port, username=server.username, key_filename=str(server.private_key),
                   look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    return client


def test_paramiko_lists_and_renames(sshd, tmp_path):
    (sshd.root / "in").mkdir()
    (sshd.root / "in" / "a.837").write_bytes(b"ISA*first~")
    local = tmp_path / "b.837"
    local.write_bytes(b"ISA*second~")
    sshd.sftp([f"put {quote(local)} in/b.837"])

    client = paramiko_client(sshd)
    try:
        sftp = client.open_sftp()
        assert sftp.normalize(".") == str(sshd.root)
        assert sorted(sftp.listdir("in")) == ["a.837", "b.837"]
        attrs = {a.filename: a.st_size for a in sftp.listdir_attr("in")}
        assert attrs == {"a.837": 10, "b.837": 11}
        sftp.mkdir("work")
        sftp.rename("in/a.837", "work/a.837")
        sftp.posix_rename("in/b.837", str(sshd.root / "work" / "b.837"))
        with sftp.open("work/b.837", "rb") as fh:
            assert fh.read() == b"ISA*second~"
        sftp.close()
    finally:
        client.close()
    assert sorted(p.name for p in (sshd.root / "work").iterdir()) == ["a.837", "b.837"]
    assert list((sshd.root / "in").iterdir()) == []


def test_paramiko_refuses_a_wrong_host_key(sshd, tmp_path):
    paramiko = pytest.importorskip("paramiko")
    wrong = tmp_path / "known_hosts_wrong"
    wrong.write_text(known_hosts_line(sshd.host, sshd.port, generate_keypair(tmp_path / "other", "impostor")))
    with pytest.raises(paramiko.BadHostKeyException):
        paramiko_client(sshd, known_hosts=wrong)


def test_paramiko_refuses_an_unknown_host(sshd, tmp_path):
    paramiko = pytest.importorskip("paramiko")
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        paramiko_client(sshd, known_hosts=empty)


def test_stop_ends_open_sessions(tmp_path):
    with sshd_server.running_sshd(tmp_path / "srv") as server:
        client = paramiko_client(server)
        try:
            sessions = sshd_server._descendants(server.process.pid)
            assert sessions, "no per-connection sshd process"
            server.stop()
            assert server.process is None
            assert not [pid for pid in sessions if os.path.exists(f"/proc/{pid}") and not sshd_server._zombie(pid)]
        finally:
            client.close()
