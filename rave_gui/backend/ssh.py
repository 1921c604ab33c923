"""Reach another machine with the system's OpenSSH client and rsync.

The person's own ``ssh`` is used, so their ``~/.ssh/config``, keys, agent, jump
hosts and known hosts work as in their terminal (or, with ``ssh_config``, the
file given, passed as ``-F``). Every call goes through one multiplexed
connection (``ControlMaster=auto``, a ``ControlPath`` in a private folder of the
app, ``ControlPersist``), so a poll costs one round trip, not a new login.
``BatchMode=yes``: nothing ever waits for a password or a question, and no
password is stored anywhere. Host keys are checked as ssh always does: an
unknown key is shown with its fingerprint for the person to accept
(``accept_host_key``); ``StrictHostKeyChecking=no`` is never used.

Argv lists only. The one shell string sent to the host is built by
``remote_shell`` (``remote_scripts`` composes them, every piece quoted with
``shlex.quote``). rsync's ``-e`` value is a command line in rsync's own
quoting, built by ``rsync_rsh``.

Plain Python (no Qt).
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SSH = "ssh"
RSYNC = "rsync"
#: seconds ssh waits for the TCP connection (and rsync's ssh too)
CONNECT_TIMEOUT = 10
#: seconds the master connection stays up after its last user
CONTROL_PERSIST = 60
#: the longest unix socket path that works everywhere (macOS: 104 bytes with the NUL)
MAX_SOCKET_PATH = 103
#: what ssh adds to the control folder: "/" + %C (40 hex digits), and while it binds,
#: a temporary name with "." + 16 random characters
SOCKET_NAME_LENGTH = 1 + 40 + 17
#: free space a work folder should have (checkpoints are a few hundred MB each)
MIN_FREE_BYTES = 2 * 1024 ** 3
_HOST_RE = re.compile(r"^[A-Za-z0-9_.%\[\]:-]+$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")


class SSHError(RuntimeError):
    """A command on the host could not be run; the message is a sentence."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "",
                 connection: bool = False):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr
        #: the connection failed (ssh's own exit code 255): try again later
        self.connection = connection


# -- quoting -----------------------------------------------------------------------------
def sh_quote(text: str) -> str:
    """One word for a POSIX shell (``shlex.quote``)."""
    return shlex.quote(str(text))


def sh_path(path: str) -> str:
    """A path for the host's shell: quoted, with a leading ``~`` or ``~/`` meaning
    the remote home (``"$HOME"``), which quoting alone would keep literal."""
    path = str(path)
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        rest = path[2:]
        return '"$HOME"/' + sh_quote(rest) if rest else '"$HOME"/'
    return sh_quote(path)


def sh_join(argv) -> str:
    return " ".join(sh_quote(a) for a in argv)


def rsync_word(text: str) -> str:
    """One word of rsync's ``-e`` command line. rsync splits it on spaces itself,
    honouring single and double quotes (not backslashes); a quote inside a quoted
    word is doubled."""
    text = str(text)
    if text and not re.search(r"[\s'\"\\]", text):
        return text
    return "'" + text.replace("'", "''") + "'"


def ssh_option_value(value: str) -> str:
    """A value for ``ssh -o Key=value``: ssh splits it like a config line, so one
    holding spaces (``Application Support``) is double-quoted."""
    value = str(value)
    if '"' in value:
        raise ValueError(f"{value!r} cannot be passed to ssh (it holds a double quote).")
    return f'"{value}"' if re.search(r"\s", value) else value


# -- where the master connections live ------------------------------------------------------
def control_dir(data_dir: str | os.PathLike) -> Path:
    """A private folder (0700) for the master connections' sockets: ``<data>/ssh``,
    or, when that path is too long for a unix socket, a short one in /tmp named
    after the data folder."""
    data_dir = Path(data_dir)
    folder = data_dir / "ssh"
    if len(str(folder).encode()) + SOCKET_NAME_LENGTH > MAX_SOCKET_PATH:
        digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:10]
        base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
        folder = base / f"rave-gui-{os.getuid() if hasattr(os, 'getuid') else 0}-{digest}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(folder, 0o700)
        if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
            raise OSError(f"{folder} belongs to another user")
    except OSError as exc:
        raise SSHError(f"The folder for SSH connections {folder} cannot be used ({exc}). "
                       "Choose another data folder with --data-dir.") from exc
    return folder


# -- the target ---------------------------------------------------------------------------
def parse_host(text: str) -> tuple[str, str | None, int | None]:
    """``alias``, ``host``, ``user@host`` or ``user@host:port`` -> (host, user, port);
    ``ValueError`` with a sentence when it is none of them."""
    text = (text or "").strip()
    if not text:
        raise ValueError("Enter the host: an alias from ~/.ssh/config, or user@host[:port].")
    user = None
    if "@" in text:
        user, text = text.rsplit("@", 1)
        if not _USER_RE.match(user):
            raise ValueError(f"{user!r} is not a user name ssh accepts.")
    port = None
    if text.count(":") == 1:
        text, port_text = text.split(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{port_text!r} is not a port number (1 to 65535).")
        port = int(port_text)
    if not text or text.startswith("-") or not _HOST_RE.match(text):
        raise ValueError(f"{text!r} is not a host name ssh accepts (letters, digits, dots and dashes; "
                         "it cannot start with a dash).")
    return text, user, port


@dataclass(frozen=True)
class SSHTarget:
    """Where commands run: ``host`` (an alias or a name), optionally ``user``, ``port``
    and an ssh config file (``-F``), with the app's master connections in
    ``control_path_dir``."""
    host: str
    user: str | None = None
    port: int | None = None
    ssh_config: str | None = None
    control_path_dir: str | None = None
    connect_timeout: int = CONNECT_TIMEOUT
    extra_options: tuple = field(default=())

    def __post_init__(self):
        parse_host(self.host if not self.user else f"{self.user}@{self.host}")
        if self.port is not None and not (isinstance(self.port, int) and 0 < self.port < 65536):
            raise ValueError(f"{self.port!r} is not a port number (1 to 65535).")

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def describe(self) -> str:
        return self.destination + (f":{self.port}" if self.port else "")

    def options(self, multiplex: bool = True) -> list[str]:
        """ssh's options for this target, without the program name and destination."""
        opts: list[str] = []
        if self.ssh_config:
            opts += ["-F", str(Path(self.ssh_config).expanduser())]
        if self.port:
            opts += ["-p", str(self.port)]
        opts += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.connect_timeout)}",
                 "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]
        if not multiplex:
            opts += ["-o", "ControlPath=none"]  # a fresh login, not one riding a master
        elif self.control_path_dir:
            opts += ["-o", "ControlMaster=auto",
                     "-o", "ControlPath=" + ssh_option_value(str(Path(self.control_path_dir) / "%C")),
                     "-o", f"ControlPersist={CONTROL_PERSIST}"]
        for option in self.extra_options:
            opts += ["-o", option]
        return opts

    def ssh_argv(self, remote_command: str | None = None, multiplex: bool = True) -> list[str]:
        argv = [SSH, *self.options(multiplex), "--", self.destination]
        if remote_command is not None:
            argv.append(remote_command)
        return argv

    def control_argv(self, command: str) -> list[str]:
        """``ssh -O check|exit`` for this target's master connection."""
        return [SSH, *self.options(True), "-O", command, "--", self.destination]

    def rsync_rsh(self) -> str:
        """rsync's ``-e`` value: ssh with this target's options (no destination:
        rsync adds it)."""
        return " ".join(rsync_word(w) for w in [SSH, *self.options(True)])

    def remote(self, path: str) -> str:
        """``host:path`` for rsync (paths travel with ``-s``, not through a shell)."""
        return f"{self.destination}:{path}"

    def rsync_argv(self, *args: str) -> list[str]:
        return [RSYNC, "-e", self.rsync_rsh(), "-s", *args]

    # -- running ---------------------------------------------------------------------------
    def run(self, script: str, timeout: float = 60.0, check: bool = True,
            input_text: str | None = None) -> subprocess.CompletedProcess:
        """Run a POSIX shell ``script`` on the host (``remote_shell``); stdout and
        stderr as text. ``SSHError`` (``connection=True`` when ssh itself failed)."""
        argv = self.ssh_argv(remote_shell(script))
        return run_local(argv, timeout=timeout, check=check, input_text=input_text, target=self)

    def master_pid(self) -> int | None:
        """The pid of this target's master connection, or None."""
        try:
            out = subprocess.run(self.control_argv("check"), capture_output=True, text=True, timeout=10,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        match = re.search(r"pid=(\d+)", out.stderr + out.stdout)
        return int(match.group(1)) if match else None

    def close_master(self) -> None:
        try:
            subprocess.run(self.control_argv("exit"), capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            pass

    def test_connection(self, python: str, work_dir: str, **kwargs) -> list:
        """The checks of ``connection_check.test_connection`` for this target."""
        from rave_gui.backend.connection_check import test_connection
        return test_connection(self, python, work_dir, **kwargs)

    test_connection.__test__ = False

    def effective_config(self) -> dict[str, list[str]]:
        """``ssh -G``: the settings ssh really uses for this target (hostname,
        port, known hosts files, ...), keys lowercased."""
        argv = [SSH, "-G", *self.options(False), "--", self.destination]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SSHError(f"ssh could not read its configuration for {self.describe()} ({exc}).") from exc
        if out.returncode != 0:
            raise SSHError(f"ssh could not read its configuration for {self.describe()}: "
                           f"{last_line(out.stderr)}", stderr=out.stderr)
        config: dict[str, list[str]] = {}
        for line in out.stdout.splitlines():
            key, _, value = line.partition(" ")
            config.setdefault(key.lower(), []).append(value)
        return config


def remote_shell(script: str) -> str:
    """THE shell string: what ssh sends to the host's login shell, which runs the
    POSIX ``script`` with ``sh -c``. Callers build ``script`` from quoted words
    (``sh_quote``, ``sh_path``, ``sh_join``)."""
    return "sh -c " + sh_quote(script)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_local(argv: list[str], timeout: float, check: bool = True, input_text: str | None = None,
              target: SSHTarget | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise SSHError(f"{argv[0]} is not installed on this computer. Install OpenSSH "
                       "(openssh-client) and rsync.") from exc
    except subprocess.TimeoutExpired as exc:
        where = target.describe() if target else "the host"
        raise SSHError(f"{where} did not answer within {timeout:.0f} s.", connection=True) from exc
    if check and result.returncode != 0:
        raise command_error(result, target)
    return result


def command_error(result: subprocess.CompletedProcess, target: SSHTarget | None) -> SSHError:
    where = target.describe() if target else "the host"
    stderr = result.stderr or ""
    if result.returncode == 255:
        return SSHError(explain_ssh_failure(stderr, where), returncode=255, stderr=stderr, connection=True)
    return SSHError(f"A command on {where} failed (exit code {result.returncode}): {last_line(stderr)}",
                    returncode=result.returncode, stderr=stderr)


# -- what went wrong, in a sentence ---------------------------------------------------------------
def classify_ssh_failure(stderr: str) -> str:
    """The kind of failure ssh's messages describe: 'resolve', 'refused', 'timeout',
    'unreachable', 'closed', 'hostkey-unknown', 'hostkey-changed', 'auth', or 'other'."""
    text = stderr or ""
    low = text.lower()
    if "remote host identification has changed" in low or "host key for" in low and "has changed" in low:
        return "hostkey-changed"
    if "host key verification failed" in low or re.search(r"no \S+ host key is known", low):
        return "hostkey-unknown"
    if "could not resolve hostname" in low or "name or service not known" in low:
        return "resolve"
    if "connection refused" in low:
        return "refused"
    if "timed out" in low:
        return "timeout"
    if "no route to host" in low or "network is unreachable" in low:
        return "unreachable"
    if "permission denied" in low or "too many authentication failures" in low:
        return "auth"
    if "connection closed" in low or "connection reset" in low or "kex_exchange_identification" in low \
            or "broken pipe" in low:
        return "closed"
    return "other"


def explain_ssh_failure(stderr: str, where: str) -> str:
    kind = classify_ssh_failure(stderr)
    detail = last_line(stderr)
    return {
        "resolve": f"The host name of {where} could not be found ({detail}). Check its spelling, "
                   "or the alias in your ~/.ssh/config.",
        "refused": f"Nothing answers on {where} (connection refused). Check the host and port, "
                   "and that the SSH server runs there.",
        "timeout": f"{where} did not answer (the connection timed out). Check that the machine is on "
                   "and reachable from this network (VPN?).",
        "unreachable": f"{where} cannot be reached from this network ({detail}).",
        "closed": f"{where} closed the connection ({detail}). The SSH server may refuse this computer, "
                  "or the network dropped.",
        "hostkey-unknown": f"The host key of {where} is not known yet. Test the connection on the "
                           "Machines page to see its fingerprint and accept it.",
        "hostkey-changed": f"The host key of {where} has CHANGED since it was accepted: this may be an "
                           "attack, or the machine was reinstalled. Ask its administrator, then remove "
                           "the old key from your known_hosts file (ssh-keygen -R HOST).",
        "auth": f"{where} refused the login: it accepts none of your keys ({detail}). Add your public "
                "key to ~/.ssh/authorized_keys there (ssh-copy-id), or load the key in your ssh agent "
                "(a key with a passphrase needs the agent: the app never asks for passwords).",
    }.get(kind, f"ssh to {where} failed: {detail or 'no message'}.")


# -- host keys ---------------------------------------------------------------------------------
@dataclass
class HostKey:
    """The keys a host presents, for the person to accept."""
    lines: list[str]                 # known_hosts lines, as they will be written
    fingerprints: list[str]          # "SHA256:... (ED25519)"
    known_hosts: Path                # the file ssh reads for this target


def scan_host_key(target: SSHTarget, timeout: int = 5) -> HostKey:
    """The host's public keys (``ssh-keyscan``) and their fingerprints
    (``ssh-keygen -lf -``), with the known_hosts lines ssh would look for."""
    config = target.effective_config()
    hostname = config.get("hostname", [target.host])[0]
    port = int(config.get("port", ["22"])[0])
    alias = config.get("hostkeyalias", [None])[0]
    known_hosts = first_known_hosts(config.get("userknownhostsfile", ["~/.ssh/known_hosts"])[0])
    try:
        scan = subprocess.run(["ssh-keyscan", "-p", str(port), "-T", str(timeout), "--", hostname],
                              capture_output=True, text=True, timeout=timeout + 10, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise SSHError("ssh-keyscan is not installed on this computer (it comes with OpenSSH).") from exc
    except subprocess.TimeoutExpired as exc:
        raise SSHError(f"{target.describe()} did not send its host key in time.") from exc
    lines = [ln.strip() for ln in scan.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise SSHError(f"The host key of {target.describe()} could not be fetched "
                       f"({last_line(scan.stderr) or 'no answer'}). Connect once with ssh in a "
                       "terminal to accept it (it may sit behind a jump host).")
    name = alias or (hostname if port == 22 else f"[{hostname}]:{port}")
    lines = [" ".join([name, *ln.split()[1:]]) for ln in lines]
    finger = subprocess.run(["ssh-keygen", "-lf", "-"], input="\n".join(lines) + "\n", capture_output=True,
                            text=True, timeout=10)
    fingerprints = []
    for ln in finger.stdout.splitlines():
        parts = ln.split()
        if len(parts) >= 3:
            fingerprints.append(f"{parts[1]} {parts[-1]}")
    if not fingerprints:
        raise SSHError(f"The host key of {target.describe()} could not be read "
                       f"({last_line(finger.stderr)}).")
    return HostKey(lines, fingerprints, known_hosts)


def first_known_hosts(value: str) -> Path:
    """The first file of ``ssh -G``'s ``userknownhostsfile`` line: several paths
    separated by spaces, unquoted, although a path may hold spaces itself: the
    longest prefix whose folder exists wins."""
    words = value.split(" ")
    for end in range(len(words), 0, -1):
        candidate = Path(os.path.expanduser(" ".join(words[:end])))
        if candidate.parent.is_dir():
            return candidate
    return Path(os.path.expanduser(words[0] or "~/.ssh/known_hosts"))


def accept_host_key(key: HostKey) -> Path:
    """Append the keys the person saw (and accepted) to the known_hosts file ssh
    uses for this target; returns that file."""
    path = key.known_hosts
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    with open(path, "a", encoding="utf-8") as fh:
        if existing and not existing.endswith("\n"):
            fh.write("\n")
        for line in key.lines:
            if line not in existing:
                fh.write(line + "\n")
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    return path


def local_rsync_problem() -> str | None:
    """Why this computer's rsync cannot be used (missing, or older than 3.1), or None."""
    try:
        out = subprocess.run([RSYNC, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "rsync is not installed on this computer. Install it (apt install rsync, brew install rsync)."
    match = re.search(r"version\s+(\d+)\.(\d+)", out.stdout)
    if not match or (int(match.group(1)), int(match.group(2))) < (3, 1):
        return ("This computer's rsync is too old or not the real rsync (openrsync); the app needs "
                "rsync 3.1 or newer (brew install rsync on macOS).")
    return None
