"""The POSIX shell scripts the app runs on a remote host, and how to read their answers.

Every script is built here from quoted words: paths through ``sh_path`` (a
leading ``~`` is the remote home), everything else through ``sh_quote`` /
``sh_join``. ``ssh.remote_shell`` wraps a script into the one string ssh sends.
The scripts print ``rave-gui-KEY=VALUE`` lines; ``answers`` reads them back.

A training starts in its own session (``setsid``) with its output appended to
``train.log`` and its input from /dev/null, so it survives the SSH connection
and the app. A small ``sh`` waits for it and writes its exit code to
``exitcode-TOKEN``; the training's pid, process group and start time (boot id
and the start tick from ``/proc/PID/stat``) identify it later, so a reused pid
is never taken for it. Linux hosts (``/proc``) only.

Plain Python.
"""
from __future__ import annotations

import re

from rave_gui.backend.ssh import sh_join, sh_path, sh_quote

# "boot-id:start-tick" of a pid, or nothing when it does not run
_START_FN = ('st() { [ -r /proc/"$1"/stat ] && printf "%s:%s" "$(cat /proc/sys/kernel/random/boot_id)" '
             '"$(sed "s/.*) //" /proc/"$1"/stat | cut -d " " -f 20)"; }')
_ANSWER_RE = re.compile(r"^rave-gui-([a-z-]+)=(.*)$")
LOG_NAME = "train.log"


def answers(stdout: str) -> dict[str, str]:
    """The ``rave-gui-KEY=VALUE`` lines of a script's output (last one wins)."""
    found = {}
    for line in (stdout or "").splitlines():
        match = _ANSWER_RE.match(line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def section(stdout: str, name: str) -> str:
    """The text a probe printed between ``@@name`` and the next ``@@`` marker."""
    match = re.search(rf"^@@{re.escape(name)}\n(.*?)(?=^@@|\Z)", stdout or "", re.S | re.M)
    return match.group(1) if match else ""


# -- checks -----------------------------------------------------------------------------------
_PY_PROBE = ("import sys, importlib.util as u\n"
             "print('python', sys.version.split()[0])\n"
             "try:\n"
             "    import importlib.metadata as m; print('rave', m.version('acids-rave'))\n"
             "except Exception as e: print('rave-missing', type(e).__name__)\n"
             "print('cli', bool(u.find_spec('scripts') and u.find_spec('scripts.main_cli')))\n")


def probe_script(python: str, work_dir: str) -> str:
    """What "Test connection" asks the host: the Python and its RAVE, rsync,
    setsid, the work folder (created, written, free space), the GPUs, the CPUs."""
    return "\n".join([
        "echo @@python",
        f"{sh_path(python)} -c {sh_quote(_PY_PROBE)} 2>&1; echo \"rc=$?\"",
        "echo @@tools",
        "command -v rsync >/dev/null 2>&1 && echo rsync-ok; command -v setsid >/dev/null 2>&1 && echo setsid-ok;"
        " [ -r /proc/self/stat ] && echo proc-ok",
        "echo @@work",
        f"w={sh_path(work_dir)}",
        'if mkdir -p "$w" 2>&1 && cd "$w" 2>&1; then pwd -P; t=".rave-gui-write-test.$$";'
        ' if ( : > "$t" ) 2>&1; then rm -f "$t"; echo writable; fi; df -Pk . 2>&1 | tail -n 1; fi',
        "echo @@gpus",
        "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1; echo \"rc=$?\"",
        "echo @@cpus",
        "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null",
        "echo @@end",
    ])


def prepare_script(work_dir: str, run_folder: str, launcher_name: str, dataset_folder: str | None,
                   dataset_path: str | None) -> str:
    """Create the work folders and this run's folder; say what is already there
    (the launcher, the dataset copy), the absolute paths, and the free space.
    ``dataset_folder``: the name of the copy under ``datasets/``; ``dataset_path``:
    a dataset that lives on the host (used as is)."""
    lines = [
        f"w={sh_path(work_dir)}",
        'mkdir -p "$w/rave-gui" "$w/datasets" "$w/runs" || exit 3',
        'cd "$w" || exit 3',
        'echo "rave-gui-work=$(pwd -P)"',
        f"mkdir -p runs/{sh_quote(run_folder)} || exit 3",
        f"[ -f rave-gui/{sh_quote(launcher_name)} ] && echo rave-gui-launcher=present",
        'echo "rave-gui-free-kb=$(df -Pk . | tail -n 1 | awk \'{print $4}\')"',
    ]
    if dataset_folder:
        lines.append(f"mkdir -p datasets/{sh_quote(dataset_folder)} || exit 3")
        lines.append(f"[ -f datasets/{sh_quote(dataset_folder)}/.rave-gui-complete ] && "
                     "echo rave-gui-dataset=present")
    if dataset_path:
        lines.append(f"d={sh_path(dataset_path)}")
        lines.append('if [ -f "$d/metadata.yaml" ] && [ -f "$d/data.mdb" ]; then echo "rave-gui-dataset-path=$(cd "$d" && pwd -P)";'
                     ' else echo rave-gui-dataset=missing; fi')
    lines.append("true")
    return "\n".join(lines)


def mark_complete_script(folder: str, fingerprint: str) -> str:
    return f"printf '%s\\n' {sh_quote(fingerprint)} > {sh_quote(folder)}/.rave-gui-complete"


def launch_script(out_dir: str, argv: list[str], token: str, env: dict[str, str]) -> str:
    """Start ``argv`` in ``out_dir`` in its own session, output appended to
    train.log, and print ``rave-gui-started=PID PGID START``. ``argv[0]`` (the
    host's Python) may start with ``~/``."""
    pid_file, code_file = f"pid-{token}", f"exitcode-{token}"
    # the innermost sh writes its pid (then becomes the training with exec) and its
    # parent's (the waiter, leader of the new session = the process group)
    inner = (f'echo "$$ $PPID" > {sh_quote(pid_file + ".tmp")} && mv {sh_quote(pid_file + ".tmp")} '
             f'{sh_quote(pid_file)} && exec "$@"')
    waiter = (f'sh -c {sh_quote(inner)} rave-gui "$@"; echo "$?" > {sh_quote(code_file + ".tmp")} && '
              f'mv {sh_quote(code_file + ".tmp")} {sh_quote(code_file)}')
    env_words = [f"{key}={value}" for key, value in env.items()]
    return "\n".join([
        _START_FN,
        f"cd {sh_quote(out_dir)} || exit 3",
        f"rm -f {sh_quote(pid_file)} {sh_quote(code_file)}",
        f"env {sh_join(env_words)} setsid sh -c {sh_quote(waiter)} rave-gui {sh_path(argv[0])} {sh_join(argv[1:])}"
        f" >> {LOG_NAME} 2>&1 < /dev/null &",
        "i=0",
        f"while [ ! -s {sh_quote(pid_file)} ]; do i=$((i+1));"
        f" if [ $i -gt 300 ]; then echo rave-gui-error=no-start; exit 4; fi; sleep 0.1; done",
        f"read pid pgid < {sh_quote(pid_file)}",
        'echo "rave-gui-started=$pid $pgid $(st $pid)"',
    ])


def started_script(out_dir: str, token: str) -> str:
    """After a launch whose answer was lost: did it start? (same answer as launch_script)."""
    pid_file = f"pid-{token}"
    return "\n".join([
        _START_FN,
        f"cd {sh_quote(out_dir)} || exit 3",
        f"if [ -s {sh_quote(pid_file)} ]; then read pid pgid < {sh_quote(pid_file)};"
        ' echo "rave-gui-started=$pid $pgid $(st $pid)"; fi',
    ])


def status_script(out_dir: str, pid: int, start: str, token: str) -> str:
    """Is the training still the process that started (pid and start time)? Its exit
    code once it ended."""
    return "\n".join([
        _START_FN,
        f"cd {sh_quote(out_dir)} 2>/dev/null || {{ echo rave-gui-status=gone; exit 0; }}",
        f's=$(st {int(pid)}); if [ -n "$s" ] && [ "$s" = {sh_quote(start)} ]; then echo rave-gui-status=alive;'
        " else echo rave-gui-status=dead; fi",
        f"[ -f {sh_quote('exitcode-' + token)} ] && echo \"rave-gui-exit=$(cat {sh_quote('exitcode-' + token)})\"",
        "true",
    ])


def signal_script(pid: int, pgid: int, start: str, sig: str, group: bool) -> str:
    """Send ``sig`` (INT, TERM, KILL) to the training (or its whole process group),
    only while it is still the process that started then."""
    if sig not in ("INT", "TERM", "KILL"):
        raise ValueError(f"unknown signal {sig!r}")
    target = f"-- -{int(pgid)}" if group else str(int(pid))
    return "\n".join([
        _START_FN,
        f's=$(st {int(pid)}); if [ -n "$s" ] && [ "$s" = {sh_quote(start)} ]; then'
        f" kill -s {sig} {target} && echo rave-gui-signal=sent; else echo rave-gui-signal=gone; fi",
    ])


_CKPT_LIST = ("import glob, json, os, sys\n"
              "out = {}\n"
              "for p in glob.glob(os.path.join(glob.escape(sys.argv[1]), 'version_*', 'checkpoints', '*.ckpt')):\n"
              "    try:\n"
              "        s = os.stat(p)\n"
              "    except OSError:\n"
              "        continue\n"
              "    out[os.path.relpath(p, sys.argv[1])] = [s.st_size, s.st_mtime]\n"
              "print('rave-gui-checkpoints=' + json.dumps(out))\n")


def checkpoints_script(python: str, run_dir: str) -> str:
    """The checkpoint files of a run on the host: ``{relative path: [size, mtime]}``."""
    return f"{sh_path(python)} -c {sh_quote(_CKPT_LIST)} {sh_quote(run_dir)}"


def export_script(python: str, launcher: str, run_dir: str, name: str, output_dir: str,
                  fidelity: float, streaming: bool, prefix: list[str] | None = None) -> str:
    """``rave export`` on the host (through the launcher, which runs RAVE's own CLI);
    ``prefix``: a command that runs it (``srun ...``: as a short Slurm job)."""
    argv = [launcher, "export", "--run", run_dir, "--name", name, "--output", output_dir,
            "--fidelity", str(fidelity), "--streaming" if streaming else "--nostreaming"]
    runner = f"{sh_join(prefix)} " if prefix else ""
    return "\n".join([
        f"mkdir -p {sh_quote(output_dir)} || exit 3",
        f"PYTHONUNBUFFERED=1 exec {runner}{sh_path(python)} {sh_join(argv)} 2>&1 < /dev/null",
    ])


def metadata_script(path: str) -> str:
    """A dataset folder on the host: its absolute path and metadata.yaml."""
    return "\n".join([
        f"d={sh_path(path)}",
        'if [ -f "$d/metadata.yaml" ] && [ -f "$d/data.mdb" ]; then echo "rave-gui-path=$(cd "$d" && pwd -P)";'
        ' echo @@metadata; head -c 65536 "$d/metadata.yaml"; else echo rave-gui-path=; fi',
    ])
