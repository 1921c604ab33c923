#!/usr/bin/env python3
"""A real OpenSSH server on 127.0.0.1, for the tests of remote machines.

Everything lives in one temporary folder: generated host and client keys, the
server's own sshd_config (ListenAddress 127.0.0.1, a free port, keys-only login
for the current user, PidFile and AuthorizedKeysFile in the folder), a client
config file with aliases that reach it (used through ``ssh -F``, so ``~/.ssh``
is never read or written), an empty known_hosts file, and a "remote" work
folder. Nothing of the machine's own sshd, /etc/ssh or ~/.ssh is touched
(OpenSSH's privilege separation needs the empty folder /run/sshd, created when
missing). ``stop()`` ends every process the server started.

Client aliases in ``client_config``:
  ``rave-test``        the server, with the authorised key
  ``rave-test-badkey`` the server, with a key it does not accept
  ``rave-test-closed`` a port where nothing listens

As a script: ``python scripts/sshd_for_tests.py [FOLDER]`` starts one, prints how
to reach it, and stops it on Ctrl-C.
"""
from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

from loopback_services import (LoopbackService, end_processes, find_executable, find_processes, free_port,
                               interrupt_on_signals, serve_until_interrupted, service_folder, spawn_logged,
                               wait_until_listening)

#: set in the server's environment (its per-connection processes keep it): how stop() finds them
MARK_ENV = "RAVE_GUI_SSHD_TEST"
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/opt/homebrew/sbin/sshd")


class SSHDUnavailable(RuntimeError):
    """The server cannot run here; the message says why."""


def find_sshd() -> str:
    """sshd: one of SSHD_CANDIDATES, else on PATH."""
    found = find_executable("sshd", (os.path.dirname(p) for p in SSHD_CANDIDATES), path_first=False)
    if found:
        return found
    raise SSHDUnavailable("sshd is not installed (apt-get install openssh-server; make test does it as root).")


class LoopbackSSHD(LoopbackService):
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = service_folder(root, "rave-gui-sshd-")
        self.user = getpass.getuser()
        self.port = 0
        self.closed_port = 0
        self.process: subprocess.Popen | None = None
        self.sshd = ""
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.client_key = self.root / "client_key"
        self.bad_key = self.root / "bad_client_key"
        self.authorized_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"
        self.client_config = self.root / "ssh_config"
        self.sshd_config = self.root / "sshd_config"
        self.pid_file = self.root / "sshd.pid"
        self.log_file = self.root / "sshd.log"
        self.work_dir = self.root / "remote-work"
        self.alias = "rave-test"

    # -- set up -------------------------------------------------------------------------
    def _keygen(self, path: Path) -> None:
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rave-gui-test",
                            "-f", str(path)], check=True, capture_output=True, timeout=60)

    def _write_configs(self) -> None:
        self.authorized_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        os.chmod(self.authorized_keys, 0o600)
        self.known_hosts.touch()
        self.sshd_config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey \"{self.host_key}\"",
            f"PidFile \"{self.pid_file}\"",
            f"AuthorizedKeysFile \"{self.authorized_keys}\"",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            f"AllowUsers {self.user}",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxSessions 64",
            "MaxStartups 64",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            "",
        ]))
        common = ["  HostName 127.0.0.1", f"  User {self.user}", "  IdentitiesOnly yes",
                  f"  UserKnownHostsFile \"{self.known_hosts}\"", "  GlobalKnownHostsFile /dev/null",
                  "  IdentityAgent none", "  PasswordAuthentication no", "  UpdateHostKeys no",
                  "  LogLevel ERROR"]
        self.client_config.write_text("\n".join([
            f"Host {self.alias}", f"  Port {self.port}", f"  IdentityFile \"{self.client_key}\"", *common, "",
            f"Host {self.alias}-badkey", f"  Port {self.port}", f"  IdentityFile \"{self.bad_key}\"", *common, "",
            f"Host {self.alias}-closed", f"  Port {self.closed_port}", f"  IdentityFile \"{self.client_key}\"",
            *common, "",
        ]))

    def start(self) -> "LoopbackSSHD":
        if os.name != "posix":
            raise SSHDUnavailable("the loopback sshd needs a POSIX system")
        self.sshd = find_sshd()
        for tool in ("ssh", "ssh-keygen", "ssh-keyscan", "rsync"):
            if shutil.which(tool) is None:
                raise SSHDUnavailable(f"{tool} is not installed (apt-get install openssh-client rsync).")
        for key in (self.host_key, self.client_key, self.bad_key):
            self._keygen(key)
        self.work_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
            try:
                Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
            except OSError as exc:
                raise SSHDUnavailable(f"/run/sshd (sshd's privilege separation folder) cannot be made: {exc}")
        self.closed_port = free_port()
        last = ""
        for _attempt in range(5):
            self.port = free_port(avoid=(self.closed_port,))
            self._write_configs()
            check = subprocess.run([self.sshd, "-t", "-f", str(self.sshd_config)], capture_output=True,
                                   text=True, timeout=30)
            if check.returncode != 0:
                raise SSHDUnavailable(f"sshd refuses its test configuration: {check.stderr.strip()}")
            try:
                self._launch()
                return self
            except SSHDUnavailable as exc:
                last = str(exc)
        raise SSHDUnavailable(last)

    def _launch(self) -> None:
        self.process = spawn_logged([self.sshd, "-D", "-e", "-f", str(self.sshd_config)], self.log_file,
                                    env=dict(os.environ, **{MARK_ENV: str(self.root)}))
        if wait_until_listening(self.port, self._check_alive):
            return
        self.stop_listener()
        raise SSHDUnavailable(f"sshd did not listen on port {self.port}: {self.log_tail()}")

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SSHDUnavailable(f"sshd exited at once: {self.log_tail()}")

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- helpers for tests ----------------------------------------------------------------
    def trust_host_key(self) -> None:
        """Write the server's key into the client's known_hosts (as if accepted)."""
        pub = Path(str(self.host_key) + ".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")

    def host_fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-lf", str(self.host_key) + ".pub"], capture_output=True,
                             text=True, check=True, timeout=30)
        return out.stdout.split()[1]

    def stop_listener(self) -> None:
        """End the listening server only: connections already open stay (a network
        outage for new connections, as when a host reboots its sshd)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart_listener(self) -> None:
        """Listen again, on the same port with the same keys."""
        self._launch()

    def _our_processes(self) -> list:
        """Every process of this server: the listener (its command line names our
        config), its per-connection processes (a socket on our port, or the
        listener's environment, which names this folder)."""
        import psutil
        serving = set()  # the per-connection processes hold a socket on our port
        try:
            for conn in psutil.net_connections(kind="tcp"):
                if conn.laddr and conn.laddr.port == self.port and conn.pid:
                    serving.add(conn.pid)
        except (psutil.Error, OSError):
            pass
        return list(find_processes(cmdline_marks=(str(self.sshd_config),), pids=serving,
                                   env_mark=(MARK_ENV, str(self.root))).values())

    def stop(self) -> None:
        """End the server and every connection it serves."""
        before = self._our_processes()
        self.stop_listener()
        end_processes(list({p.pid: p for p in before + self._our_processes()}.values()))


def main() -> int:
    interrupt_on_signals()  # stop cleanly on Ctrl-C, kill or a closed terminal
    server = LoopbackSSHD(sys.argv[1] if len(sys.argv) > 1 else None)
    try:
        server.start()
    except SSHDUnavailable as exc:
        print(f"sshd_for_tests: {exc}", file=sys.stderr)
        return 1
    print(f"sshd on 127.0.0.1:{server.port} (folder {server.root})")
    print(f"  ssh -F {server.client_config} {server.alias}")
    print(f"  remote work folder: {server.work_dir}")
    serve_until_interrupted(lambda: server.process is not None and server.process.poll() is None, server.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
