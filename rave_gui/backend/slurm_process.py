"""Train on a Slurm cluster: submit, follow the job, resubmit at its time limit.

``SlurmTrainingProcess`` is a ``RemoteTrainingProcess`` (the dataset and the
launcher reach the cluster the same way, through its login node, and the run's
files are mirrored the same way) whose training runs as a batch job:

* **submit**: the batch script (``slurm.batch_script``: the cluster's modules
  and setup lines, then the launcher) is written to the experiment's folder
  here (``rave-gui.sbatch``, the one the wizard showed), copied into the run's
  folder on the cluster and submitted there with ``sbatch --parsable``. A refusal
  ends the run with Slurm's reason. The job id is kept (``remote_runs.job_id``)
  and each submission is an event of the run.
* **follow**: while the job waits, ``squeue`` every ``pending_interval`` and a
  note says why it waits (Slurm's reason); once it runs (the run turns
  ``running``), the files are mirrored every ``sync_interval`` as for SSH and
  Slurm is asked every ``status_interval``; the job's end comes with its exit
  code file (``exitcode-JOBID``, written by the batch shell) or, for a job Slurm
  killed, from ``scontrol``/``sacct``.
* **time limit**: Slurm sends USR1 ``margin`` seconds before the limit; the batch
  shell stops the training (its stop checkpoint) and marks ``timelimit-JOBID``.
  The app then resubmits with ``--ckpt`` (the history after the checkpoint is
  dropped, as for a resume) until ``max_steps``: one experiment, one history,
  several jobs. A job that ended by TIMEOUT, PREEMPTED or NODE_FAIL continues the
  same way from its newest checkpoint; one that saved no newer checkpoint than
  the one it started from ends the run with a sentence (no endless loop).
* **stop**: ``scancel --signal=INT --batch`` (the stop checkpoint), then
  ``scancel`` after ``interrupt_timeout``; a job still waiting is simply cancelled.
* **re-attach**: ``attach_pid`` is the job id: the job is followed again.

``self.remote_pid`` holds the job id (there is no pid to speak of here).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from PyQt6.QtCore import pyqtSignal

from rave_gui.backend import rave_cli, remote_layout, slurm
from rave_gui.backend.machines import remote_run, save_remote_run
from rave_gui.backend.remote_process import KILLED, RemoteError, RemoteTrainingProcess
from rave_gui.backend.run_paths import RunPaths
from rave_gui.backend.ssh import SSHError, sh_quote

SCRIPT_NAME = "rave-gui.sbatch"


class SlurmTrainingProcess(RemoteTrainingProcess):
    """``TrainingProcess`` for a run on a Slurm cluster (see the module)."""

    #: what the job is doing, in a sentence ("pending in Slurm's queue (job 12: Priority — ...)")
    status_note = pyqtSignal(str)

    #: seconds between two questions to Slurm while the job runs (its end comes sooner, with the mirror)
    status_interval = 15.0
    #: ... and while it waits in the queue (nothing to mirror then)
    pending_interval = 3.0
    #: polls after the job left Slurm's queue without an exit code file (a shared file system may lag)
    dead_polls = 3

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings: dict = {}
        self.job_id: str | None = self.remote.get("job_id")
        self.job: slurm.JobState | None = None
        self.queries = 0                    # questions asked to Slurm (for the benchmark)
        self._running_seen = False
        self._unknown_seen = 0
        self._ended_seen = 0
        self._start_step = self.step        # the step the current job started from
        self._slurm_end: tuple[str, str] | None = None
        self._cancel_sent = False
        self._early_polls = 0
        self.detached = False

    # -- before the launch -------------------------------------------------------------------
    def prepare(self) -> None:
        super().prepare()
        self.settings = self.machine.get("slurm") or {}
        if not self.settings:
            raise RemoteError(f"{self.machine['name']} is no longer a Slurm cluster (its settings were removed).")

    def _still_running(self) -> int | None:
        """A resume while the job still waits or runs follows it again: its id."""
        self.settings = self.machine.get("slurm") or {}
        if not self.job_id:
            return None
        state = self._query()
        return int(self.job_id) if state is not None and not state.ended else None

    def _prepare_attach(self) -> None:
        run = self.remote
        self.settings = self.machine.get("slurm") or {}
        if not run.get("job_id") or not self.remote_out:
            raise RemoteError("The app has no record of this run's Slurm job.")
        self.job_id = str(run["job_id"])
        self.remote_pid = int(self.job_id)
        self.token = run.get("token") or self.token
        if run.get("run_dir"):
            self.follower.run_dir = self.paths.run_dir
        self._sync_next = 0.0
        self._status_next = 0.0

    # -- submitting ----------------------------------------------------------------------------
    def _launch(self) -> tuple[int, None, None]:
        self._submit(first=True)
        return int(self.job_id), None, None

    def batch_script(self) -> str:
        env = {"RAVE_GUI_TOKEN": self.token, "RAVE_GUI_LOG_EVERY": str(int(self.config.get("log_every") or 50)),
               "PYTHONUNBUFFERED": "1"}
        return slurm.batch_script(self.settings, self.config.get("name") or "rave", self.token,
                                  self.build_command(), env)

    def _submit(self, first: bool, why: str = "") -> None:
        """Write the batch script, copy it to the run's folder there, ``sbatch`` it."""
        script = self.batch_script()
        local = Path(self.out_dir) / SCRIPT_NAME
        tmp = local.with_name(local.name + ".tmp")
        tmp.write_text(script, encoding="utf-8")
        os.replace(tmp, local)
        self._rsync(["-t", str(local), self.target.remote(f"{self.remote_out}/{SCRIPT_NAME}")],
                    "copying the batch script")
        job_id = None
        try:
            result = self.target.run(slurm.submit_script(self.settings, self.remote_out, SCRIPT_NAME),
                                     timeout=60, check=False)
        except SSHError:
            result = None
        if result is not None and result.returncode not in (0, 255):
            raise RemoteError(f"Slurm refused the job: {slurm.submit_refusal(result.stderr)}. Check the partition, "
                              "account, time limit and resources of the cluster on the Machines page.")
        if result is not None and result.returncode == 0:
            job_id = slurm.parse_job_id(result.stdout)
        for delay in (0, 2, 5, 10):  # the answer was lost: was it submitted?
            if job_id:
                break
            time.sleep(delay)
            try:
                found = self.target.run(slurm.find_job_script(self.settings, self.token), timeout=30).stdout
            except SSHError:
                continue
            job_id = next((ln.split("=", 1)[1] for ln in found.splitlines() if ln.startswith("rave-gui-job=")), None)
        if not job_id:
            raise RemoteError(f"The job could not be submitted on {self.machine['name']} (the login node did not "
                              "confirm it). Test the connection on the Machines page.")
        previous = self.job_id if not first else None
        self.job_id = job_id
        self.remote_pid = int(job_id)
        self.job = None
        self._running_seen = False
        self._unknown_seen = self._ended_seen = 0
        self._status_next = 0.0
        self._early_polls = 0
        save_remote_run(self.manager.db, self.experiment_id, job_id=job_id, token=self.token, pid=None,
                        pgid=None, pid_start=None)
        detail = f"job {job_id}" + (f" ({why})" if previous else "")
        self._guard("recording the submission", self.manager.record_event, self.experiment_id,
                    "resubmitted" if previous else "submitted", self.step, detail)
        self.output.emit(f"[rave-gui] submitted Slurm job {job_id} to partition {self.settings['partition']}"
                         + (f" ({why})" if previous else ""))
        self.status_note.emit(f"submitted to Slurm (job {job_id})")

    # -- following ---------------------------------------------------------------------------
    def on_started(self, pid: int) -> None:
        """Nothing at submission: the run turns ``running`` once its job runs (``_on_state``)."""

    def _query(self) -> slurm.JobState | None:
        self.queries += 1
        result = self.target.run(slurm.state_script(self.settings, self.job_id), timeout=30)
        return slurm.parse_state(result.stdout)

    def _on_state(self, state: slurm.JobState | None) -> None:
        before = self.job
        self.job = state
        if state is None:
            return
        if state.pending and (before is None or (before.state, before.reason) != (state.state, state.reason)):
            self.status_note.emit(slurm.pending_note(self.job_id, state))
        if (state.running or state.ended) and not self._running_seen:
            self._running_seen = True
            self.status_note.emit(f"running on {state.node or 'its node'} (Slurm job {self.job_id})")
            self.started_pid.emit(int(self.job_id))

    def _end_files(self) -> list[str]:
        """The batch shell's exit code file and its time-limit mark, per job."""
        job = self.job_id or "none"
        return [f"exitcode-{job}", f"timelimit-{job}"]

    def _poll_exit(self) -> int | None:
        if self._ended_code is not None:
            return self._ended_code
        moment = time.monotonic()
        if moment < self._sync_next:
            return None
        code = None
        try:
            if moment >= self._status_next:
                self._on_state(self._query())
                waiting = self.job is None or self.job.pending or self.job.ended
                self._early_polls += 1  # a job often starts a moment after sbatch: look again soon
                interval = (1.0 if self._early_polls <= 5 else self.pending_interval) if waiting else \
                    self.status_interval
                self._status_next = moment + interval
            if self._running_seen:
                code = self._mirror_all()
        except SSHError as exc:
            return self._poll_failed(exc, "following the Slurm job")
        self._poll_done()
        if code is None:
            if self.job is None:
                self._unknown_seen += 1  # Slurm forgot it (MinJobAge) or never had it
                if self._unknown_seen < self.dead_polls:
                    return None
            elif not self.job.ended:
                return None
            else:
                self._ended_seen += 1  # its exit code file may still be on its way
                if self.job.state in ("COMPLETED", "FAILED") and self._ended_seen < self.dead_polls:
                    self._status_next = 0.0
                    return None
        return self._job_ended(code)

    def _job_ended(self, code: int | None) -> int | None:
        """The current job ended: resubmit (time limit) or end the run."""
        state = self.job
        warned = (Path(self.out_dir) / f"timelimit-{self.job_id}").exists()
        time_limited = warned or bool(state and state.state in slurm.RESUBMIT_AFTER)
        newest = self._newest_checkpoint_step()
        if newest is not None and newest >= self.total_steps:
            time_limited = False  # it reached max_steps before the limit: nothing to continue
        if time_limited and not self.stop_requested and self.step < self.total_steps:
            why = "reached its time limit" if warned or state.state == "TIMEOUT" else f"ended {state.state}"
            if self._resubmit(why):
                return None
        if code is None:
            if state is not None and state.exit_code is not None and state.state == "FAILED":
                code = state.exit_code
            elif state is not None and state.state == "COMPLETED":
                code = 0 if state.exit_code is None else state.exit_code
            else:
                code = KILLED
        self._ended_code = code
        return code

    def _newest_checkpoint_step(self) -> int | None:
        exp = self.manager.get_experiment(self.experiment_id)
        checkpoint = RunPaths.of(exp).resume_checkpoint() if exp else None
        return int(checkpoint["step"]) if checkpoint and checkpoint.get("step") is not None else None

    def _resubmit(self, why: str) -> bool:
        """Continue in a new job from the newest checkpoint; False (the run ends) when
        the job saved none newer than the one it started from, or Slurm refuses."""
        exp = self.manager.get_experiment(self.experiment_id)
        from_step = self._newest_checkpoint_step()
        if from_step is None or from_step <= self._start_step:
            self._slurm_end = ("failed", (
                f"Job {self.job_id} {why} without saving a checkpoint after step {self._start_step:,}, so a "
                f"new job would start over. Raise the time limit ({self.settings.get('time')}) or the checkpoint "
                f"margin ({self.settings.get('margin')} s) on the Machines page, then resume the run."))
            return False
        self._guard("reading the last points", self.read_events, True)
        try:
            self.manager.rewind_history(self.experiment_id, from_step)
        except Exception as exc:  # noqa: BLE001 - the history is the only thing at stake: say so, go on
            self.warning.emit(f"The history after step {from_step:,} could not be dropped ({exc}).")
        self.resume = True
        self.step = self._start_step = from_step
        self._shown_up_to = self.manager.last_step(self.experiment_id)
        self._complete_through = -1
        self.follower = type(self.follower)(RunPaths.of(exp).run_dir, resume_from=from_step)
        self.remote["run_dir"] = self.remote.get("run_dir") or (remote_run(self.manager.db, self.experiment_id)
                                                                 or {}).get("run_dir")
        self.fit_ended = False
        try:
            self._ensure_launch_inputs()
            self._submit(first=False, why=f"job {self.job_id} {why}; continuing from step {from_step:,}")
        except (RemoteError, SSHError, OSError) as exc:
            self._slurm_end = ("failed", f"The run could not continue in a new job: {exc}")
            return False
        self.step_update.emit(self.step, self.total_steps)
        return True

    def _ensure_launch_inputs(self) -> None:
        """What ``build_command`` needs, for a process that re-attached (it did not prepare)."""
        if self._dataset is None:
            row = self.manager.db.query_one("SELECT * FROM datasets WHERE id = ?", (self.config["dataset_id"],))
            self._dataset = dict(row) if row else {"channels": 1}
            self.remote_dataset = self.remote.get("dataset_path")
        if not getattr(self, "remote_launcher", None):
            work = self.remote_out.rsplit("/runs/", 1)[0]
            self.remote_launcher = f"{work}/{remote_layout.LAUNCHER_DIR}/{remote_layout.launcher_name()}"
            found = self.target.run(f"[ -f {sh_quote(self.remote_launcher)} ] && echo rave-gui-ok=1; true",
                                    timeout=60)
            if "rave-gui-ok=1" not in found.stdout:
                self._rsync([str(rave_cli.LAUNCHER), self.target.remote(self.remote_launcher)], "copying the launcher")

    # -- stopping ----------------------------------------------------------------------------
    def _escalate(self) -> None:
        """Stop: a waiting job is cancelled; a running one gets INT in its batch shell
        (the stop checkpoint), then ``scancel`` after ``interrupt_timeout``."""
        if self._stop_at is None or not self.job_id or self._ended_code is not None:
            return
        moment = time.monotonic()
        if moment < self._signal_next:
            return
        if not self._running_seen or (self.job is not None and self.job.pending):
            wanted = None if not self._cancel_sent else "done"
        elif self._int_sent_at is None:
            wanted = "INT"
        elif moment - self._int_sent_at > self.interrupt_timeout and not self._cancel_sent:
            wanted = None
        else:
            return
        if wanted == "done":
            return
        try:
            self.target.run(slurm.cancel_script(self.settings, self.job_id, wanted), timeout=30, check=False)
        except SSHError as exc:
            self._connection_trouble(exc)
            self._signal_next = moment + min(self.max_backoff, 2.0 ** min(self._failures - 1, 5))
            if self._gave_up:
                self._ended_code = KILLED
            return
        if wanted == "INT":
            self._int_sent_at = moment
        else:
            self._cancel_sent = True
        self._sync_next = 0.0
        self._status_next = 0.0

    def detach(self) -> None:
        """Stop following without touching the job (the app closes): the run stays
        live in the database, and the next start follows its job again."""
        if self.job_id is None:  # nothing submitted yet: a plain stop
            self.stop()
            return
        self.detached = True
        self._ended_code = KILLED

    # -- the end -----------------------------------------------------------------------------
    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self.detached:
            self._guard("recording the detach", self.manager.record_event, self.experiment_id, "detached",
                        self.step, f"job {self.job_id} goes on without the app")
            return False, "The app closed; the job goes on."
        state = self.job
        explained = None if self.stop_requested or self._gave_up else (
            self._slurm_end or (slurm.ended_sentence(self.job_id, state, self.settings) if state else None))
        if explained is None:
            return super().outcome(returncode)
        try:
            self._extras()
        except (SSHError, OSError, ValueError):
            pass
        self._guard("reading the last points", self.read_events, True)
        status, message = explained
        self._end(status)
        return False, message

    def _end(self, status: str) -> None:
        super()._end(status)
        self.status_note.emit("")


__all__ = ["SlurmTrainingProcess", "SCRIPT_NAME"]
