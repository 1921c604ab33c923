"""What the loopback test services have in common (``sshd_for_tests.py``,
``slurm_for_tests.py``): a folder to live in, free ports on 127.0.0.1, daemons
started in their own session with their output in a log, waiting until they
listen, finding the processes that are ours (and only ours) and ending them, and
a script's main loop that stops everything on Ctrl-C.

Nothing here binds or connects to anything but 127.0.0.1 (or a Unix socket), and
nothing here ends a process the caller did not name: the callers say what marks
their own processes (a command-line fragment, an environment variable, a pid).
``psutil`` is imported only where it is needed, so that the scripts start without it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

LOOPBACK = "127.0.0.1"


class LoopbackService:
    """Base of a loopback test service: ``with Service(...) as s:`` starts it and
    stops it. Subclasses define ``start()`` (returning self) and ``stop()``."""

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def service_folder(root: str | os.PathLike | None, prefix: str) -> Path:
    """The folder a service lives in: ``root`` (made when missing), or a new
    temporary folder named ``prefix...`` when ``root`` is None or empty."""
    folder = Path(root) if root else Path(tempfile.mkdtemp(prefix=prefix))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port(avoid: tuple[int, ...] = ()) -> int:
    """A TCP port free on 127.0.0.1 just now (the system's pick), none of ``avoid``.
    Someone may take it before it is used: callers retry on "address in use"."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def find_executable(name: str, folders: Iterable[str], *, path_first: bool = True) -> str | None:
    """The program ``name``: on PATH or in one of ``folders`` (sbin folders are not
    on a normal user's PATH), PATH first unless ``path_first`` is false; None when
    neither has it."""
    def in_folders() -> str | None:
        for folder in folders:
            path = os.path.join(folder, name)
            if os.access(path, os.X_OK):
                return path
        return None
    if path_first:
        return shutil.which(name) or in_folders()
    return in_folders() or shutil.which(name)


def spawn_logged(argv: list[str], log_path: str | os.PathLike, *, env: dict,
                 cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``argv`` in a new session (a Ctrl-C at the terminal does not reach it;
    ``stop()`` ends it), stdin from /dev/null, stdout and stderr appended to
    ``log_path``, with exactly the environment ``env``."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True, env=env)
    finally:
        log.close()


def wait_until_listening(where: int | str | os.PathLike, check_alive: Callable[[], None], *,
                         timeout: float = 15, connect_timeout: float = 0.5) -> bool:
    """Try to connect until something accepts: ``where`` is a TCP port on
    127.0.0.1 or the path of a Unix socket. ``check_alive()`` runs before each try
    (it raises when the server has died). True once a connection was accepted,
    False when ``timeout`` seconds passed without one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive()
        try:
            if isinstance(where, int):
                with socket.create_connection((LOOPBACK, where), timeout=connect_timeout):
                    return True
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(connect_timeout)
                s.connect(str(where))
                return True
        except OSError:
            time.sleep(0.05)
    return False


def find_processes(*, cmdline_marks: Iterable[str] = (), env_mark: tuple[str, str] | None = None,
                   pids: Iterable[int] = (), names: Iterable[str] | None = None) -> dict:
    """This machine's processes (never this one) that are a service's own, by pid:
    those in ``pids`` (whatever their name), and, when ``names`` is given only
    among processes of those names, those whose command line contains one of
    ``cmdline_marks`` or whose environment sets ``env_mark`` (variable, value).
    Processes that cannot be read (gone, another user's) are passed over."""
    import psutil
    marks = tuple(cmdline_marks)
    pids = set(pids)
    names = None if names is None else set(names)
    found = {}
    for proc in psutil.process_iter(["cmdline", "name"]):
        try:
            if proc.pid == os.getpid():
                continue
            if proc.pid in pids:
                found[proc.pid] = proc
                continue
            if names is not None and proc.info["name"] not in names:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            if any(mark in cmdline for mark in marks) or \
                    (env_mark is not None and proc.environ().get(env_mark[0]) == env_mark[1]):
                found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    return found


def add_descendants(found: dict) -> dict:
    """Add to ``found`` (pid -> psutil.Process) every descendant of its processes; returns it."""
    import psutil
    for proc in list(found.values()):
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            pass
    return found


def is_running(proc) -> bool:
    """Still running (a zombie that a non-reaping init keeps does not count)."""
    import psutil
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def end_processes(procs: list, grace: float = 5) -> None:
    """End ``procs`` (psutil.Process objects, exactly these): SIGTERM, up to
    ``grace`` seconds for them to go, then SIGKILL to those left, as long again."""
    import psutil
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            procs = [p for p in procs if is_running(p)]
            if not procs:
                return
            time.sleep(0.05)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread,
    so that a script stops its service cleanly on Ctrl-C, kill or a closed
    terminal (a background job's inherited "ignore SIGINT" too)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


def serve_until_interrupted(still_up: Callable[[], bool], stop: Callable[[], None],
                            on_down: Callable[[], None] | None = None) -> None:
    """A script's main loop: wait while ``still_up()``, then call ``on_down()``
    (the service ended by itself); a KeyboardInterrupt ends the wait quietly.
    ``stop()`` runs in every case."""
    try:
        while still_up():
            time.sleep(0.5)
        if on_down is not None:
            on_down()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
