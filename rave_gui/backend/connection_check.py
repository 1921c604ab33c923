""""Test connection": what a remote machine needs, checked in order, each failure a sentence.

1. reachable (the SSH server answers)      2. host key known (else: its fingerprint)
3. login (a key is accepted)               4. Python with `rave` (version)
5. rsync and setsid on the host            6. the work folder (created, writable, free space)
7. GPUs (``nvidia-smi``; none: "no NVIDIA GPU", a warning: CPU runs still work)

A Slurm cluster (``slurm`` settings) runs 4-6 after its modules and setup lines, and
instead of 7: 8. the Slurm commands and the partition (``sinfo``: nodes, GPUs, state).

A failure of 1-3 stops there (nothing else can be asked). Plain Python; it blocks
(seconds), so the UI runs it off its thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rave_gui.backend import slurm as slurm_cli
from rave_gui.backend.remote_scripts import probe_script, section
from rave_gui.backend.ssh import (MIN_FREE_BYTES, SSHError, SSHTarget, classify_ssh_failure,
                                  explain_ssh_failure, last_line, local_rsync_problem, run_local,
                                  scan_host_key)

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass
class Check:
    name: str            # "reachable", "host key", "login", "rave", "tools", "work folder", "gpus"
    status: str          # ok, warning, error
    message: str         # a sentence
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != ERROR


def _gb(n: float) -> str:
    return f"{n / 1024 ** 3:.1f} GB"


def test_connection(target: SSHTarget, python: str, work_dir: str,
                    min_free_bytes: int = MIN_FREE_BYTES, timeout: float = 60.0,
                    slurm: dict | None = None) -> list[Check]:
    """Every check, in order (see the module). The unknown-host-key check carries the
    key in ``data["host_key"]`` (an ``ssh.HostKey``) for ``ssh.accept_host_key``."""
    checks: list[Check] = []
    where = target.describe()
    problem = local_rsync_problem()
    if problem:
        return [Check("tools", ERROR, problem)]
    try:
        first = run_local(target.ssh_argv("echo rave-gui-ok", multiplex=False), timeout=timeout, check=False, target=target)
    except SSHError as exc:
        return [Check("reachable", ERROR, str(exc))]
    if first.returncode == 255 or "rave-gui-ok" not in first.stdout:
        kind = classify_ssh_failure(first.stderr)
        sentence = explain_ssh_failure(first.stderr, where)
        if kind in ("resolve", "refused", "timeout", "unreachable", "closed", "other"):
            return [Check("reachable", ERROR, sentence)]
        checks.append(Check("reachable", OK, f"{where} answers."))
        if kind == "hostkey-unknown":
            try:
                key = scan_host_key(target)
            except SSHError as exc:
                return checks + [Check("host key", ERROR, str(exc))]
            return checks + [Check(
                "host key", ERROR,
                f"The host key of {where} is not known yet. Its fingerprint is "
                + "; ".join(key.fingerprints) + ". Accept it only if it is the one of your server "
                "(its administrator, or `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there, can tell).",
                {"host_key": key, "fingerprints": key.fingerprints})]
        if kind == "hostkey-changed":
            return checks + [Check("host key", ERROR, sentence)]
        checks.append(Check("host key", OK, "The host key is known."))
        return checks + [Check("login", ERROR, sentence)]
    checks += [Check("reachable", OK, f"{where} answers."), Check("host key", OK, "The host key is known."),
               Check("login", OK, "The login works (key accepted).")]
    script = probe_script(python, work_dir)
    try:
        probe = target.run(slurm_cli.on_login_node(slurm, script) if slurm else script, timeout=timeout,
                           check=False)
    except SSHError as exc:
        return checks + [Check("rave", ERROR, str(exc))]
    out = probe.stdout
    checks.append(_rave_check(section(out, "python"), python, where))
    checks.append(_tools_check(section(out, "tools"), where))
    checks.append(_work_check(section(out, "work"), work_dir, where, min_free_bytes))
    if slurm:
        checks += _slurm_checks(target, slurm, where, timeout)
        return checks
    gpus_check = _gpu_check(section(out, "gpus"), where)
    cpus = section(out, "cpus").strip()
    gpus_check.data["cpus"] = int(cpus) if cpus.isdigit() else None
    checks.append(gpus_check)
    return checks


def _slurm_checks(target: SSHTarget, settings: dict, where: str, timeout: float) -> list[Check]:
    """The Slurm commands on the login node, and the partition as ``sinfo`` sees it."""
    try:
        out = target.run(slurm_cli.sinfo_script(settings), timeout=timeout, check=False).stdout
    except SSHError as exc:
        return [Check("slurm", ERROR, str(exc))]
    missing = [ln[8:] for ln in section(out, "slurm").splitlines() if ln.startswith("missing=")]
    if missing:
        return [Check("slurm", ERROR, f"{where} has no {', '.join(missing)}: it is not a Slurm login node, or "
                                      "Slurm's commands need a module or setup line (add it to the settings).")]
    status, sentence, data = slurm_cli.partition_check(section(out, "partition"), settings["partition"])
    gpus = int(settings.get("gpus") or 0)
    asked = (f"Each job asks for {gpus} GPU(s), {settings['cpus']} CPUs"
             + (f", {settings['mem']} of memory" if settings.get("mem") else "")
             + f" and {settings['time']} (checkpoint {settings['margin']} s before the limit).")
    return [Check("slurm", OK, "sbatch, squeue, scancel, sinfo and scontrol are there."),
            Check("partition", {"ok": OK, "warning": WARNING}.get(status, ERROR), sentence, data),
            Check("gpus", OK, asked, {"gpus": [{"name": "Slurm GPU"}] * gpus, "cpus": settings["cpus"]})]


def _rave_check(text: str, python: str, where: str) -> Check:
    lines = dict(ln.split(" ", 1) for ln in text.splitlines() if " " in ln)
    rc = next((ln[3:] for ln in text.splitlines() if ln.startswith("rc=")), "")
    if "python" not in lines:
        detail = last_line(text.replace("rc=" + rc, "")) or f"exit code {rc}"
        return Check("rave", ERROR, f"The Python {python!r} does not run on {where} ({detail}). Give the "
                                    "path of the Python (or venv's bin/python) that has acids-rave installed.")
    if "rave" not in lines:
        return Check("rave", ERROR, f"The Python {python!r} on {where} (Python {lines['python']}) has no "
                                    "acids-rave. Install it there (pip install acids-rave==2.3.1), or "
                                    "give the Python of the environment that has it.")
    if lines.get("cli") != "True":
        return Check("rave", ERROR, f"acids-rave {lines['rave']} on {where} has no `scripts.main_cli` (the "
                                    "`rave` command's code). Reinstall it: pip install acids-rave==2.3.1.")
    return Check("rave", OK, f"rave {lines['rave']} (Python {lines['python']}) runs on {where}.",
                 {"rave_version": lines["rave"], "python_version": lines["python"]})


def _tools_check(text: str, where: str) -> Check:
    missing = [name for name in ("rsync", "setsid") if f"{name}-ok" not in text]
    if "proc-ok" not in text:
        return Check("tools", ERROR, f"{where} has no /proc: the app follows runs only on Linux hosts.")
    if missing:
        return Check("tools", ERROR, f"{where} lacks {' and '.join(missing)}; install it there "
                                     "(apt install rsync util-linux).")
    return Check("tools", OK, "rsync and setsid are there.")


def _work_check(text: str, work_dir: str, where: str, min_free_bytes: int) -> Check:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    absolute = lines[0] if lines and lines[0].startswith("/") else None
    if absolute is None:
        return Check("work folder", ERROR, f"The work folder {work_dir} cannot be created on {where} "
                                           f"({last_line(text) or 'no reason given'}). Choose a folder you own.")
    if "writable" not in lines:
        return Check("work folder", ERROR, f"The work folder {absolute} on {where} is not writable "
                                           f"({last_line(text.replace(absolute, ''))}). Choose a folder you own, "
                                           "or fix its permissions.")
    try:
        free = int(lines[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        return Check("work folder", WARNING, f"The free space in {absolute} could not be read.",
                     {"path": absolute})
    data = {"path": absolute, "free_bytes": free}
    if free < min_free_bytes:
        return Check("work folder", ERROR, f"Only {_gb(free)} is free in {absolute} on {where}; a RAVE run "
                                           f"needs at least {_gb(min_free_bytes)} (the dataset copy and "
                                           "checkpoints of a few hundred MB each). Free some space, or choose "
                                           "a work folder on a larger disk.", data)
    return Check("work folder", OK, f"{absolute} is writable, {_gb(free)} free.", data)


def _gpu_check(text: str, where: str) -> Check:
    rows = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("rc=")]
    rc = next((ln[3:] for ln in text.splitlines() if ln.startswith("rc=")), "1")
    gpus = []
    if rc == "0":
        for row in rows:
            name, _, memory = row.rpartition(",")
            if name:
                gpus.append({"name": name.strip(), "memory": memory.strip()})
    if not gpus:
        return Check("gpus", WARNING, f"{where} has no NVIDIA GPU (nvidia-smi lists none): runs there "
                                      "train on its CPU, which is very slow.", {"gpus": []})
    listed = ", ".join(f"GPU {i}: {g['name']} ({g['memory']})" for i, g in enumerate(gpus))
    return Check("gpus", OK, listed + ".", {"gpus": gpus})


def problems(checks: list[Check]) -> list[str]:
    return [c.message for c in checks if c.status == ERROR]


test_connection.__test__ = False  # not a pytest test, whatever imports it
