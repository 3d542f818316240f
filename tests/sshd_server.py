"""A throw-away OpenSSH server on loopback, for tests that need a REAL SFTP server.

    from sshd_server import quote, sshd   # sshd: the fixture (function-scoped)

    def test_drop(sshd, tmp_path):          # ruff F811 on this line? import it as `sshd as sshd_fixture`
        local = tmp_path / "a.837"
        local.write_bytes(b"ISA*...")
        sshd.sftp([f"put {quote(local)} a.837"])   # the real OpenSSH `sftp` client
        assert (sshd.root / "a.837").read_bytes() == b"ISA*..."

What it runs: Debian's `/usr/sbin/sshd` (package openssh-server) in the foreground (`-D`) as the
current user, listening on 127.0.0.1 on a free port, with its own sshd_config in a temp directory
(nothing under /etc/ssh is read): a fresh ed25519 host key, a fresh ed25519 user key whose public half
is the only line of the AuthorizedKeysFile, public-key authentication only, `StrictModes no`,
`UsePAM no`, and `Subsystem sftp internal-sftp -d <root>`. It logs to `<tmp>/sshd.log` (`-E`).

Paths: the SFTP session starts in `server.root` (internal-sftp's `-d` start directory), so a RELATIVE
remote path, from the `sftp` client or from paramiko, lands under `server.root`. There is no chroot
(ChrootDirectory needs a root-owned path chain): an ABSOLUTE remote path is the same path on this
machine's disk, e.g. `server.root / "in" / "a.837"` is also `str(server.root / "in" / "a.837")`.

Run as root, OpenSSH 9.x needs its privilege-separation directory `/run/sshd` (compiled in; a package
install creates it at boot through tmpfiles.d, a container usually lacks it) and the `sshd` user;
`start()` creates the directory (root-owned, 0755) when it is missing. As an ordinary user there is
no privilege separation and the server can only log in that same user, which is all the tests need;
but with UsePAM no, sshd refuses an account whose password is locked ("!" in /etc/shadow, as for
accounts made with `adduser --disabled-password`): pass use_pam=True for such a user (not as root).

Host keys are checked for real: `server.known_hosts` holds the server's key for `[127.0.0.1]:PORT`,
and the helpers use StrictHostKeyChecking=yes with that file only. For paramiko:

    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(server.host, port=server.port, username=server.username,
                   key_filename=str(server.private_key), look_for_keys=False, allow_agent=False)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

SKIP_REASON = "Debian package openssh-server is not installed; .ci/run installs it"
CLIENT_SKIP_REASON = "Debian package openssh-client (ssh-keygen, sftp) is not installed; .ci/run installs it"
PRIVSEP_DIR = Path("/run/sshd")  # OpenSSH's _PATH_PRIVSEP_CHROOT_DIR on Debian
PRIVSEP_USER = "sshd"
START_TIMEOUT = 15.0  # seconds for sshd to accept connections and send its banner
SFTP_TIMEOUT = 120.0  # seconds for one `sftp` batch


def find_program(name: str, *extra_dirs: str) -> str | None:
    """`name` on PATH, else in one of `extra_dirs` (sbin is often not on an ordinary user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_sshd() -> str | None:
    # sshd re-executes itself for each connection and insists on an absolute path.
    found = find_program("sshd", "/usr/sbin", "/usr/local/sbin", "/sbin")
    return str(Path(found).resolve()) if found else None


def find_ssh_keygen() -> str | None:
    return find_program("ssh-keygen", "/usr/bin", "/usr/local/bin")


def find_sftp() -> str | None:
    return find_program("sftp", "/usr/bin", "/usr/local/bin")


def missing_reason() -> str | None:
    """Why an sshd cannot be started here (a skip reason), or None when it can."""
    if find_sshd() is None:
        return SKIP_REASON
    if find_ssh_keygen() is None or find_sftp() is None:
        return CLIENT_SKIP_REASON
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PRIVSEP_USER)
        except KeyError:
            return f"the privilege-separation user {PRIVSEP_USER!r} is missing; reinstall openssh-server"
    return None


def require_sshd() -> None:
    """pytest.skip() with a clear reason when the OpenSSH server or client is not installed."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def generate_keypair(path: Path, comment: str = "scrubber-test") -> str:
    """A fresh unencrypted ed25519 key pair at `path` and `path`.pub; returns the public key line."""
    keygen = find_ssh_keygen()
    if keygen is None:
        raise RuntimeError(CLIENT_SKIP_REASON)
    path = Path(path)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return path.with_name(path.name + ".pub").read_text().strip()


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    """A known_hosts line for host:port ("[host]:port" unless port 22) and "type base64 [comment]"."""
    key_type, key_data = public_key.split()[:2]
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key_type} {key_data}\n"


def quote(path: str | os.PathLike) -> str:
    """A path quoted for an sftp batch command (spaces, quotes, backslashes)."""
    text = os.fspath(path)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _banner(host: str, port: int, timeout: float) -> bytes | None:
    """The SSH identification line the server sends, or None if it does not (yet) answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\n", 1)[0].strip() if data.startswith(b"SSH-") else None
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (per-connection sshd processes are in their own sessions)."""
    found = []
    try:
        # The process may end between being listed and being read: then it has no children.
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    result, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        result += kids
        todo += kids
    return result


class SshdServer:
    """One throw-away sshd. Use as a context manager, or start() and stop().

    Attributes: host, port, username, private_key (the client's ed25519 key; its .pub beside it),
    known_hosts, host_key (the server's private key; .pub beside it), root (the SFTP start directory),
    directory (the temp directory holding everything), config, log (sshd's -E log), process.
    """

    host = "127.0.0.1"

    def __init__(self, directory: str | os.PathLike | None = None, *, use_pam: bool = False):
        self.use_pam = use_pam
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="sshd-") if directory is None else directory).resolve()
        if any(ch.isspace() or ch in "\"'%\\" for ch in str(self.directory)):
            # internal-sftp's command line is split on blanks, and a -d that cannot be entered is not
            # fatal: the session would silently start in the home directory instead.
            raise ValueError(f"sshd directory must not contain blanks, quotes, % or backslashes: {self.directory}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.username = pwd.getpwuid(os.geteuid()).pw_name  # sshd logs in only the user it runs as
        self.root = self.directory / "root"
        self.host_key = self.directory / "ssh_host_ed25519_key"
        self.private_key = self.directory / "id_ed25519"
        self.authorized_keys = self.directory / "authorized_keys"
        self.known_hosts = self.directory / "known_hosts"
        self.config = self.directory / "sshd_config"
        self.log = self.directory / "sshd.log"
        self.stderr = self.directory / "sshd.stderr"
        self.pid_file = self.directory / "sshd.pid"
        self.port: int = 0
        self.banner: bytes | None = None
        self.startup_seconds: float | None = None
        self.process: subprocess.Popen | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, attempts: int = 5) -> SshdServer:
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        began = time.monotonic()
        self._prepare_privsep_dir()
        self.root.mkdir(exist_ok=True)
        self.host_public = generate_keypair(self.host_key, "scrubber-test-host")
        self.user_public = generate_keypair(self.private_key, f"{self.username}@scrubber-test")
        self.authorized_keys.write_text(self.user_public + "\n")
        for attempt in range(attempts):
            # The free port may be taken between our probe and sshd's bind: then try another.
            self.port = free_port(self.host)
            self._write_config()
            self.known_hosts.write_text(known_hosts_line(self.host, self.port, self.host_public))
            if self._launch():
                self.startup_seconds = time.monotonic() - began
                return self
            if "Address already in use" not in self.log_text() or attempt == attempts - 1:
                break
        raise RuntimeError(f"sshd did not start on {self.host}:{self.port}:\n{self.log_text()}")

    def stop(self) -> None:
        """Terminate sshd and any connection processes it forked (then kill what is left)."""
        process, self.process = self.process, None
        if process is None:
            return
        victims = _descendants(process.pid)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for pid in victims:  # our sshd's own children, by id (each runs in a session of its own)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while victims and time.monotonic() < deadline:
            victims = [pid for pid in victims if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
            time.sleep(0.05)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SshdServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- clients -----------------------------------------------------------------------------

    def ssh_options(self, known_hosts: str | os.PathLike | None = None) -> list[str]:
        """Options for OpenSSH clients: this key only, this known_hosts only, strict checking, no prompts."""
        kh = Path(known_hosts) if known_hosts is not None else self.known_hosts
        options = {
            "StrictHostKeyChecking": "yes",
            "UserKnownHostsFile": f'"{kh}"',  # a list of files separated by spaces, unless quoted
            "GlobalKnownHostsFile": "/dev/null",
            "UpdateHostKeys": "no",
            "BatchMode": "yes",
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "ControlMaster": "no",
            "ControlPath": "none",
            "ConnectTimeout": "10",
            "LogLevel": "ERROR",
        }
        # -F /dev/null: ignore ~/.ssh/config and /etc/ssh/ssh_config.
        args = ["-F", "/dev/null", "-i", str(self.private_key), "-P", str(self.port)]
        for key, value in options.items():
            args += ["-o", f"{key}={value}"]
        return args

    def sftp(self, commands: Sequence[str], *, limit_kbit: int | None = None, check: bool = True,
             known_hosts: str | os.PathLike | None = None, buffer_size: int | None = None,
             timeout: float = SFTP_TIMEOUT) -> subprocess.CompletedProcess:
        """Run the real `sftp` client in batch mode (`-b -`), the commands fed on stdin.

        The session starts in `self.root`, so relative remote paths land there. In batch mode sftp
        stops at the first failing command and exits non-zero (prefix a command with "-" to go on).
        limit_kbit throttles with `-l`; sftp only sleeps every buffer's worth of data, and its default
        32 KiB requests let a few hundred KiB through in one burst, so with a limit the request size
        drops to 4 KiB (`-B`) unless buffer_size says otherwise. known_hosts replaces the server's own
        known_hosts file (to test host-key checking). check=True raises on a non-zero exit, with the
        client's output and the end of sshd's log in the message.
        """
        sftp = find_sftp()
        if sftp is None:
            raise RuntimeError(CLIENT_SKIP_REASON)
        args = [sftp, "-b", "-", *self.ssh_options(known_hosts)]
        if limit_kbit is not None:
            args += ["-l", str(int(limit_kbit))]
            buffer_size = buffer_size or 4096
        if buffer_size is not None:
            args += ["-B", str(int(buffer_size))]
        args.append(f"{self.username}@{self.host}")
        script = "".join(c if c.endswith("\n") else c + "\n" for c in commands)
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "DISPLAY")}
        result = subprocess.run(args, input=script, capture_output=True, text=True, timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise AssertionError(
                f"sftp exited {result.returncode}\ncommands: {list(commands)}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}\nsshd log (end):\n{self.log_text()[-3000:]}")
        return result

    def log_text(self) -> str:
        parts = []
        for path in (self.log, self.stderr):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def __repr__(self) -> str:
        state = "running" if self.process and self.process.poll() is None else "stopped"
        return f"<SshdServer {self.username}@{self.host}:{self.port} root={self.root} {state}>"

    # --- internals ---------------------------------------------------------------------------

    def _prepare_privsep_dir(self) -> None:
        # As root, OpenSSH >= 7.5 fatal()s with "Missing privilege separation directory: /run/sshd";
        # the directory must be root-owned and not group/world-writable.
        if os.geteuid() != 0 or PRIVSEP_DIR.is_dir():
            return
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(PRIVSEP_DIR, 0o755)

    def _write_config(self) -> None:
        lines = [
            f"ListenAddress {self.host}:{self.port}",
            "AddressFamily inet",
            f'HostKey "{self.host_key}"',
            f'PidFile "{self.pid_file}"',
            f'AuthorizedKeysFile "{self.authorized_keys}"',
            "AuthorizedPrincipalsFile none",
            f"AllowUsers {self.username}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "PermitEmptyPasswords no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",  # the temp directory and keys are not under a home directory
            f"UsePAM {'yes' if self.use_pam else 'no'}",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "PermitTTY no",
            "DisableForwarding yes",
            "PermitUserEnvironment no",
            "LoginGraceTime 30",
            "MaxStartups 50:30:100",
            "LogLevel VERBOSE",
            f"Subsystem sftp internal-sftp -d {self.root}",  # unquoted: see __init__
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def _launch(self) -> bool:
        for path in (self.log, self.stderr, self.pid_file):
            path.unlink(missing_ok=True)
        sshd = find_sshd()
        assert sshd is not None
        with open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(
                [sshd, "-D", "-f", str(self.config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=self.directory)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            self.banner = _banner(self.host, self.port, timeout=1.0)
            if self.banner:
                return True
            time.sleep(0.02)
        self.stop()
        return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def running_sshd(directory: str | os.PathLike | None = None, **options) -> Iterator[SshdServer]:
    """A started SshdServer for the `with` block; skips the test when OpenSSH is not installed."""
    require_sshd()
    server = SshdServer(directory, **options)
    try:
        yield server.start()
    finally:
        server.cleanup()


def sshd_fixture(scope: str = "function", name: str = "sshd", **options):
    """A pytest fixture (of this scope and name) yielding a started SshdServer(**options).

    Its files live in a pytest temp directory (kept as pytest keeps them, for the log). The fixture
    is registered under `name` whatever the variable it is assigned to is called.
    """

    @pytest.fixture(scope=scope, name=name)
    def _fixture(tmp_path_factory):
        with running_sshd(tmp_path_factory.mktemp("sshd", numbered=True), **options) as server:
            yield server

    return _fixture


# A fresh server per test (starting one takes well under a second): tests can move, rename and
# delete files under sshd.root without seeing each other. For a module-wide server:
#     sshd_module = sshd_fixture(scope="module", name="sshd_module")
sshd = sshd_fixture()
