"""The crash guard: an unexpected exception is logged and reported, never fatal.

PyQt6 aborts the whole app (``qFatal``) when a slot or ``QThread.run`` raises
while ``sys.excepthook`` is Python's default, which would kill the window and
orphan every run it watches. :func:`install` replaces ``sys.excepthook`` and
``threading.excepthook``: the traceback goes, with a timestamp, to
``<log_dir>/rave-gui-errors.log`` (rotated past 5 MB) and to stderr, and
``notify`` gets one sentence for the person. Plain Python, no Qt: ``notify``
is called on whatever thread failed; the app marshals it to the GUI thread.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import Callable

LOG_NAME = "rave-gui-errors.log"
MAX_LOG_BYTES = 5 * 1024 * 1024
_MAX_DETAIL = 200


def sentence(exc: BaseException, log_file: Path) -> str:
    """What the person reads: what failed, that the runs go on, and where the details are."""
    detail = " ".join(str(exc).split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "\u2026"
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return (f"Something went wrong inside RAVE GUI ({what}). Your runs keep going; "
            f"the details are in {log_file}.")


class CrashGuard:
    """The installed hooks; :meth:`uninstall` puts the previous ones back."""

    def __init__(self, log_dir: str | Path, notify: Callable[[str], None] | None = None):
        self.log_file = Path(log_dir) / LOG_NAME
        self.notify = notify
        self._write_lock = threading.Lock()
        self._previous = (sys.excepthook, threading.excepthook)

    # -- hooks --------------------------------------------------------------------------
    def excepthook(self, exc_type: type[BaseException], exc: BaseException,
                   tb: TracebackType | None, where: str = "") -> None:
        if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C in the terminal: Python's default
            sys.__excepthook__(exc_type, exc, tb)
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        thread = where or threading.current_thread().name
        self.record(f"{_dt.datetime.now().isoformat(timespec='seconds')} "
                    f"unexpected error in {thread}\n{text}\n")
        if self.notify is not None:
            try:
                self.notify(sentence(exc, self.log_file))
            except Exception:  # noqa: BLE001 - the notice failed; the log has the error
                self.record("The error notice itself failed:\n" + traceback.format_exc() + "\n")

    def thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:  # a thread that exits on purpose
            return
        name = args.thread.name if args.thread is not None else "a thread"
        self.excepthook(args.exc_type, args.exc_value, args.exc_traceback, where=f"thread {name}")

    # -- the log ------------------------------------------------------------------------
    def record(self, text: str) -> None:
        """Append to the log (rotating it past MAX_LOG_BYTES) and echo to stderr.
        Never raises: a full disk must not turn one error into a crash."""
        if sys.stderr is not None:
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except Exception:  # noqa: BLE001
                pass
        with self._write_lock:
            try:
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                if self.log_file.exists() and self.log_file.stat().st_size > MAX_LOG_BYTES:
                    os.replace(self.log_file, self.log_file.with_name(LOG_NAME + ".1"))
                with open(self.log_file, "a", encoding="utf-8", errors="replace") as log:
                    log.write(text)
            except OSError:
                pass

    def uninstall(self) -> None:
        if sys.excepthook == self.excepthook:
            sys.excepthook = self._previous[0]
        if threading.excepthook == self.thread_excepthook:
            threading.excepthook = self._previous[1]


def install(log_dir: str | Path, notify: Callable[[str], None] | None = None) -> CrashGuard:
    """Log and report every unexpected exception instead of letting it end the app."""
    guard = CrashGuard(log_dir, notify)
    sys.excepthook = guard.excepthook
    threading.excepthook = guard.thread_excepthook
    return guard
