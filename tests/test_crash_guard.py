"""The crash guard: an exception in a slot, a QThread or a Python thread is logged and
reported, and the app keeps running (PyQt6 would otherwise abort it)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from rave_gui.core import crash_guard

CRASHING_APP = textwrap.dedent("""
    import sys, threading
    from PyQt6.QtCore import QThread, QTimer
    from PyQt6.QtWidgets import QApplication
    from rave_gui.core import crash_guard

    app = QApplication([])
    if sys.argv[2] == "guarded":
        crash_guard.install(sys.argv[1], lambda sentence: print("NOTICE", sentence, flush=True))

    def slot_that_raises():
        raise ZeroDivisionError("raised in a slot")

    class Worker(QThread):
        def run(self):
            raise RuntimeError("raised in QThread.run")

    def python_thread():
        raise KeyError("raised in a Python thread")

    worker = Worker()
    QTimer.singleShot(0, slot_that_raises)
    QTimer.singleShot(100, worker.start)
    QTimer.singleShot(200, lambda: threading.Thread(target=python_thread, name="feeder").start())
    QTimer.singleShot(1000, app.quit)
    code = app.exec()
    worker.wait()
    print("STILL ALIVE", flush=True)
    sys.exit(code)
""")


def run_app(tmp_path, mode: str) -> subprocess.CompletedProcess:
    script = tmp_path / "crashing_app.py"
    script.write_text(CRASHING_APP)
    return subprocess.run([sys.executable, str(script), str(tmp_path / "logs"), mode],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def test_without_the_guard_pyqt_aborts(tmp_path):
    """The control: what the guard prevents really happens (qFatal -> abort)."""
    out = run_app(tmp_path, "bare")
    assert out.returncode != 0 and "STILL ALIVE" not in out.stdout


def test_with_the_guard_the_app_survives_and_logs_every_error(tmp_path):
    out = run_app(tmp_path, "guarded")
    assert out.returncode == 0, out.stderr
    assert "STILL ALIVE" in out.stdout
    log = (tmp_path / "logs" / crash_guard.LOG_NAME).read_text()
    for text in ("ZeroDivisionError: raised in a slot", "RuntimeError: raised in QThread.run",
                 "KeyError: 'raised in a Python thread'", "in slot_that_raises", "in run",
                 "thread feeder"):
        assert text in log, text
    assert log.count("Traceback (most recent call last)") == 3
    notices = [line for line in out.stdout.splitlines() if line.startswith("NOTICE ")]
    assert len(notices) == 3
    assert ("NOTICE Something went wrong inside RAVE GUI (ZeroDivisionError: raised in a slot). "
            "Your runs keep going; the details are in "
            f"{tmp_path / 'logs' / crash_guard.LOG_NAME}.") in notices


@pytest.fixture
def guard(tmp_path):
    notices: list[tuple[str, str]] = []
    installed = crash_guard.install(
        tmp_path, lambda sentence: notices.append((sentence, threading.current_thread().name)))
    installed.notices = notices
    yield installed
    installed.uninstall()


def test_a_python_thread_error_is_logged_and_notified(guard, tmp_path):
    def fails():
        raise ValueError("bad value\nover two lines")

    thread = threading.Thread(target=fails, name="worker-7")
    thread.start()
    thread.join()
    log = (tmp_path / crash_guard.LOG_NAME).read_text()
    assert "unexpected error in thread worker-7" in log and "ValueError: bad value" in log
    assert guard.notices == [(
        "Something went wrong inside RAVE GUI (ValueError: bad value over two lines). Your runs "
        f"keep going; the details are in {tmp_path / crash_guard.LOG_NAME}.", "worker-7")]


def test_sys_excepthook_logs_and_notifies(guard, tmp_path):
    try:
        raise OSError("disk trouble")
    except OSError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    assert "OSError: disk trouble" in (tmp_path / crash_guard.LOG_NAME).read_text()
    assert "(OSError: disk trouble)" in guard.notices[0][0]


def test_a_failing_notice_is_logged_not_raised(tmp_path):
    def broken_notify(_sentence):
        raise RuntimeError("the box could not open")

    installed = crash_guard.install(tmp_path, broken_notify)
    try:
        sys.excepthook(KeyError, KeyError("k"), None)
    finally:
        installed.uninstall()
    log = (tmp_path / crash_guard.LOG_NAME).read_text()
    assert "KeyError: 'k'" in log and "the box could not open" in log


def test_the_log_is_rotated_past_its_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(crash_guard, "MAX_LOG_BYTES", 1000)
    log = tmp_path / crash_guard.LOG_NAME
    log.write_text("old\n" * 400)
    installed = crash_guard.CrashGuard(tmp_path)
    installed.excepthook(KeyError, KeyError("new"), None)
    assert (tmp_path / (crash_guard.LOG_NAME + ".1")).read_text() == "old\n" * 400
    assert "KeyError: 'new'" in log.read_text() and "old" not in log.read_text()


def test_uninstall_puts_the_previous_hooks_back(tmp_path):
    before = (sys.excepthook, threading.excepthook)
    crash_guard.install(tmp_path).uninstall()
    assert (sys.excepthook, threading.excepthook) == before


def test_the_app_shows_the_notice_on_the_gui_thread(qtbot):
    """ErrorNotice: called from a worker thread, the box opens on the GUI thread; a
    second error updates the same box."""
    from PyQt6.QtWidgets import QApplication

    from rave_gui.ui.error_notice import ErrorNotice
    notice = ErrorNotice()
    threads = [threading.Thread(target=notice.notify, args=(f"Something went wrong ({n}).",))
               for n in (1, 2)]
    for thread in threads:
        thread.start()
        thread.join()
    qtbot.waitUntil(lambda: notice.count == 2)
    assert notice.box is not None and notice.box.isVisible() and not notice.box.isModal()
    assert notice.box.thread() is QApplication.instance().thread()
    assert "(2)" in notice.box.text() and "2 errors" in notice.box.text()
    notice.box.accept()
    qtbot.waitUntil(lambda: notice.box is None)
