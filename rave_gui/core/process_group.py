"""Process groups and liveness, in plain Python (no Qt): what the thread that
follows a run, the start-up recovery and the record keeping all need."""
from __future__ import annotations

import os
import signal
import time

import psutil


def kill_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def interrupt(pid: int) -> None:
    """SIGINT to the leader only: its workers (DataLoader processes) would die
    of it mid-batch; the leader ends them itself, and escalation reaches the
    whole group if it does not."""
    try:
        os.kill(pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        pass


def process_alive(pid: int | None, started_at: float | None) -> bool:
    """Is ``pid`` still the process that started at ``started_at``? (A pid
    alone may have been reused by another program since.)"""
    if not pid or started_at is None:
        return False
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started_at) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def group_alive(pgid: int) -> bool:
    return kill_group(pgid, 0)


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that still run (zombies waiting for a parent
    that never reaps them, such as a container's init, do not count)."""
    pids = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or os.getpgid(proc.pid) != pgid:
                continue
        except (OSError, psutil.Error):
            continue
        pids.append(proc.pid)
    return pids


def end_group(pgid: int, timeout: float = 2.0) -> None:
    """SIGKILL what is left of a group and wait (bounded) until none of it runs."""
    if not group_alive(pgid):
        return
    kill_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while live_group_members(pgid) and time.monotonic() < deadline:
        kill_group(pgid, signal.SIGKILL)
        time.sleep(0.01)
