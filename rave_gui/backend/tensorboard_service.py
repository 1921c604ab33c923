"""TensorBoard for one or more runs: the real ``tensorboard``, on 127.0.0.1 only.

``TensorBoardService.open({name: run_dir, ...})`` starts ``tensorboard
--logdir_spec name:dir,... --host 127.0.0.1 --port N --reload_interval 5`` in
its own process group (argv list, never a shell), waits (bounded) until it
answers HTTP and returns its URL. Asked again for the same runs, it returns the
running instance; asked for other runs, it restarts. ``stop()`` ends the whole
group (SIGTERM, then SIGKILL). Plain Python: no Qt; opening a browser is left
to the caller (``webbrowser.open(url)``) unless ``open_browser=True``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from rave_gui.core.process_group import end_group, kill_group, live_group_members

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
RELOAD_INTERVAL = 5


def find_tensorboard() -> str | None:
    """The ``tensorboard`` next to this Python (the venv's), else the one on PATH."""
    for name in ("tensorboard", "tensorboard.exe"):
        beside = Path(sys.executable).parent / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
    return shutil.which("tensorboard")


def free_port(host: str = HOST) -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def sanitize_name(name: str) -> str:
    """A run name TensorBoard's ``--logdir_spec`` can carry: no ':' or ',', not
    starting with '/' (that would read as a path), not empty."""
    cleaned = "".join("_" if c in ":," or ord(c) < 32 else c for c in str(name)).strip()
    cleaned = cleaned.lstrip("/").strip()
    return cleaned or "run"


def logdir_spec(run_dirs: dict[str, Path]) -> tuple[str, tuple]:
    """``name1:dir1,name2:dir2`` and a key that identifies the set of runs.
    Names are sanitised and made unique; a folder whose path contains a comma
    cannot be passed and raises ``ValueError``."""
    if not run_dirs:
        raise ValueError("Choose at least one run to show in TensorBoard.")
    used: set[str] = set()
    parts = []
    for name, folder in run_dirs.items():
        if folder is None:
            raise ValueError(f"The run {name!r} has no run folder yet: start it first.")
        path = Path(folder).expanduser().resolve()
        if "," in str(path):
            raise ValueError(f"TensorBoard cannot read the folder {path} because its path contains "
                             "a comma; move or rename it.")
        if not path.is_dir():
            raise ValueError(f"The run folder {path} does not exist (was it moved or deleted?).")
        base = unique = sanitize_name(name)
        n = 2
        while unique in used:
            unique, n = f"{base} ({n})", n + 1
        used.add(unique)
        parts.append((unique, str(path)))
    return ",".join(f"{n}:{p}" for n, p in parts), tuple(sorted(parts))


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """Does ``url`` answer HTTP at all (any status)? Proxies are bypassed."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            response.read(1)
        return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


class TensorBoardService:
    """One ``tensorboard`` process at a time, started on demand."""

    def __init__(self, executable: str | os.PathLike | None = None, host: str = HOST,
                 start_timeout: float = START_TIMEOUT, stop_timeout: float = STOP_TIMEOUT):
        self._executable = str(executable) if executable is not None else None
        self.host = host
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen | None = None
        self._key: tuple | None = None
        self._url: str | None = None
        self._output = None  # temporary file with tensorboard's output
        self._last_output = ""

    # -- state -------------------------------------------------------------------
    @property
    def url(self) -> str | None:
        """The running instance's URL, or None."""
        return self._url if self.running else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    def executable(self) -> str:
        """The ``tensorboard`` program to run, or ``ValueError`` saying what to do."""
        if self._executable is not None:
            found = shutil.which(self._executable) if os.sep not in self._executable \
                else (self._executable if os.path.isfile(self._executable)
                      and os.access(self._executable, os.X_OK) else None)
            if found:
                return found
            raise ValueError(f"TensorBoard was not found at {self._executable}. Install it in the "
                             "app's environment (pip install tensorboard) or choose another program.")
        found = find_tensorboard()
        if found is None:
            raise ValueError("TensorBoard is not installed: install it in the app's environment "
                             "(pip install tensorboard) and try again.")
        return found

    # -- start -------------------------------------------------------------------
    def open(self, run_dirs: dict[str, Path], open_browser: bool = False) -> str:
        """Serve ``run_dirs`` ({run name: RAVE run folder}) and return the URL
        ``http://127.0.0.1:PORT/``. The running instance is reused for the same
        runs and restarted for others. Raises ``ValueError`` with a sentence when
        TensorBoard is missing, a folder is unusable, or it does not start."""
        spec, key = logdir_spec(run_dirs)
        if self.running and key == self._key and self._url:
            url = self._url
        else:
            program = self.executable()
            self.stop()
            url = self._start(program, spec, key)
        if open_browser:
            import webbrowser
            webbrowser.open(url)
        return url

    def _start(self, program: str, spec: str, key: tuple) -> str:
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between the check and the bind
            port = free_port(self.host)
            argv = [program, "--logdir_spec", spec, "--host", self.host, "--port", str(port),
                    "--reload_interval", str(RELOAD_INTERVAL)]
            output = tempfile.TemporaryFile()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                output.close()
                raise ValueError(f"TensorBoard could not be started ({exc.strerror or exc}).") from exc
            self._proc, self._key, self._output = proc, key, output
            url = f"http://{self.host}:{port}/"
            if self._wait_until_serving(url):
                self._url = url
                return url
            last_error = self._read_output()
            self.stop()
            if "address already in use" not in last_error.lower() \
                    and "could not bind" not in last_error.lower():
                break
        detail = _last_lines(last_error)
        raise ValueError("TensorBoard did not start"
                         + (f": {detail}" if detail else f" within {self.start_timeout:g} s.")
                         + " See that the run folders are readable and try again.")

    def _wait_until_serving(self, url: str) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if http_answers(url, timeout=1.0):
                return self._proc.poll() is None
            time.sleep(0.2)
        return False

    def _read_output(self) -> str:
        if self._output is None:
            return self._last_output
        try:
            self._output.seek(0)
            return self._output.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def output(self) -> str:
        """What the current (or last failed) tensorboard printed."""
        return self._read_output()

    # -- stop --------------------------------------------------------------------
    def stop(self) -> None:
        """End tensorboard and everything in its process group (SIGTERM, SIGKILL
        after ``stop_timeout``). Safe to call at any time, any number of times."""
        proc, self._proc, self._key, self._url = self._proc, None, None, None
        if proc is not None:
            pgid = proc.pid  # start_new_session: the leader's pid is the group id
            if proc.poll() is None:
                kill_group(pgid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    pass
            deadline = time.monotonic() + self.stop_timeout
            while live_group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            end_group(pgid)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        if self._output is not None:
            self._last_output = self._read_output()
            self._output.close()
            self._output = None

    def __del__(self):
        try:
            self.stop()
        except Exception:  # interpreter shutdown
            pass


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()
             and "TensorFlow installation not found" not in line]
    return " ".join(lines[-count:])
