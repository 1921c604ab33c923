"""ProcessThread: run one external command from a QThread.

* The command is an argv list, never a shell string.
* The child runs in its own session / process group, so a stop reaches every
  process it spawned (RAVE's data-loader workers) and the child survives the
  app dying (it writes to a log file, not to a pipe the app holds).
* Output goes to a log file which the thread follows; lines are split on both
  ``\\n`` and ``\\r`` (tqdm and Lightning redraw their bars with ``\\r``).
* ``stop()`` returns at once; the thread escalates SIGINT -> SIGTERM ->
  SIGKILL to the whole group, with timeouts, and reaps what is left.
* The app's own bookkeeping never ends the child: an exception in a hook
  (``handle_line``, ``poll``, ...) is reported through ``warning`` and the
  thread goes on following; a line longer than ``MAX_LINE`` is cut (its end is
  dropped up to the next newline), so a runaway line cannot fill the memory.
* ``tail`` keeps the last ``TAIL_LINES`` lines of output (for explaining a failure).
"""
from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import psutil
from PyQt6.QtCore import QThread, pyqtSignal

from rave_gui.core.process_group import end_group, interrupt, kill_group

_LINE_SPLIT = re.compile(rb"\r\n|\r|\n")
#: the longest line kept (bytes); the rest of a longer line is dropped
MAX_LINE = 64 * 1024
#: the most read from the log in one go
READ_CHUNK = 1 << 20
TAIL_LINES = 40
CUT_MARK = " [… line cut: too long]"


def split_output(buffer: bytes) -> tuple[list[str], bytes]:
    """Split ``buffer`` into complete lines and the unfinished remainder."""
    parts = _LINE_SPLIT.split(buffer)
    rest = parts.pop()
    return [p.decode("utf-8", "replace") for p in parts], rest


class LineSplitter:
    """Bytes in, lines out (split on \\n and \\r), no line longer than ``MAX_LINE``:
    the start of a longer one is kept with a mark, the rest dropped up to the next
    line break."""

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self.pending = b""
        self.skipping = False

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        data = self.pending + chunk
        if self.skipping:
            match = _LINE_SPLIT.search(data)
            if match is None:
                self.pending = b""
                return lines
            self.skipping = False
            data = data[match.end():]
        done, rest = split_output(data)
        lines += done
        if len(rest) > self.max_line:
            lines.append(rest[:self.max_line].decode("utf-8", "replace") + CUT_MARK)
            rest, self.skipping = b"", True
        self.pending = rest
        return lines

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return [rest.decode("utf-8", "replace")] if rest and not self.skipping else []


class ProcessThread(QThread):
    output = pyqtSignal(str)
    progress = pyqtSignal(int, str)
    finished = pyqtSignal(bool, str)  # success, message
    warning = pyqtSignal(str)  # the app's bookkeeping had trouble; the process goes on

    #: seconds to wait after SIGINT before SIGTERM, and after SIGTERM before SIGKILL
    interrupt_timeout = 10.0
    terminate_timeout = 5.0
    poll_interval = 0.1

    def __init__(self, command: Sequence[str] | None = None, cwd: str | os.PathLike | None = None,
                 env: dict | None = None, log_path: str | os.PathLike | None = None, parent=None):
        super().__init__(parent)
        self.command = list(command) if command is not None else None
        self.cwd = cwd
        self.env = env
        self.log_path = Path(log_path) if log_path else None
        self.returncode: int | None = None
        self.pid: int | None = None
        self.stop_requested = False
        self._stop_at: float | None = None
        self._popen: subprocess.Popen | None = None
        self.error: str | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.hook_errors = 0

    # -- hooks for subclasses ------------------------------------------------
    def build_command(self) -> list[str]:
        if not self.command:
            raise ValueError("No command to run.")
        return self.command

    def prepare(self) -> None:
        """Checks before launch; raise with a sentence to refuse to start."""

    def on_started(self, pid: int) -> None:
        """Called in the worker thread once the child runs."""

    def handle_line(self, line: str) -> None:
        """Called in the worker thread for each line of output."""

    def poll(self) -> None:
        """Called in the worker thread every ``poll_interval`` while it runs."""

    def on_refused(self, message: str) -> None:
        """Called in the worker thread when the command could not start."""

    def on_error(self, message: str) -> None:
        """Called in the worker thread when the app's own code failed mid-run
        (the child has been ended by then)."""

    def on_hook_error(self, where: str, exc: BaseException) -> None:
        """A hook raised: say so (once per kind of error) and keep following."""
        self.hook_errors += 1
        text = f"{type(exc).__name__}: {exc}"
        if text != getattr(self, "_last_hook_error", None):
            self._last_hook_error = text
            self.warning.emit(f"The app had trouble while {where} ({text}); the process keeps running.")

    def _guard(self, where: str, hook, *args) -> None:
        try:
            hook(*args)
        except Exception as exc:  # noqa: BLE001 - bookkeeping must never end the child
            self.on_hook_error(where, exc)

    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self.stop_requested:
            return False, "Stopped."
        if returncode == 0:
            return True, "Finished."
        return False, f"The command exited with code {returncode}."

    # -- control -------------------------------------------------------------
    def stop(self) -> None:
        """Ask the process group to stop; escalation happens in the thread."""
        if self.stop_requested:
            return
        self.stop_requested = True
        self._stop_at = time.monotonic()
        if self.pid:
            interrupt(self.pid)

    # -- the thread ------------------------------------------------------------
    def run(self) -> None:  # noqa: C901 - one linear story
        try:
            self.prepare()
            argv = self.build_command()
        except Exception as exc:  # refuse to start, with the reason
            self._refuse(str(exc))
            return
        if self.stop_requested:
            self._refuse("Stopped before it started.")
            return
        temp = None
        if self.log_path is None:
            temp = tempfile.NamedTemporaryFile(prefix="rave-gui-", suffix=".log", delete=False)
            temp.close()
            log_path = Path(temp.name)
        else:
            log_path = self.log_path
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(log_path, "ab") as sink:
                    start_offset = sink.tell()
                    self._popen = subprocess.Popen(
                        argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                        stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                    )
            except OSError as exc:
                self._refuse(f"Could not start {argv[0]}: {exc.strerror or exc}.")
                return
            except (ValueError, TypeError) as exc:  # an embedded NUL byte, a non-string argument
                self._refuse(f"Could not start {argv[0] if argv else 'the command'}: "
                             f"its arguments are not valid ({exc}).")
                return
            self.pid = self._popen.pid
            if self.stop_requested:  # stop() raced with the start
                interrupt(self.pid)
            popen = self._popen
            ok, message = self._follow_to_the_end(log_path, start_offset, popen.poll,
                                                  on_start=lambda: self.on_started(self.pid),
                                                  reap=popen.wait)
        finally:
            if temp is not None:
                with_suppress_unlink(log_path)
        self.finished.emit(ok, message)

    def run_attached(self, pid: int, log_path: Path) -> None:
        """Follow a process this thread did not start (left by an earlier session
        of the app): its log from the current end, until it exits. The exit
        code of a process that is not our child is unknown: 0 is passed to
        ``outcome``, which must judge from the output."""
        self.pid = pid
        if self.stop_requested:
            interrupt(pid)
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            proc = None

        def exit_code():
            try:
                alive = proc is not None and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            return None if alive else 0
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.touch()
            offset = log_path.stat().st_size
        except OSError as exc:
            self._refuse(f"Cannot read the run's log {log_path}: {exc.strerror or exc}.")
            return
        ok, message = self._follow_to_the_end(log_path, offset, exit_code, on_start=lambda: None,
                                              reap=lambda: None)
        self.finished.emit(ok, message)

    def _follow_to_the_end(self, log_path, offset, poll_exit, on_start, reap) -> tuple[bool, str]:
        self._guard("recording the start", on_start)
        try:
            code = self._follow(log_path, offset, poll_exit)
        except Exception as exc:  # noqa: BLE001 - the log cannot be followed: wait for the end anyway
            # (an exception escaping QThread.run aborts a PyQt app, and finished would never come;
            # ending the child for it would cost the person their training)
            self.on_hook_error("following the output", exc)
            code = self._wait_unfollowed(poll_exit)
        reap()
        self.returncode = code
        try:
            return self.outcome(code)
        except Exception as exc:  # noqa: BLE001 - the process has ended; report, never abort
            self.error = f"{type(exc).__name__}: {exc}"
            message = f"The run ended, but the app could not record how ({self.error})."
            self._guard("reporting the error", self.on_error, message)
            return False, message

    #: a process whose end cannot be checked this many times in a row counts as ended (killed)
    max_poll_failures = 100

    def _wait_unfollowed(self, poll_exit) -> int:
        failures = 0
        while True:
            try:
                code = poll_exit()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - an escaping exception would abort the app
                failures += 1
                if failures == 1:
                    self.on_hook_error("checking whether the process ended", exc)
                code = -9 if failures >= self.max_poll_failures else None
            if code is not None:
                break
            self._escalate()
            time.sleep(self.poll_interval)
        if self.pid:
            end_group(self.pid)
        return code

    def _refuse(self, message: str) -> None:
        self.error = message
        self.on_refused(message)
        self.finished.emit(False, message)

    def _follow(self, log_path: Path, offset: int, poll_exit) -> int:
        """Follow the log until the process exits; escalate a requested stop."""
        splitter = LineSplitter()
        with open(log_path, "rb") as source:
            source.seek(offset)
            while True:
                code = poll_exit()
                chunk = source.read(READ_CHUNK)
                for line in splitter.feed(chunk):
                    self._emit_line(line)
                self._guard("reading the run's progress", self.poll)
                if code is not None and len(chunk) < READ_CHUNK:
                    break
                self._escalate()
                if not chunk:
                    time.sleep(self.poll_interval)
            # the leader is gone: end what it left behind (worker processes)
            if self.pid:
                end_group(self.pid)
            while True:
                chunk = source.read(READ_CHUNK)
                if not chunk:
                    break
                for line in splitter.feed(chunk):
                    self._emit_line(line)
            for line in splitter.flush():
                self._emit_line(line)
        self._guard("reading the run's progress", self.poll)
        return code

    def _emit_line(self, line: str) -> None:
        if not line.strip():
            return
        self.tail.append(line)
        self.output.emit(line)
        self._guard("reading the output", self.handle_line, line)

    def _escalate(self) -> None:
        if self._stop_at is None or not self.pid:
            return
        waited = time.monotonic() - self._stop_at
        if waited > self.interrupt_timeout + self.terminate_timeout:
            kill_group(self.pid, signal.SIGKILL)
        elif waited > self.interrupt_timeout:
            if not getattr(self, "_sent_term", False):
                self._sent_term = True
                kill_group(self.pid, signal.SIGTERM)


def with_suppress_unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
