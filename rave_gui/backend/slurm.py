"""Slurm clusters: a target's settings, the batch script, and what Slurm answers.

A Slurm target is an SSH machine (its login node) whose ``slurm`` settings say
how to submit: partition, account, GPUs / CPUs / memory per job, time limit, the
margin before the limit at which the training saves a checkpoint, modules to
load, setup lines (an environment to activate) and extra ``#SBATCH`` lines.

Every command on the login node (``sinfo``, ``sbatch``, ``squeue``, ``scontrol``,
``sacct``, ``scancel``) runs after the module and setup lines, as the person's own
shell would. The batch script runs RAVE through the app's launcher, exactly as
a run over SSH does; its shell turns Slurm's time-limit warning
(``--signal=B:USR1@MARGIN``) into the launcher's stop (SIGINT: a stop checkpoint)
and marks it (``timelimit-JOBID``), so the app resubmits the run with ``--ckpt``.

Plain Python: the scripts are strings built from quoted words; the parsers read
Slurm's output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rave_gui.backend.remote_layout import safe_name
from rave_gui.backend.ssh import sh_join, sh_path, sh_quote

#: what ``settings`` holds (see ``clean_settings``)
DEFAULTS = {"partition": "", "account": "", "gpus": 1, "cpus": 8, "mem": "", "time": "24:00:00",
            "margin": 300, "modules": [], "setup": "", "extra": "", "export": "login"}
EXPORT_WHERE = ("login", "job")
#: the time an export job asks for
EXPORT_TIME = "01:00:00"
_WORD_RE = re.compile(r"[A-Za-z0-9_.,:+-]+")
_MODULE_RE = re.compile(r"[A-Za-z0-9_.+/@-]+")
_MEM_RE = re.compile(r"\d+[KMGT]?", re.I)
_TIME_RE = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
_ANSWER = "rave-gui-"


# -- the target's settings ---------------------------------------------------------------------
def time_seconds(text: str) -> int | None:
    """Slurm's time formats (``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``,
    ``days-hours``, ``days-hours:minutes``, ``days-hours:minutes:seconds``) in seconds."""
    match = _TIME_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    days, a, b, c = match.groups()
    a, b, c = int(a), int(b) if b else None, int(c) if c else None
    if days is not None:  # days-hours[:minutes[:seconds]]
        return int(days) * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:
        return a * 3600 + b * 60 + c
    if b is not None:
        return a * 60 + b
    return a * 60


def _int(value, label: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{label} must be a whole number from {low} to {high} (got {value!r}).")
    return value


def _lines(value, label: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"The {label} must be text.")
    if "\x00" in value or any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValueError(f"The {label} cannot contain control characters.")
    if len(value) > 4000:
        raise ValueError(f"The {label} is too long (at most 4,000 characters).")
    return "\n".join(line.rstrip() for line in value.strip().splitlines())


def clean_settings(settings: dict) -> dict:
    """The settings of a Slurm target, checked; ``ValueError`` with a sentence."""
    if not isinstance(settings, dict):
        raise ValueError("The Slurm settings must be a table of values.")
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown Slurm setting(s): {', '.join(sorted(unknown))}.")
    s = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    clean: dict = {}
    for key, label, example in (("partition", "partition", "gpu"), ("account", "account", "my-lab")):
        value = s[key].strip() if isinstance(s[key], str) else s[key]
        if key == "partition" and not value:
            raise ValueError("Give the partition the jobs go to (for example gpu); `sinfo -s` on the login "
                             "node lists them.")
        if value and (not isinstance(value, str) or not _WORD_RE.fullmatch(value) or len(value) > 128):
            raise ValueError(f"The {label} {value!r} is not a Slurm name (letters, digits, _ . , : + -; "
                             f"for example {example}).")
        clean[key] = value or ""
    clean["gpus"] = _int(s["gpus"], "GPUs per job", 0, 16)
    clean["cpus"] = _int(s["cpus"], "CPUs per job", 1, 256)
    mem = s["mem"].strip() if isinstance(s["mem"], str) else s["mem"]
    if mem and (not isinstance(mem, str) or not _MEM_RE.fullmatch(mem)):
        raise ValueError(f"Memory per job {mem!r} is not a Slurm size (for example 32G or 16000M); leave it "
                         "empty for the partition's default.")
    clean["mem"] = (mem or "").upper()
    seconds = time_seconds(s["time"]) if isinstance(s["time"], str) else None
    if not seconds:
        raise ValueError(f"The time limit {s['time']!r} is not a Slurm time (for example 24:00:00, "
                         "2-00:00:00 or 120 for 120 minutes).")
    clean["time"] = s["time"].strip()
    clean["margin"] = _int(s["margin"], "The checkpoint margin (seconds)", 30, 86_400)
    if clean["margin"] >= seconds:
        raise ValueError(f"The checkpoint margin ({clean['margin']} s) must be shorter than the time limit "
                         f"({seconds} s): the training saves its checkpoint that long before the limit.")
    modules = s["modules"]
    if isinstance(modules, str):
        modules = modules.replace(",", " ").split()
    if not isinstance(modules, (list, tuple)) or not all(isinstance(m, str) and _MODULE_RE.fullmatch(m)
                                                         for m in modules):
        raise ValueError("Modules are names such as cuda/12.1 or python/3.11, separated by spaces.")
    clean["modules"] = list(modules)
    clean["setup"] = _lines(s["setup"], "setup lines")
    extra = _lines(s["extra"], "extra #SBATCH lines")
    for line in extra.splitlines():
        if line.strip() and not line.strip().startswith("#SBATCH "):
            raise ValueError(f"Each extra line must start with '#SBATCH ' (got {line.strip()!r}).")
    clean["extra"] = extra
    if s["export"] not in EXPORT_WHERE:
        raise ValueError("Export runs on the login node ('login') or as a short job ('job').")
    clean["export"] = s["export"]
    return clean


def environment(settings: dict) -> list[str]:
    """The lines that prepare a shell on the cluster: modules, then the setup lines."""
    lines = []
    if settings.get("modules"):  # `module` is a function of login shells: define it where it is missing
        lines += ["command -v module >/dev/null 2>&1 || . /etc/profile >/dev/null 2>&1",
                  f"module load {sh_join(settings['modules'])}"]
    if settings.get("setup"):
        lines.append(settings["setup"])
    return lines


def on_login_node(settings: dict, script: str) -> str:
    """``script`` after the cluster's environment (a failing module load is said, not fatal)."""
    return "\n".join([*environment(settings), script])


# -- the batch script ----------------------------------------------------------------------------
def directives(settings: dict, job_name: str, token: str) -> list[str]:
    lines = [f"#SBATCH --job-name={safe_name(job_name, 60)}",
             f"#SBATCH --comment=rave-gui-{token}",
             f"#SBATCH --partition={settings['partition']}"]
    if settings.get("account"):
        lines.append(f"#SBATCH --account={settings['account']}")
    lines += [f"#SBATCH --time={settings['time']}",
              "#SBATCH --nodes=1",
              "#SBATCH --ntasks=1",
              f"#SBATCH --cpus-per-task={int(settings['cpus'])}"]
    if settings.get("mem"):
        lines.append(f"#SBATCH --mem={settings['mem']}")
    if int(settings.get("gpus") or 0):
        lines.append(f"#SBATCH --gres=gpu:{int(settings['gpus'])}")
    lines += [f"#SBATCH --signal=B:USR1@{int(settings['margin'])}",
              "#SBATCH --output=train.log",
              "#SBATCH --open-mode=append"]
    lines += [ln for ln in settings.get("extra", "").splitlines() if ln.strip()]
    return lines


def batch_script(settings: dict, job_name: str, token: str, argv: list[str], env: dict[str, str]) -> str:
    """The job's script: Slurm's directives, the cluster's environment, then the
    training (``argv``: the host's Python, the launcher, ``train`` ...) in the
    background of a bash that forwards Slurm's signals to it and writes its exit
    code to ``exitcode-$SLURM_JOB_ID``. It is submitted from the run's folder
    (the working directory of the job, where ``train.log`` is appended)."""
    prefix = f"[rave-gui:{token}]"
    exports = " ".join(f"{k}={sh_quote(v)}" for k, v in env.items())
    return "\n".join([
        "#!/bin/bash",
        *directives(settings, job_name, token),
        "# Written by RAVE GUI. The training runs in the background of this shell, which",
        "# forwards Slurm's signals to it: USR1 (the time limit is near) and INT (Stop in",
        "# the app) make it save a stop checkpoint and end; the app then resubmits the run",
        "# with --ckpt until max_steps (USR1 only).",
        *environment(settings),
        f"export {exports}" if exports else "",
        f'echo "{prefix} job=$SLURM_JOB_ID node=$(hostname)"',
        f"{sh_path(argv[0])} {sh_join(argv[1:])} < /dev/null &",
        'pid=$!',
        f"trap 'trapped=1; : > \"timelimit-$SLURM_JOB_ID\"; echo \"{prefix} time-limit: saving a checkpoint "
        "before the time limit\"; kill -INT \"$pid\" 2>/dev/null' USR1",
        "trap 'trapped=1; kill -INT \"$pid\" 2>/dev/null' INT",
        "trap 'trapped=1; kill -TERM \"$pid\" 2>/dev/null' TERM",
        "while :; do",
        "  trapped=",
        '  wait "$pid"; code=$?',
        '  [ -n "$trapped" ] || break  # a trap ended the wait, not the training: wait again',
        "done",
        'echo "$code" > "exitcode-$SLURM_JOB_ID.tmp" && mv "exitcode-$SLURM_JOB_ID.tmp" "exitcode-$SLURM_JOB_ID"',
        'exit "$code"',
        "",
    ])


def preview(machine: dict, cfg: dict, dataset: dict) -> str:
    """The batch script a run on the cluster ``machine`` will submit, as the wizard
    shows it (placeholders for what the launch decides), and how it is submitted."""
    from rave_gui.backend import remote_layout
    work = machine["work_dir"].rstrip("/") or "/"
    launcher = f"{work}/{remote_layout.LAUNCHER_DIR}/rave_launcher-<version>.py"
    out, argv = remote_layout.display_argv(machine, cfg, dataset, machine["python"], launcher)
    env = {"RAVE_GUI_TOKEN": "<token>", "RAVE_GUI_LOG_EVERY": str(int(cfg.get("log_every") or 50)),
           "PYTHONUNBUFFERED": "1"}
    script = batch_script(machine["slurm"], cfg.get("name") or "rave", "<token>", argv, env)
    return f"# submitted with: cd {remote_layout.shell_word(out)} && sbatch --parsable rave-gui.sbatch\n{script}"


# -- commands on the login node ---------------------------------------------------------------
def submit_script(settings: dict, out_dir: str, script_name: str) -> str:
    """``sbatch --parsable`` of a script in the run's folder; prints the job id."""
    return on_login_node(settings, "\n".join([
        f"cd {sh_path(out_dir)} || exit 3",
        f"sbatch --parsable {sh_quote(script_name)}",
    ]))


def find_job_script(settings: dict, token: str) -> str:
    """After a submission whose answer was lost: the person's job with this comment."""
    return on_login_node(settings, f"squeue -h -u \"$(id -un)\" -o '%i %k' | awk '$2 == \"rave-gui-{token}\" "
                                   "{print \"rave-gui-job=\" $1}'")


def state_script(settings: dict, job_id: str) -> str:
    """What Slurm says of a job: squeue while it is queued or runs; once it left
    the queue, scontrol (it keeps ended jobs for ``MinJobAge``) and sacct."""
    job = sh_quote(job_id)
    return on_login_node(settings, "\n".join([
        f"q=$(squeue -h -j {job} -o '%T|%r|%N' 2>/dev/null | head -n 1)",
        f'if [ -n "$q" ]; then echo "{_ANSWER}squeue=$q"; else',
        f"  scontrol show job -o {job} 2>/dev/null | head -n 1 | sed 's/^/{_ANSWER}scontrol=/'",
        f"  sacct -n -P -X -j {job} -o State,ExitCode,Reason 2>/dev/null | head -n 1 | sed 's/^/{_ANSWER}sacct=/'",
        "fi",
        "true",
    ]))


def cancel_script(settings: dict, job_id: str, signal: str | None) -> str:
    """``scancel --signal=INT --batch JOB`` (the batch shell forwards it: a stop
    checkpoint) or, without ``signal``, ``scancel JOB``."""
    if signal not in (None, "INT", "TERM"):
        raise ValueError(f"unknown signal {signal!r}")
    flags = f"--signal={signal} --batch " if signal else ""
    return on_login_node(settings, f"scancel {flags}{sh_quote(job_id)} && echo {_ANSWER}cancel=sent")


def sinfo_script(settings: dict) -> str:
    """"Test connection" for a cluster: the Slurm commands, the partition's nodes."""
    part = sh_quote(settings["partition"])
    return on_login_node(settings, "\n".join([
        "echo @@slurm",
        "for c in sbatch squeue scancel sinfo scontrol; do command -v $c >/dev/null 2>&1 || echo missing=$c; done",
        "echo @@partition",
        f"sinfo -h -p {part} -o '%P|%D|%t|%c|%m|%G|%l' 2>&1; echo \"rc=$?\"",
        "echo @@end",
    ]))


def srun_prefix(settings: dict, time_limit: str = EXPORT_TIME) -> list[str]:
    """``srun`` flags that run one command as a short job on the partition (export)."""
    argv = ["srun", f"--partition={settings['partition']}", f"--time={time_limit}", "--nodes=1", "--ntasks=1",
            f"--cpus-per-task={min(4, int(settings['cpus']))}", "--job-name=rave-gui-export"]
    if settings.get("account"):
        argv.append(f"--account={settings['account']}")
    if settings.get("mem"):
        argv.append(f"--mem={settings['mem']}")
    return argv


# -- reading the answers --------------------------------------------------------------------------
def parse_job_id(stdout: str) -> str | None:
    """``sbatch --parsable`` prints ``ID`` or ``ID;cluster``."""
    for line in (stdout or "").splitlines():
        head = line.strip().split(";", 1)[0]
        if head.isdigit():
            return head
    return None


def submit_refusal(stderr: str) -> str:
    """Slurm's reason for a refused submission, in its own words."""
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    errors = [ln.split("error:", 1)[1].strip() for ln in lines if "error:" in ln]
    reason = errors[-1] if errors else (lines[-1] if lines else "no reason given")
    detail = errors[0] if len(errors) > 1 else ""
    return reason + (f" ({detail})" if detail and detail.lower() != reason.lower() else "")


@dataclass
class JobState:
    state: str            # Slurm's state: PENDING, RUNNING, COMPLETED, TIMEOUT, ...
    reason: str = ""      # Slurm's reason (None when it has none)
    exit_code: int | None = None
    signal: int | None = None
    node: str = ""

    @property
    def pending(self) -> bool:
        return self.state in PENDING

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def ended(self) -> bool:
        return not self.pending and not self.running


PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
           "SUSPENDED", "STOPPED", "RESIZING"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
#: job ends after which the run continues in a new job (from its newest checkpoint)
RESUBMIT_AFTER = {"TIMEOUT", "PREEMPTED", "NODE_FAIL"}


def _exit(text: str) -> tuple[int | None, int | None]:
    code, _, sig = (text or "").partition(":")
    return (int(code) if code.isdigit() else None, int(sig) if sig.isdigit() else None)


def parse_state(stdout: str) -> JobState | None:
    """The job's state from ``state_script``'s answer; None when Slurm knows no such job."""
    found: dict[str, str] = {}
    for line in (stdout or "").splitlines():
        if line.startswith(_ANSWER):
            key, _, value = line[len(_ANSWER):].partition("=")
            found.setdefault(key, value.strip())
    if found.get("squeue"):
        state, reason, node = (found["squeue"].split("|") + ["", ""])[:3]
        return JobState(_base(state), _reason(reason), node=node)
    if found.get("scontrol"):
        text = found["scontrol"]
        state = re.search(r"\bJobState=(\S+)", text)
        if state:
            reason = re.search(r"\bReason=(\S+)", text)
            code, sig = _exit((re.search(r"\bExitCode=(\S+)", text) or [None, ""])[1])
            node = re.search(r"\bBatchHost=(\S+)", text)
            return JobState(_base(state.group(1)), _reason(reason.group(1) if reason else ""), code, sig,
                            node.group(1) if node else "")
    if found.get("sacct"):
        state, code, reason = (found["sacct"].split("|") + ["", ""])[:3]
        exit_code, sig = _exit(code)
        return JobState(_base(state), _reason(reason), exit_code, sig)
    return None


def _base(state: str) -> str:
    """``CANCELLED by 1000`` → ``CANCELLED``; ``RUNNING+`` → ``RUNNING``."""
    return (state or "").split()[0].rstrip("+").upper() if state and state.split() else "UNKNOWN"


def _reason(reason: str) -> str:
    return "" if reason in ("", "None", "(null)") else reason.strip("()")


#: why a job waits, in a sentence (Slurm's most common pending reasons)
PENDING_REASONS = {
    "Priority": "other jobs come first",
    "Resources": "waiting for a free node with the GPUs, CPUs and memory asked for",
    "BeginTime": "waiting for its start time",
    "Dependency": "waiting for another job",
    "JobHeldUser": "held (scontrol release releases it)",
    "JobHeldAdmin": "held by an administrator",
    "ReqNodeNotAvail": "the nodes it needs are not available (maintenance?)",
    "PartitionTimeLimit": "its time limit is above the partition's: lower it on the Machines page",
    "QOSMaxJobsPerUserLimit": "you run as many jobs as your QOS allows",
    "AssocGrpGRES": "your account's GPU allowance is used up for now",
    "AssocMaxJobsLimit": "your account runs as many jobs as it may",
    "PartitionDown": "the partition is down",
    "NodeDown": "a node it needs is down",
}


def pending_note(job_id: str, state: JobState) -> str:
    why = PENDING_REASONS.get(state.reason, state.reason or "waiting")
    return f"pending in Slurm's queue (job {job_id}: {state.reason or 'no reason yet'} — {why})" \
        if state.reason else f"pending in Slurm's queue (job {job_id})"


def ended_sentence(job_id: str, state: JobState, settings: dict) -> tuple[str, str] | None:
    """(app status, sentence) for a job that ended in a way its exit code cannot tell,
    or None when the exit code and log say it (COMPLETED, FAILED)."""
    s = state.state
    if s == "CANCELLED":
        return "failed", (f"Slurm cancelled job {job_id} (scancel, an administrator, or a limit). Resume the run "
                          "to continue from its last checkpoint.")
    if s == "OUT_OF_MEMORY":
        mem = settings.get("mem") or "the partition's default"
        return "failed", (f"Job {job_id} ran out of memory on its node (memory per job: {mem}). Raise the memory "
                          "per job on the Machines page, or lower the batch size, then resume.")
    if s == "TIMEOUT":
        return "failed", (f"Job {job_id} reached its time limit ({settings.get('time')}) before the training "
                          f"saved a checkpoint. Raise the time limit or the checkpoint margin "
                          f"({settings.get('margin')} s) on the Machines page, then resume.")
    if s == "NODE_FAIL":
        return "failed", f"The node of job {job_id} failed. Resume the run to continue from its last checkpoint."
    if s == "PREEMPTED":
        return "failed", (f"Job {job_id} was preempted by a job of higher priority. Resume the run to continue "
                          "from its last checkpoint.")
    if s in ("BOOT_FAIL", "DEADLINE", "REVOKED"):
        return "failed", f"Job {job_id} ended {s} (Slurm's word). Resume the run to continue."
    return None


def partition_check(text: str, partition: str) -> tuple[str, str, dict]:
    """(status "ok"/"warning"/"error", sentence, data) for ``sinfo_script``'s answer."""
    rows, rc = [], "1"
    for line in text.splitlines():
        if line.startswith("rc="):
            rc = line[3:].strip()
        elif line.count("|") >= 6:
            rows.append(line.split("|"))
    if not rows:
        detail = " ".join(ln for ln in text.splitlines() if ln.strip() and not ln.startswith("rc="))
        return "error", (f"Slurm lists no partition {partition!r} ({detail or 'sinfo shows nothing'}). "
                         "`sinfo -s` on the login node lists the partitions you may use."), {}
    nodes = sum(int(r[1]) for r in rows if r[1].isdigit())
    states = sorted({r[2] for r in rows})
    gres = sorted({r[5] for r in rows if r[5] and r[5] != "(null)"})
    limit = rows[0][6]
    data = {"nodes": nodes, "states": states, "gres": gres, "time_limit": limit,
            "cpus": rows[0][3], "memory_mb": rows[0][4]}
    usable = [r for r in rows if r[2].rstrip("*~#$@") in ("idle", "mix", "alloc", "comp", "resv", "plnd")]
    sentence = (f"Partition {partition}: {nodes} node(s) ({', '.join(states)}), {rows[0][3]} CPUs and "
                f"{rows[0][4]} MB each, GPUs: {', '.join(gres) or 'none listed'}, time limit {limit}.")
    if rc != "0" or not usable:
        return "warning", sentence + " No node of it is up now: jobs wait until one is.", data
    return "ok", sentence, data


__all__ = ["DEFAULTS", "JobState", "batch_script", "cancel_script", "clean_settings", "ended_sentence",
           "environment", "find_job_script", "on_login_node", "parse_job_id", "parse_state", "partition_check",
           "pending_note", "sinfo_script", "srun_prefix", "state_script", "submit_refusal", "submit_script",
           "time_seconds"]
