"""Command lines and output parsing for the model scripts (``model_check``,
``model_try``), which run with torch in a subprocess. Plain Python: no Qt, no torch.

The scripts run with the interpreter that runs ``rave`` (the one with torch and
RAVE), by file path, so they work even where that Python does not have the app
installed. Each prints ``progress: PERCENT what`` lines and one JSON line last.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rave_gui.backend import rave_cli

HERE = Path(__file__).resolve().parent
CHECK_SCRIPT = HERE / "model_check.py"
TRY_SCRIPT = HERE / "model_try.py"
CHECK_TIMEOUT = 600.0


def tool_python(rave: str | os.PathLike | None = None) -> str:
    """The Python with torch: the one that runs ``rave`` (else this one)."""
    try:
        return rave_cli.interpreter_for(rave_cli.find_rave(rave))
    except rave_cli.RaveNotFound:
        return sys.executable


def check_command(model: str | os.PathLike, python: str | None = None) -> list[str]:
    return [python or tool_python(), str(CHECK_SCRIPT), str(model)]


def try_command(model, audio_in, audio_out, *, scale=(), bias=(), device: str = "auto",
                input_copy=None, python: str | None = None) -> list[str]:
    argv = [python or tool_python(), str(TRY_SCRIPT), str(model), str(audio_in), str(audio_out),
            "--device", device]
    if any(float(s) != 1.0 for s in scale):
        argv += ["--scale", ",".join(f"{float(s):g}" for s in scale)]
    if any(float(b) != 0.0 for b in bias):
        argv += ["--bias", ",".join(f"{float(b):g}" for b in bias)]
    if input_copy:
        argv += ["--input-copy", str(input_copy)]
    return argv


def parse_progress(line: str) -> tuple[int, str] | None:
    if not line.startswith("progress: "):
        return None
    head, _, what = line[len("progress: "):].partition(" ")
    try:
        return max(0, min(100, int(head))), what.strip()
    except ValueError:
        return None


def parse_result(line: str) -> dict | None:
    """The script's JSON line (a dict with ``ok`` and ``message``), else None."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and "ok" in value and "message" in value else None


def no_result(tail: list[str], returncode: int | None, what: str) -> dict:
    """A result for a script that printed no JSON (killed, crashed, no torch)."""
    text = "\n".join(tail)
    if "No module named 'torch'" in text:
        reason = ("torch is not installed for the Python that runs rave; install acids-rave "
                  "(`pip install acids-rave==2.3.1`) in that environment.")
    elif returncode is not None and returncode < 0:
        reason = f"it was killed by signal {-returncode} (out of memory?)."
    else:
        last = next((line for line in reversed(tail) if line.strip()), "")
        reason = f"it exited with code {returncode}{': ' + last[:300] if last else ''}."
    return {"ok": False, "message": f"The {what} did not finish: {reason}"}


def run_check(model, python: str | None = None, should_stop=lambda: False,
              timeout: float = CHECK_TIMEOUT, on_progress=None) -> dict | None:
    """Run ``model_check`` on ``model`` and wait (for a worker thread: the export's).
    Returns its result, or None when ``should_stop()`` turned true (the check's
    process group is then ended). Output goes through a temporary file, read as it grows."""
    lines: list[str] = []
    result = None
    pending = b""

    def take(data: bytes) -> None:
        nonlocal pending, result
        *done, pending = (pending + data).split(b"\n")
        for raw in done:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            lines.append(line)
            del lines[:-40]
            step = parse_progress(line)
            if step and on_progress:
                on_progress(*step)
            result = parse_result(line) or result

    with tempfile.TemporaryFile() as sink:
        proc = subprocess.Popen(check_command(model, python), stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        offset = 0
        try:
            while True:
                done = proc.poll() is not None
                sink.seek(offset)
                data = sink.read()
                offset += len(data)
                take(data)
                if done:
                    break
                if should_stop():
                    return None
                if time.monotonic() > deadline:
                    return {"ok": False, "message": f"The check did not finish in {timeout:.0f} s; the model "
                                                    "is treated as broken. Check it again from the Models page."}
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
    take(b"\n")
    return result or no_result(lines[-20:], proc.returncode, "check")
