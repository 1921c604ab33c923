"""Train and export on another machine, over SSH (OpenSSH + rsync).

``RemoteTrainingProcess`` has the signals and attributes of ``TrainingProcess``
(it is one), so the ``RunController`` drives it the same way:

* **prepare** (in the thread): the machine's record, the dataset (a local one is
  copied with rsync to ``<work>/datasets/<name>-<fingerprint>``, incremental, with
  progress, and not at all when the host has it complete already; one registered
  by its path on the host is used as is), the launcher (copied once per version).
* **launch**: one ``ssh`` runs ``remote_scripts.launch_script``: the launcher in its
  own session on the host (``setsid``), output appended to the host's train.log;
  its pid, process group and start time are stored (``remote_runs``).
* **follow**: every ``sync_interval`` one ``rsync --append`` mirrors the new bytes of
  train.log, the event files and the checkpoint index (and the exit code file the
  host writes at the end) into the experiment's own folder; every ``status_interval``
  one ``ssh`` asks whether the process still runs (pid and start time: one killed
  hard writes no exit code). ``ProcessThread._follow`` reads the mirrored log as it would a local
  one; ``RunEventsFollower`` reads the mirrored event files. Every point comes from
  the files, with the readers' offsets: a dropped connection loses and doubles
  nothing. It says "reconnecting…" through ``warning`` and retries with backoff;
  the training goes on on the host.
* **stop**: SIGINT to the launcher on the host (its stop checkpoint), then SIGTERM,
  then SIGKILL to its process group, with the local timeouts. **resume** passes
  ``--ckpt`` with the host's run folder. The exit code comes from the host.
* **re-attach** (``attach_pid``): the stored pid *and* start time must match on the
  host; otherwise the run ended while the app was away and its files say how.

``self.pid`` stays None (it is a local pid for the controller); the host's is
``remote_pid``.

``RemoteExportProcess`` runs ``rave export`` on the host (through the launcher),
copies the ``.ts`` back with progress, and records it like ``ExportProcess``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path, PurePosixPath

from rave_gui.backend import rave_cli, remote_layout, remote_scripts
from rave_gui.backend import slurm as slurm_cli
from rave_gui.backend.checkpoints import REMOTE_LISTING
from rave_gui.backend.datasets import read_metadata
from rave_gui.backend.events import RunEventsFollower
from rave_gui.backend.export import ExportProcess, export_name
from rave_gui.backend.log_parsing import explain_failure, parse_launcher_line
from rave_gui.backend.machines import MachineManager, remote_run, save_remote_run
from rave_gui.backend.run_state import LIVE
from rave_gui.backend.ssh import (SSHError, SSHTarget, command_error, last_line, local_rsync_problem,
                                  remote_shell, run_local, sh_quote)
from rave_gui.backend.training_process import TrainingProcess
from rave_gui.core.timeutil import now

#: the exit code used when the host's process vanished without writing one (killed)
KILLED = -9
#: rsync exit codes that mean the connection (not a file) failed
_RSYNC_CONNECTION = {5, 10, 12, 30, 35, 255}
_PERCENT_RE = re.compile(rb"(\d{1,3})%")


class RemoteError(ValueError):
    """A remote step failed; the message is a sentence."""


def rsync(target: SSHTarget, args: list[str], timeout: float = 300.0) -> subprocess.CompletedProcess:
    """One rsync over the target's connection; ``SSHError`` (``connection=True``
    for a dropped or refused connection) when it fails."""
    result = run_local(target.rsync_argv(*args), timeout=timeout, check=False, target=target)
    if result.returncode in (0, 24):  # 24: a file vanished during the scan (RAVE replaced it)
        return result
    text = last_line(result.stderr)
    raise SSHError(f"rsync with {target.describe()} failed (exit code {result.returncode}): {text}",
                   returncode=result.returncode, stderr=result.stderr,
                   connection=result.returncode in _RSYNC_CONNECTION)


def rsync_with_progress(target: SSHTarget, args: list[str], report, cancelled=lambda: False) -> None:
    """rsync with ``--info=progress2``: ``report(percent)`` as it goes;
    ``cancelled()`` ends it (``RemoteError``)."""
    argv = target.rsync_argv("--info=progress2", "--no-inc-recursive", *args)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise SSHError("rsync is not installed on this computer.") from exc
    last = -1
    pending = b""
    os.set_blocking(proc.stdout.fileno(), True)
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        pending = (pending + chunk)[-4096:]
        found = _PERCENT_RE.findall(pending)
        if found:
            percent = min(100, int(found[-1]))
            if percent != last:
                last = percent
                report(percent)
        if cancelled():
            proc.terminate()
            proc.wait(10)
            raise RemoteError("Stopped before it started.")
    stderr = proc.stderr.read().decode("utf-8", "replace")
    code = proc.wait()
    if code not in (0, 24):
        message = f"rsync with {target.describe()} failed (exit code {code}): {last_line(stderr)}"
        if "No space left" in stderr:
            message = (f"The disk of {target.describe()} is full: the copy stopped ({last_line(stderr)}). "
                       "Free some space in the machine's work folder, then start again.")
        raise SSHError(message, returncode=code, stderr=stderr, connection=code in _RSYNC_CONNECTION)


class RemoteTrainingProcess(TrainingProcess):
    """``TrainingProcess`` for a run on another machine (see the module)."""

    #: seconds between two checks-and-mirrors of the host's files
    sync_interval = 1.0
    #: the longest wait between two attempts while the host does not answer
    max_backoff = 30.0
    #: a stop that cannot reach the host gives up after this long (the app can close)
    stop_give_up = 40.0
    #: seconds between two checks that the host's process still runs (its normal end
    #: comes sooner, with the mirror: the exit code file)
    status_interval = 10.0
    #: checks that must see the process gone without an exit code before it counts as killed
    dead_polls = 3

    def __init__(self, manager, experiment_id: int, resume: bool = False, rave: str | None = None,
                 launcher: bool = True, attach_pid: int | None = None, device: str | None = None,
                 parent=None):
        super().__init__(manager, experiment_id, resume=resume, rave=rave, launcher=launcher,
                         attach_pid=attach_pid, device=device, parent=parent)
        self.machines = MachineManager(manager.db)
        self.machine_id = self.config.get("machine_id")
        self.machine: dict | None = None
        self.target: SSHTarget | None = None
        self.remote: dict = remote_run(manager.db, experiment_id) or {}
        self.remote_out: str | None = self.remote.get("out_dir")
        self.remote_pid: int | None = None
        self.remote_pgid: int | None = None
        self.remote_start: str | None = None
        self.connected = True
        self.syncs = 0                       # how many mirrors were made (for the benchmark)
        self._sync_next = 0.0
        self._status_next = 0.0
        self._failures = 0
        self._lost_since: float | None = None
        self._ended_code: int | None = None
        self._exit_known = False
        self._dead_seen = 0
        self._gave_up = False
        self._int_sent_at: float | None = None
        self._signal_next = 0.0
        self._sent: set[str] = set()
        self._index_size = -1
        self._config_fetched = False

    # -- the thread -------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.prepare()
            if self.attach_pid is None:
                if self.stop_requested:
                    raise RemoteError("Stopped before it started.")
                self.remote_pid, self.remote_pgid, self.remote_start = self._launch()
            else:
                self._guard("recording the re-attach", self.manager.record_event, self.experiment_id,
                            "reattached", self.step)
        except Exception as exc:  # noqa: BLE001 - refuse with the sentence
            self._refuse(str(exc))
            return
        log_path = Path(self.log_path)
        offset = log_path.stat().st_size if log_path.exists() else 0
        ok, message = self._follow_to_the_end(log_path, offset, self._poll_exit,
                                              on_start=lambda: self.on_started(self.remote_pid),
                                              reap=lambda: None)
        self.finished.emit(ok, message)

    # -- before the launch -------------------------------------------------------------------
    def prepare(self) -> None:
        self.machine = self.machines.get(self.machine_id) if isinstance(self.machine_id, int) else None
        if self.machine is None:
            raise RemoteError("The machine of this run was removed. Add it again on the Machines page.")
        self.target = self.machines.target(self.machine)
        problem = local_rsync_problem()
        if problem:
            raise RemoteError(problem)
        try:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            Path(self.log_path).touch()
        except OSError as exc:
            raise RemoteError(f"The run folder {self.out_dir} cannot be created ({exc.strerror or exc}). "
                              "Check the permissions of the data folder, or choose another with --data-dir.")
        if self.attach_pid is not None:
            self._prepare_attach()
            return
        dataset = self.manager.db.query_one("SELECT * FROM datasets WHERE id = ?", (self.config["dataset_id"],))
        if dataset is None:
            raise RemoteError("The dataset of this run was removed. Register it again on the Datasets page.")
        dataset = dict(dataset)
        on_host = dataset.get("machine_id") is not None
        if on_host and dataset["machine_id"] != self.machine_id:
            raise RemoteError(f"The dataset {dataset['name']} lives on another machine; train on that machine, "
                              "or register the dataset for this one.")
        fingerprint, size = (None, 0)
        if not on_host:
            meta = read_metadata(dataset["path"])  # a sentence if the folder is gone
            if meta.get("lazy"):
                raise RemoteError(f"The dataset {dataset['name']} was preprocessed lazily: it points to audio "
                                  "files on this computer, which the host cannot read. Preprocess it without "
                                  "'lazy', or register a dataset that lives on the host.")
            dataset["channels"] = meta["channels"]
            fingerprint, size = remote_layout.dataset_fingerprint(dataset["path"])
        self._dataset = dataset
        if self.resume and not self.remote.get("run_dir"):
            raise RemoteError("This run has no run folder on the host yet, so there is nothing to resume from.")
        still = self._still_running() if self.resume else None
        if still is not None:
            # the app lost track of it (it could not reach the host to stop it): follow it again
            self.warning.emit(f"This run still trains on {self.machine['name']}; the app follows it again.")
            self.attach_pid = still
            self.resume = False  # the same process goes on: no branch was abandoned
            self.follower = RunEventsFollower(self.paths.run_dir)
            self._prepare_attach()
            return
        folder = self.remote_out.rsplit("/", 1)[-1] if self.remote_out else \
            remote_layout.run_folder_name(self.out_dir)
        launcher = remote_layout.launcher_name()
        ds_folder = remote_layout.dataset_folder_name(dataset["name"], fingerprint) if fingerprint else None
        result = self._remote(remote_scripts.prepare_script(
            self.machine["work_dir"], folder, launcher, ds_folder, dataset["path"] if on_host else None),
            "preparing the host")
        found = remote_scripts.answers(result.stdout)
        work = found.get("work")
        if not work:
            raise RemoteError(f"The work folder {self.machine['work_dir']} on {self.machine['name']} cannot be "
                              f"used ({last_line(result.stderr) or 'no answer'}). Test the connection on the "
                              "Machines page.")
        stored = self.remote.get("out_dir")
        self.remote_out = stored if stored and self.resume else f"{work}/runs/{folder}"  # a run stays where it began
        self.remote_launcher = f"{work}/{remote_layout.LAUNCHER_DIR}/{launcher}"
        if found.get("launcher") != "present":
            self._rsync([str(rave_cli.LAUNCHER), self.target.remote(self.remote_launcher)], "copying the launcher")
        if on_host:
            path = found.get("dataset-path")
            if not path:
                raise RemoteError(f"The dataset folder {dataset['path']} is gone from {self.machine['name']} "
                                  "(no metadata.yaml and data.mdb there).")
            self.remote_dataset = path
        else:
            self.remote_dataset = f"{work}/datasets/{ds_folder}"
            if found.get("dataset") != "present":
                self._send_dataset(dataset, size, found.get("free-kb"), fingerprint)
        save_remote_run(self.manager.db, self.experiment_id, machine_id=self.machine_id, out_dir=self.remote_out,
                        dataset_path=self.remote_dataset, token=self.token)
        self._guard("recording the launch", self.manager.set_launch_token, self.experiment_id, self.token)
        self._mirror()  # the mirror is complete before the new output is appended

    def _still_running(self) -> int | None:
        """What the last launch still runs as (its pid on the host), or None."""
        run = self.remote
        if not run.get("pid") or not run.get("pid_start") or not self.remote_out:
            return None
        result = self._remote(remote_scripts.status_script(self.remote_out, int(run["pid"]), run["pid_start"],
                                                           run.get("token") or ""), "checking the last launch")
        return int(run["pid"]) if remote_scripts.answers(result.stdout).get("status") == "alive" else None

    def _prepare_attach(self) -> None:
        run = self.remote
        if not run.get("pid") or not run.get("pid_start") or not self.remote_out:
            raise RemoteError("The app has no record of this run's process on the host.")
        self.remote_pid, self.remote_pgid, self.remote_start = int(run["pid"]), run.get("pgid"), run["pid_start"]
        self.token = run.get("token") or self.token
        if run.get("run_dir"):
            self.follower.run_dir = self.paths.run_dir
        self._sync_next = 0.0  # the first poll checks the host at once

    def _send_dataset(self, dataset: dict, size: int, free_kb: str | None, fingerprint: str) -> None:
        if free_kb and free_kb.isdigit() and int(free_kb) * 1024 < size + 512 * 1024 ** 2:
            raise RemoteError(f"{self.machine['name']} has {int(free_kb) / 1024 ** 2:.1f} GB free in its work folder; "
                              f"the dataset ({size / 1024 ** 3:.2f} GB) and the checkpoints need more. Free some "
                              "space there, or choose another work folder.")
        host = self.machine["name"]
        self.output.emit(f"[rave-gui] sending the dataset {dataset['name']} to {host} ({size / 1024 ** 2:,.1f} MB)")
        shown = [-10]

        def report(percent: int) -> None:
            self.progress.emit(percent, f"sending the dataset to {host}: {percent}%")
            if percent >= shown[0] + 10:
                shown[0] = percent - percent % 10
                self.output.emit(f"[rave-gui] dataset sent: {percent}%")
        files = [str(Path(dataset["path"]) / n) for n in ("metadata.yaml", "data.mdb", "lock.mdb")
                 if (Path(dataset["path"]) / n).exists()]
        try:
            rsync_with_progress(self.target, ["-t", "--partial", *files,
                                              self.target.remote(self.remote_dataset + "/")],
                                report, cancelled=lambda: self.stop_requested)
        except SSHError as exc:
            raise RemoteError(str(exc)) from exc
        self._remote(remote_scripts.mark_complete_script(self.remote_dataset, fingerprint), "marking the dataset")

    # -- the launch --------------------------------------------------------------------------
    def build_command(self) -> list[str]:
        cfg = dict(self.config, device=self.device) if self.device else dict(self.config)
        ckpt = self.remote.get("run_dir") if self.resume else None
        return remote_layout.train_argv(self.machine["python"], self.remote_launcher, cfg, self.remote_dataset,
                                        int(self._dataset["channels"]), self.remote_out,
                                        self.machine.get("gpus"), self.machine.get("cpus"), ckpt=ckpt)

    def _launch(self) -> tuple[int, int, str]:
        argv = self.build_command()
        env = {"RAVE_GUI_TOKEN": self.token, "RAVE_GUI_LOG_EVERY": str(int(self.config.get("log_every") or 50)),
               "PYTHONUNBUFFERED": "1"}
        script = remote_scripts.launch_script(self.remote_out, argv, self.token, env)
        try:
            result = self.target.run(script, timeout=60, check=False)
            started = remote_scripts.answers(result.stdout).get("started")
            if not started and result.returncode not in (0, 255):
                raise RemoteError(f"The training could not be started on {self.machine['name']} "
                                  f"({last_line(result.stdout + result.stderr)}).")
        except SSHError:
            started = None
        for delay in (0, 2, 5, 10):  # the answer was lost: did it start?
            if started:
                break
            time.sleep(delay)
            try:
                started = remote_scripts.answers(self.target.run(
                    remote_scripts.started_script(self.remote_out, self.token), timeout=30).stdout).get("started")
            except SSHError:
                continue
        if not started:
            raise RemoteError(f"The training could not be started on {self.machine['name']} (the host did not "
                              "confirm it). Test the connection on the Machines page.")
        parts = started.split()
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise RemoteError(f"The host answered the start oddly ({started!r}); is it a Linux machine?")
        # no start time: it ended already (its exit code and log say how)
        pid, pgid, start = int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else "ended"
        save_remote_run(self.manager.db, self.experiment_id, pid=pid, pgid=pgid, pid_start=start, token=self.token)
        return pid, pgid, start

    def on_started(self, pid: int) -> None:
        self.started_pid.emit(int(pid or 0))  # the host's pid: never a local one (self.pid stays None)

    # -- following ---------------------------------------------------------------------------
    def _poll_exit(self) -> int | None:
        """``_follow``'s exit check: every ``sync_interval``, mirror the host's files
        (one rsync over the master connection); the exit code file the host writes
        at the end comes with them. Every ``status_interval`` (and at once after a
        re-attach, or while the process looks gone), ask whether it still runs: a
        process killed hard writes no exit code."""
        if self._ended_code is not None:
            return self._ended_code
        moment = time.monotonic()
        if moment < self._sync_next:
            return None
        try:
            state = None
            if moment >= self._status_next:
                state, code = self._status()
                self._status_next = moment + (self.sync_interval if state != "alive" else self.status_interval)
            code = self._mirror_all()
        except SSHError as exc:
            return self._poll_failed(exc, "mirroring the run's files")
        self._poll_done()
        if code is not None:
            self._exit_known = True
            self._ended_code = code
        elif state in ("dead", "gone"):
            self._dead_seen += 1  # the waiter writes the exit code a moment after the end
            if self._dead_seen >= self.dead_polls:
                self._ended_code = KILLED
        return self._ended_code

    def _mirror_all(self) -> int | None:
        """Mirror the host's files and fetch the extras; the exit code if it came."""
        self._mirror()
        code = self._exit_code()
        if code is not None:
            self._mirror()  # the log's last bytes may have been written during the first scan
        try:
            self._extras()
        except (ValueError, OSError) as exc:  # an odd checkpoint listing: say so, keep following
            self.on_hook_error("reading the run's checkpoint list", exc)
        return code

    def _poll_failed(self, exc: SSHError, what: str) -> int | None:
        """A poll that could not reach the host (back off, say so once; a stop gives up
        after ``stop_give_up``) or whose host answered but a file did not come."""
        if not exc.connection:  # the host answered, a file did not come: say so once, go on
            self.on_hook_error(what, exc)
            self._sync_next = time.monotonic() + self.sync_interval
            self._status_next = min(self._status_next, self._sync_next)  # is it still there?
            return None
        self._connection_trouble(exc)
        if self._gave_up:
            self._ended_code = KILLED
            return self._ended_code
        return None

    def _poll_done(self) -> None:
        self._connection_back()
        self._sync_next = time.monotonic() + self.sync_interval
        self._next_events = 0.0  # read what the mirror brought now, not a second later

    def _end_files(self) -> list[str]:
        """The files the host writes at the end, mirrored with the log (the first: the exit code)."""
        return [f"exitcode-{self.token}"]

    def _exit_code(self) -> int | None:
        """The exit code the host wrote (mirrored with the log), or None."""
        try:
            text = (Path(self.out_dir) / self._end_files()[0]).read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None

    def _status(self) -> tuple[str, int | None]:
        result = self.target.run(remote_scripts.status_script(self.remote_out, self.remote_pid, self.remote_start,
                                                              self.token), timeout=30)
        found = remote_scripts.answers(result.stdout)
        code = found.get("exit")
        return found.get("status", "dead"), int(code) if code and code.lstrip("-").isdigit() else None

    def _mirror(self) -> None:
        rsync(self.target, ["-rt", "--append", "-m", *(f"--include=/{name}" for name in self._end_files()),
                            *remote_layout.MIRROR_FILTERS,
                            self.target.remote(self.remote_out + "/"), str(self.out_dir) + "/"], timeout=120)
        self.syncs += 1

    def _extras(self) -> None:
        """config.gin once RAVE's run folder is known; the host's checkpoint list
        whenever the index grew."""
        run_dir = self.remote.get("run_dir")
        local_run = self.follower.run_dir
        if not run_dir or local_run is None:
            return
        if not self._config_fetched:
            try:
                rsync(self.target, ["-t", self.target.remote(f"{run_dir}/config.gin"),
                                    str(Path(local_run) / "config.gin")], timeout=60)
                self._config_fetched = True
            except SSHError as exc:
                if exc.connection:
                    raise  # else: not written yet, the next poll tries again
        size = sum(p.stat().st_size for p in Path(local_run).glob("version_*/checkpoints/rave-gui-index.jsonl"))
        if size == self._index_size:
            return
        result = self.target.run(remote_scripts.checkpoints_script(self.machine["python"], run_dir), timeout=60)
        listing = json.loads(remote_scripts.answers(result.stdout).get("checkpoints") or "{}")
        per_folder: dict[Path, dict] = {}
        for rel, info in listing.items():
            parts = PurePosixPath(rel).parts
            if len(parts) == 3:
                per_folder.setdefault(Path(local_run, parts[0], parts[1]), {})[parts[2]] = info
        for folder, files in per_folder.items():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / (REMOTE_LISTING + ".tmp")
            tmp.write_text(json.dumps(files), encoding="utf-8")
            os.replace(tmp, folder / REMOTE_LISTING)
        self._index_size = size

    def _connection_trouble(self, exc: SSHError) -> None:
        moment = time.monotonic()
        self._failures += 1
        self._sync_next = moment + min(self.max_backoff, 2.0 ** min(self._failures - 1, 5))
        if self.connected:
            self.connected = False
            self._lost_since = moment
            self.warning.emit(f"Lost the connection to {self.machine['name']} ({exc}); reconnecting\u2026 "
                              "The training goes on there.")
        if self.stop_requested and self._lost_since is not None and moment - self._lost_since > self.stop_give_up:
            self._gave_up = True

    def _connection_back(self) -> None:
        self._failures = 0
        if not self.connected:
            self.connected = True
            self._lost_since = None
            self.warning.emit(f"Connected to {self.machine['name']} again; following the run.")

    def handle_line(self, line: str) -> None:
        ours = parse_launcher_line(line, self.token)
        if ours and "run_dir" in ours and self.remote_out:
            remote_run_dir = str(PurePosixPath(ours["run_dir"]).parent)
            local = remote_layout.local_of(remote_run_dir, self.remote_out, self.out_dir)
            self.follower.run_dir = local
            self.remote["run_dir"] = remote_run_dir
            self._config_fetched = False
            self._sync_next = 0.0
            self.manager.set_run_dir(self.experiment_id, local)
            save_remote_run(self.manager.db, self.experiment_id, run_dir=remote_run_dir)
            return
        super().handle_line(line)

    # -- stopping ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the host's training to stop; the thread sends the signals (never this
        thread: the UI's)."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self._stop_at = time.monotonic()

    def abandon(self) -> None:
        """Stop following now, whatever the host does (the window closes and the stop
        did not end in time): the run ends ``interrupted`` here and may go on there;
        Resume follows it again if it still runs."""
        self._gave_up = True
        self._ended_code = KILLED

    def _escalate(self) -> None:
        if self._stop_at is None or self.remote_pid is None or self._ended_code is not None:
            return
        moment = time.monotonic()
        if moment < self._signal_next:
            return
        if self._int_sent_at is None:
            wanted, group = "INT", False
        else:
            waited = moment - self._int_sent_at
            if waited > self.interrupt_timeout + self.terminate_timeout and "KILL" not in self._sent:
                wanted, group = "KILL", True
            elif waited > self.interrupt_timeout and "TERM" not in self._sent:
                wanted, group = "TERM", True
            else:
                return
        try:
            self.target.run(remote_scripts.signal_script(self.remote_pid, self.remote_pgid or self.remote_pid,
                                                         self.remote_start, wanted, group), timeout=30)
        except SSHError as exc:
            self._connection_trouble(exc)
            self._signal_next = moment + min(self.max_backoff, 2.0 ** min(self._failures - 1, 5))
            if self._gave_up:
                self._ended_code = KILLED
            return
        self._sent.add(wanted)
        if wanted == "INT":
            self._int_sent_at = moment
        self._sync_next = 0.0
        if wanted != "INT":
            self._status_next = 0.0  # a group killed writes no exit code: look at once

    # -- the end -----------------------------------------------------------------------------
    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self._gave_up:
            self._guard("reading the last points", self.read_events, True)
            self._end("interrupted")
            message = (f"The app could not reach {self.machine['name']} to stop this run; it may still train "
                       "there. Resume it once the machine answers: the app follows it again if it still runs.")
            self.warning.emit(message)  # a stop's own message is not kept as an error: say it
            return False, message
        if not self._gave_up:  # what the last lines named (RAVE's run folder) may not be fetched yet
            try:
                self._extras()
            except (SSHError, OSError, ValueError) as exc:
                self.warning.emit(f"The run's checkpoint list and config could not be fetched from "
                                  f"{self.machine['name']} ({exc}).")
        attach_pid = self.attach_pid
        if self._exit_known:
            self.attach_pid = None  # the host told the exit code: judge it as a fresh run's
        try:
            ok, message = super().outcome(returncode)
        finally:
            self.attach_pid = attach_pid
        host = self.machine["name"]
        if self.final_status == "failed" and returncode == 127:
            message = (f"The Python {self.machine['python']} was not found on {host} (the log says what the "
                       "host answered). Set the machine's remote Python on the Machines page, and test it.")
        elif self.final_status == "failed" and returncode == KILLED and not self._exit_known:
            message = (f"The training process on {host} ended without an exit code at step {self.step:,} (it was "
                       "killed, or the machine restarted). Resume it to continue from its last checkpoint.")
        return ok, message

    def _end(self, status: str) -> None:
        self.final_status = status

    # -- helpers -----------------------------------------------------------------------------
    def _remote(self, script: str, what: str, timeout: float = 120.0):
        try:
            result = self.target.run(script, timeout=timeout, check=False)
        except SSHError as exc:
            raise RemoteError(f"{exc} (while {what})") from exc
        if result.returncode == 255:
            raise RemoteError(str(command_error(result, self.target)))
        return result

    def _rsync(self, args: list[str], what: str) -> None:
        try:
            rsync(self.target, args)
        except SSHError as exc:
            raise RemoteError(f"{exc} (while {what})") from exc


class RemoteExportProcess(ExportProcess):
    """``rave export`` on the host, then the ``.ts`` copied back with progress and
    recorded as ``ExportProcess`` does (signals: ``progress``, ``finished``, ``exported``)."""

    def __init__(self, manager, experiment_id: int, output_dir: str | Path | None = None,
                 streaming: bool = True, fidelity: float = 0.95, parent=None):
        super().__init__(manager, experiment_id, output_dir, streaming, fidelity, parent=parent)
        self.machines = MachineManager(manager.db)
        self.remote = remote_run(manager.db, experiment_id) or {}

    def prepare(self) -> None:
        if not 0.1 <= self.fidelity <= 0.999:
            raise ValueError("Fidelity must be between 0.1 and 0.999 (RAVE's limits).")
        if self.experiment["status"] in LIVE:
            raise ValueError("Stop the run (or let it finish) before exporting it.")
        machine = self.machines.get(self.experiment["config"].get("machine_id"))
        if machine is None:
            raise ValueError("The machine of this run was removed. Add it again on the Machines page.")
        if not self.remote.get("run_dir") or not self.paths.checkpoints():
            raise ValueError("This run has no checkpoint to export yet: RAVE saves one at each "
                             "validation (or when the app stops the run).")
        problem = local_rsync_problem()
        if problem:
            raise ValueError(problem)
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"The export folder {self.output_dir} cannot be created "
                             f"({exc.strerror or exc}). Choose another folder.")
        self.machine = machine
        self.target = self.machines.target(machine)
        work = self.remote["out_dir"].rsplit("/runs/", 1)[0]
        self.remote_launcher = f"{work}/{remote_layout.LAUNCHER_DIR}/{remote_layout.launcher_name()}"
        self.remote_output = f"{self.remote['out_dir']}/export"
        try:
            check = self.target.run(f"[ -f {sh_quote(self.remote_launcher)} ] && echo rave-gui-ok=1; true",
                                    timeout=60)
            if "rave-gui-ok=1" not in check.stdout:
                rsync(self.target, [str(rave_cli.LAUNCHER), self.target.remote(self.remote_launcher)])
        except SSHError as exc:
            raise ValueError(str(exc)) from exc

    def build_command(self) -> list[str]:
        settings = self.machine.get("slurm")  # a cluster: its environment; a short job where it says so
        prefix = slurm_cli.srun_prefix(settings) if settings and settings.get("export") == "job" else None
        script = remote_scripts.export_script(self.machine["python"], self.remote_launcher, self.remote["run_dir"],
                                              self.experiment["name"], self.remote_output, self.fidelity,
                                              self.streaming, prefix=prefix)
        if settings:
            script = slurm_cli.on_login_node(settings, script)
        return self.target.ssh_argv(remote_shell(script))

    def handle_line(self, line: str) -> None:
        for number, marker in enumerate(("model found", "script model", "save model", "all good"), start=1):
            if marker in line:
                self.progress.emit(int(80 * number / 4), marker)

    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self.stop_requested:
            return False, "Export cancelled."
        if returncode != 0:
            if returncode == 255:
                return False, f"The connection to {self.machine['name']} failed during the export; try again."
            return False, explain_failure(list(self.tail), returncode)
        remote_file = f"{self.remote_output}/{export_name(self.experiment['name'], self.streaming)}"
        self.progress.emit(80, f"copying the model from {self.machine['name']}")
        try:
            rsync_with_progress(self.target, ["-t", "--partial", self.target.remote(remote_file), str(self.path)],
                                lambda pct: self.progress.emit(80 + pct // 5, f"copying the model: {pct}%"),
                                cancelled=lambda: self.stop_requested)
        except (SSHError, RemoteError) as exc:
            return False, f"The model was exported on {self.machine['name']} ({remote_file}) but could not be " \
                          f"copied back: {exc}"
        if not self.path.is_file():
            return False, f"The model was exported on {self.machine['name']} but did not arrive in {self.output_dir}."
        self.manager.db.execute(
            "INSERT INTO exports (experiment_id, path, streaming, fidelity, step, size_bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.experiment["id"], str(self.path), int(self.streaming), self.fidelity,
             self.experiment.get("current_step"), self.path.stat().st_size, now()))
        self.progress.emit(100, "all good")
        self.exported.emit(str(self.path))
        return True, f"Exported to {self.path}"


__all__ = ["RemoteTrainingProcess", "RemoteExportProcess", "RemoteError", "KILLED"]
