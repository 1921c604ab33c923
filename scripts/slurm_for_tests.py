#!/usr/bin/env python3
"""A real single-node Slurm on 127.0.0.1, for the tests of cluster machines.

Everything lives in one temporary folder: a generated MUNGE key and the folder's
own ``munged`` (its socket, pid, seed and log files), a ``slurm.conf`` (this host
as the controller and the only node, at 127.0.0.1 on free ports, AuthInfo naming
our munge socket, state, spool, pid and log files in the folder, no cgroups, no
accounting), and the ``slurmctld`` and ``slurmd`` that read it. Nothing of the
machine's own Slurm or MUNGE (/etc/slurm, /etc/munge, /run/munge, system
services) is read, written or stopped. ``stop()`` ends every process this cluster
started: the daemons, the job steps (``slurmstepd``) and what the jobs run.

Clients reach it through ``SLURM_CONF``: ``env()`` gives it for a subprocess,
``shell_setup()`` is the line a (remote) shell runs first
(``export SLURM_CONF=...``); the conf names the munge socket, so nothing else is
needed. One partition, ``debug`` (``partition``), the default, no time limit.

As a script: ``python scripts/slurm_for_tests.py [FOLDER] [--cpus N]`` starts one,
prints how to reach it, and stops it on Ctrl-C (or SIGTERM).
"""
from __future__ import annotations

import getpass
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopback_services import (LoopbackService, add_descendants, end_processes, find_executable, find_processes,
                               free_port, interrupt_on_signals, serve_until_interrupted, service_folder, spawn_logged,
                               wait_until_listening)

#: set in the daemons' environment: one more way for stop() to know them
MARK_ENV = "RAVE_GUI_SLURM_TEST"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/opt/slurm/sbin", "/sbin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "sbatch", "squeue", "scontrol", "scancel")
#: a Unix socket's path must fit in sun_path (108 bytes with the NUL on Linux)
MAX_SOCKET_PATH = 100
#: variables of an enclosing Slurm job or of the user's shell that would steer our clients elsewhere
_CLIENT_VARS = re.compile(r"^(SLURM_|SBATCH_|SALLOC_|SRUN_|SQUEUE_|SINFO_|SCANCEL_|SCONTROL_)")


class SlurmUnavailable(RuntimeError):
    """The cluster cannot run here; the message says why."""


def find_program(name: str) -> str:
    """A Slurm or MUNGE program: on PATH, or in the usual sbin folders (not on a
    normal user's PATH)."""
    found = find_executable(name, SBIN_DIRS)
    if found:
        return found
    raise SlurmUnavailable(f"{name} is not installed (apt-get install slurmctld slurmd slurm-client munge; "
                           "scripts/setup.sh does it as root).")


def clean_environ() -> dict:
    """This process's environment without anything that steers Slurm clients (an
    enclosing job's SLURM_*, SBATCH_PARTITION, ...)."""
    return {k: v for k, v in os.environ.items() if not _CLIENT_VARS.match(k) and k != MARK_ENV}


class LoopbackSlurm(LoopbackService):
    def __init__(self, root: str | os.PathLike | None = None, partition: str = "debug", cpus: int | None = None):
        """``cpus``: the node's CPUs as Slurm counts them (one job takes one by
        default); None for the real count. More than the real count lets more jobs
        run at once (slurmd's ``config_overrides``)."""
        self.root = service_folder(root, "rave-gui-slurm-").resolve()
        self.user = getpass.getuser()
        self.partition = partition
        self.cpus = cpus
        self.cluster = "ravetest"
        self.node = socket.gethostname().split(".")[0]
        self.ctld_port = 0
        self.slurmd_port = 0
        self.programs: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.munge_dir = self.root / "munge"
        self.munge_key = self.munge_dir / "munge.key"
        self.munge_socket = self.munge_dir / "munge.socket"
        self.munge_log = self.munge_dir / "munged.log"
        self.munge_socket_path = self.munge_socket  # elsewhere when the folder's path is too long for a socket
        self._short_socket_dir: Path | None = None
        self.conf = self.root / "slurm.conf"
        self.plugstack = self.root / "plugstack.conf"
        self.state_dir = self.root / "state"
        self.spool_dir = self.root / "spool"
        self.log_dir = self.root / "log"
        self.slurmctld_log = self.log_dir / "slurmctld.log"
        self.slurmd_log = self.log_dir / "slurmd.log"
        self.work_dir = self.root / "jobs"
        self.startup_seconds = 0.0

    # -- for clients --------------------------------------------------------------------
    def env(self) -> dict:
        """What a client command needs in its environment (the conf names the munge socket)."""
        return {"SLURM_CONF": str(self.conf)}

    def client_env(self) -> dict:
        """A whole environment for a client subprocess: this one's, less whatever
        would steer Slurm elsewhere, plus ``env()``."""
        return dict(clean_environ(), **self.env())

    def shell_setup(self) -> str:
        """The POSIX shell line a (remote) shell runs before sinfo, sbatch, squeue, ..."""
        return f"export SLURM_CONF={shlex.quote(str(self.conf))}"

    def run(self, *argv: str, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
        """Run a client command (``run("sinfo", "-h")``) against this cluster; text output."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(list(argv), env=self.client_env(), timeout=timeout, **kwargs)

    # -- set up -------------------------------------------------------------------------
    def _node_config(self) -> str:
        """The node's hardware as slurmd sees it (``slurmd -C``), RealMemory a bit
        below the real one (a node with less memory than configured is drained)."""
        fields: dict[str, str] = {}
        try:
            out = subprocess.run([self.programs["slurmd"], "-C"], capture_output=True, text=True, timeout=30,
                                 env=clean_environ()).stdout
            first = out.splitlines()[0] if out.strip() else ""
            fields = dict(item.split("=", 1) for item in first.split() if "=" in item)
        except (OSError, subprocess.SubprocessError, ValueError):
            fields = {}
        keep = ["CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"]
        if not all(k in fields for k in keep):
            fields = dict(fields, CPUs=str(os.cpu_count() or 1))
            keep = ["CPUs"]
        if self.cpus and str(self.cpus) != fields["CPUs"]:
            fields["CPUs"] = str(self.cpus)
            keep = ["CPUs"]
        try:
            real_mb = int(fields["RealMemory"])
        except (KeyError, ValueError):
            import psutil
            real_mb = psutil.virtual_memory().total // (1024 * 1024)
        memory = max(1, min(real_mb - 256, int(real_mb * 0.9)))
        return " ".join([f"NodeName={self.node}", "NodeAddr=127.0.0.1", f"NodeHostname={self.node}",
                         *(f"{k}={fields[k]}" for k in keep), f"RealMemory={memory}", "State=UNKNOWN"])

    def _write_conf(self) -> None:
        def q(path) -> str:
            text = str(path)
            if any(c.isspace() for c in text) or '"' in text:
                raise SlurmUnavailable(f"slurm.conf cannot name a path with spaces or quotes: {text!r}")
            return text
        self.plugstack.write_text("")  # no SPANK plugins (not the system's plugstack.conf)
        true = shutil.which("true") or "/bin/true"
        self.conf.write_text("\n".join([
            "# written by scripts/slurm_for_tests.py: a single-node Slurm on 127.0.0.1 for tests",
            f"ClusterName={self.cluster}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",  # bind 127.0.0.1, not every address
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={q(self.munge_socket_path)}",
            f"SlurmUser={self.user}",
            f"SlurmdUser={self.user}",
            f"StateSaveLocation={q(self.state_dir)}",
            f"SlurmdSpoolDir={q(self.spool_dir)}",
            f"SlurmctldPidFile={q(self.log_dir / 'slurmctld.pid')}",
            f"SlurmdPidFile={q(self.log_dir / 'slurmd.pid')}",
            f"SlurmctldLogFile={q(self.slurmctld_log)}",
            f"SlurmdLogFile={q(self.slurmd_log)}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"PlugStackConfig={q(self.plugstack)}",
            f"MailProg={q(true)}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill",
            # schedule at once on submit (the default waits up to 3 s between batch jobs)
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
            "MinJobAge=3600",  # scontrol show job still knows a finished job for an hour
            "KillWait=2",
            "InactiveLimit=0",
            "ReturnToService=2",
            *(["SlurmdParameters=config_overrides"] if self.cpus else []),  # the conf's CPUs, not the real ones
            self._node_config(),
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    def _make_folders(self) -> None:
        for folder in (self.state_dir, self.spool_dir, self.log_dir, self.work_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # munged insists that everyone may pass through its socket's folder
        self.munge_dir.mkdir(exist_ok=True)
        os.chmod(self.munge_dir, 0o755)
        self.munge_socket_path = self.munge_socket
        if len(str(self.munge_socket)) > MAX_SOCKET_PATH:  # a deep test folder: the socket goes to /tmp
            self._short_socket_dir = Path(tempfile.mkdtemp(prefix="rave-munge-", dir="/tmp"))
            os.chmod(self._short_socket_dir, 0o755)
            self.munge_socket_path = self._short_socket_dir / "munge.socket"

    def _make_key(self) -> None:
        if self.munge_key.exists():
            return
        mungekey = find_executable("mungekey", SBIN_DIRS)
        made = False
        if mungekey:
            made = subprocess.run([mungekey, "--create", "--keyfile", str(self.munge_key)], capture_output=True,
                                  timeout=30).returncode == 0
        if not made:
            fd = os.open(self.munge_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(1024))
        os.chmod(self.munge_key, 0o400)

    def _daemon_env(self) -> dict:
        return dict(clean_environ(), SLURM_CONF=str(self.conf), **{MARK_ENV: str(self.root)})

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        proc = spawn_logged(argv, self.log_dir / f"{name}.stderr", env=self._daemon_env(), cwd=self.root)
        self.processes[name] = proc
        return proc

    def _check_alive(self, what: str) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise SlurmUnavailable(f"{name} exited (status {proc.returncode}) while {what}:\n{self.log_tail()}")

    def _start_munged(self) -> None:
        sock = self.munge_socket_path
        self._spawn("munged", [self.programs["munged"], "--foreground", "--force",
                               f"--socket={sock}", f"--key-file={self.munge_key}",
                               f"--pid-file={self.munge_dir / 'munged.pid'}",
                               f"--seed-file={self.munge_dir / 'munged.seed'}",
                               f"--log-file={self.munge_log}"])
        if wait_until_listening(sock, lambda: self._check_alive("starting munged"), connect_timeout=1):
            return
        raise SlurmUnavailable(f"munged did not open its socket {sock}:\n{self.log_tail()}")

    def _wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive("waiting for the node")
            try:
                out = self.run("sinfo", "-h", "-N", "-p", self.partition, "-o", "%N %T", timeout=10)
                last = (out.stdout + out.stderr).strip()
                if out.returncode == 0 and f"{self.node} idle" in out.stdout.split("\n"):
                    return
            except subprocess.TimeoutExpired:
                last = "sinfo timed out"
            time.sleep(0.2)
        raise SlurmUnavailable(f"node {self.node} did not become idle in {timeout:.0f} s "
                               f"(sinfo: {last or 'nothing'}):\n{self.log_tail()}")

    def start(self) -> "LoopbackSlurm":
        if os.name != "posix" or not sys.platform.startswith("linux"):
            raise SlurmUnavailable("the loopback Slurm needs Linux")
        began = time.monotonic()
        for name in (*DAEMONS, *CLIENTS):
            self.programs[name] = find_program(name)
        self._make_folders()
        self._make_key()
        last = ""
        for _attempt in range(3):  # a free port may be taken before the daemons bind it
            try:
                self._start_munged()
                self.ctld_port = free_port()
                self.slurmd_port = free_port(avoid=(self.ctld_port,))
                self._write_conf()
                self._spawn("slurmctld", [self.programs["slurmctld"], "-D", "-f", str(self.conf)])
                self._spawn("slurmd", [self.programs["slurmd"], "-D", "-f", str(self.conf), "-N", self.node])
                self._wait_idle()
                self.startup_seconds = time.monotonic() - began
                return self
            except (SlurmUnavailable, OSError, subprocess.SubprocessError) as exc:
                last = str(exc) if isinstance(exc, SlurmUnavailable) else f"{exc!r}\n{self.log_tail()}"
                self.stop(keep_socket_dir=True)
                if "Address already in use" not in last:
                    break
            except BaseException:
                self.stop()
                raise
        self._remove_socket_dir()
        raise SlurmUnavailable(last)

    def log_tail(self, n: int = 15) -> str:
        """The last lines of each daemon's log (and of what it wrote before its log opened)."""
        parts = []
        for path in (self.log_dir / "munged.stderr", self.munge_log, self.log_dir / "slurmctld.stderr",
                     self.slurmctld_log, self.log_dir / "slurmd.stderr", self.slurmd_log):
            try:
                lines = path.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                continue
            if lines:
                parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- stop ----------------------------------------------------------------------------
    def _daemons(self) -> list:
        """Our daemons: the ones started here, anything whose command line names our
        conf or munge socket or whose environment carries our mark, and their
        children (slurmctld's slurmscriptd)."""
        found = find_processes(pids=[proc.pid for proc in self.processes.values()], names=DAEMONS,
                               cmdline_marks=(str(self.conf), f"--socket={self.munge_socket_path}"),
                               env_mark=(MARK_ENV, str(self.root)))
        return list(add_descendants(found).values())

    def _job_processes(self) -> list:
        """Our job steps and what they run: every ``slurmstepd`` that holds a file or
        socket of this folder (its slurmd log, its spool socket), their descendants,
        and any job process that left them (its SLURM_CONF is ours, it has a job id)."""
        import psutil
        root = str(self.root) + os.sep
        steps, found = {}, {}
        for proc in psutil.process_iter(["name"]):
            try:
                if proc.pid == os.getpid():
                    continue
                if (proc.info["name"] or "").startswith("slurmstepd"):
                    paths = [f.path for f in proc.open_files()]
                    try:
                        conns = getattr(proc, "net_connections", None) or proc.connections
                        paths += [c.laddr for c in conns(kind="unix") if isinstance(c.laddr, str)]
                    except (psutil.Error, OSError):
                        pass
                    if any(p.startswith(root) for p in paths):
                        steps[proc.pid] = proc
                    continue
                env = proc.environ()
                if env.get("SLURM_CONF") == str(self.conf) and "SLURM_JOB_ID" in env:
                    found[proc.pid] = proc
            except (psutil.Error, OSError):
                continue
        return list({**add_descendants(steps), **found}.values())

    def _cancel_jobs(self) -> None:
        ctld = self.processes.get("slurmctld")
        if ctld is None or ctld.poll() is not None or "squeue" not in self.programs:
            return
        try:
            out = self.run("squeue", "-h", "-o", "%A", timeout=10)
            ids = out.stdout.split() if out.returncode == 0 else []
            if ids:
                self.run("scancel", *ids, timeout=10)
                deadline = time.monotonic() + 8  # KillWait=2: the steps end by themselves
                while time.monotonic() < deadline and self._job_processes():
                    time.sleep(0.1)
        except (OSError, subprocess.SubprocessError):
            pass

    def _remove_socket_dir(self) -> None:
        if self._short_socket_dir is not None:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)
            self._short_socket_dir = None

    def stop(self, keep_socket_dir: bool = False) -> None:
        """Cancel every job, end the job steps and what they run, then slurmd,
        slurmctld and munged. The folder stays (logs, job output)."""
        self._cancel_jobs()
        end_processes(self._job_processes())
        daemons = self._daemons()
        munged = [p for p in daemons if self._is_munged(p)]
        end_processes([p for p in daemons if p not in munged], grace=10)  # slurm first: it needs munge to stop
        end_processes(self._job_processes())  # a step that slurmd started while stopping
        end_processes(munged + [p for p in self._daemons() if p not in munged])
        for proc in self.processes.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.processes = {}
        if not keep_socket_dir:
            self._remove_socket_dir()

    def _is_munged(self, proc) -> bool:
        try:
            return proc.name() == "munged"
        except Exception:  # noqa: BLE001 (gone)
            return False


def main() -> int:
    interrupt_on_signals()  # stop cleanly on Ctrl-C, kill or a closed terminal
    import argparse
    parser = argparse.ArgumentParser(description="A single-node Slurm on 127.0.0.1 in a folder, until Ctrl-C.")
    parser.add_argument("folder", nargs="?", help="where everything lives (default: a new temp folder)")
    parser.add_argument("--cpus", type=int, help="CPUs the node offers to jobs (default: the real count)")
    args = parser.parse_args()
    cluster = LoopbackSlurm(args.folder, cpus=args.cpus)
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        print(f"slurm_for_tests: {exc}", file=sys.stderr)
        return 1
    print(f"slurm on 127.0.0.1 (controller port {cluster.ctld_port}, slurmd port {cluster.slurmd_port}), "
          f"up in {cluster.startup_seconds:.1f} s (folder {cluster.root})")
    print(f"  node {cluster.node}, partition {cluster.partition}")
    print(f"  {cluster.shell_setup()}; sinfo")
    serve_until_interrupted(lambda: all(p.poll() is None for p in cluster.processes.values()), cluster.stop,
                            lambda: print(f"slurm_for_tests: a daemon exited:\n{cluster.log_tail()}", file=sys.stderr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
