"""ProcessThread against real tiny child processes (``sys.executable -c ...``)."""
from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time

import psutil
import pytest

from rave_gui.core.process import ProcessThread, split_output

TIMEOUT_MS = 15_000


def running(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, waiting to be reaped) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def spawn():
    """Make ProcessThreads running ``python -c CODE ARGS``; all are waited for at the end."""
    threads: list[ProcessThread] = []

    def make(code: str, *args: str, cls=ProcessThread, **kwargs) -> ProcessThread:
        thread = cls([sys.executable, "-c", textwrap.dedent(code), *args], **kwargs)
        thread.poll_interval = 0.02
        thread.lines = []
        thread.output.connect(thread.lines.append)
        threads.append(thread)
        return thread

    yield make
    for thread in threads:
        if thread.isRunning():
            thread.stop()
        assert thread.wait(10_000), "a ProcessThread was still running at the end of the test"
        if thread.pid:
            assert not running(thread.pid)


def run(qtbot, thread: ProcessThread, timeout: int = TIMEOUT_MS) -> tuple[bool, str]:
    with qtbot.waitSignal(thread.finished, timeout=timeout) as blocker:
        thread.start()
    assert thread.wait(5000)
    return tuple(blocker.args)


# -- output ----------------------------------------------------------------------

def test_split_output_keeps_the_unfinished_remainder():
    assert split_output(b"a\rb\nc\r\nd") == (["a", "b", "c"], b"d")
    assert split_output(b"x\n") == (["x"], b"")
    assert split_output(b"\xc3") == ([], b"\xc3")  # half a UTF-8 character waits


def test_lines_split_on_newline_and_carriage_return_in_order(qtbot, spawn):
    thread = spawn("""
        import sys
        sys.stdout.write("a\\rb\\nc")
    """)
    assert run(qtbot, thread) == (True, "Finished.")
    assert thread.lines == ["a", "b", "c"]
    assert thread.returncode == 0


def test_progress_bar_redraws_and_crlf_become_separate_lines(qtbot, spawn):
    thread = spawn("""
        import sys, time
        for i in range(3):
            sys.stdout.write(f"\\r{i}/3 [bar]")
            sys.stdout.flush()
            time.sleep(0.03)
        sys.stdout.write("\\r\\ndone\\r\\n")
        sys.stderr.write("to stderr\\n")
    """)
    assert run(qtbot, thread)[0] is True
    assert thread.lines == ["0/3 [bar]", "1/3 [bar]", "2/3 [bar]", "done", "to stderr"]


def test_utf8_character_split_across_writes_is_decoded_whole(qtbot, spawn):
    thread = spawn("""
        import sys, time
        out = sys.stdout.buffer
        data = "é✓ ünï\\n".encode()
        out.write(data[:1]); out.flush(); time.sleep(0.15)
        out.write(data[1:4]); out.flush(); time.sleep(0.15)
        out.write(data[4:]); out.flush()
    """)
    assert run(qtbot, thread)[0] is True
    assert thread.lines == ["é✓ ünï"]


# -- exit codes and failures to start ----------------------------------------------

def test_exit_code_zero_is_success(qtbot, spawn):
    assert run(qtbot, spawn("print('hello')")) == (True, "Finished.")


@pytest.mark.parametrize("code", [1, 3, 77])
def test_non_zero_exit_is_failure_with_the_code(qtbot, spawn, code):
    thread = spawn(f"import sys; print('bad'); sys.exit({code})")
    ok, message = run(qtbot, thread)
    assert ok is False
    assert str(code) in message
    assert thread.returncode == code
    assert thread.lines == ["bad"]


def test_child_killed_by_a_signal_is_failure(qtbot, spawn):
    thread = spawn("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    ok, message = run(qtbot, thread)
    assert ok is False and str(-signal.SIGKILL) in message


@pytest.mark.parametrize("kind", ["absolute", "bare name", "not executable"])
def test_missing_executable_fails_with_a_sentence(qtbot, tmp_path, kind):
    if kind == "absolute":
        argv = [str(tmp_path / "no" / "such" / "rave"), "train"]
    elif kind == "bare name":
        argv = ["rave-gui-no-such-command-xyz", "train"]
    else:
        script = tmp_path / "rave"
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o644)
        argv = [str(script)]
    thread = ProcessThread(argv)
    refused = []
    thread.on_refused = refused.append
    ok, message = run(qtbot, thread)
    assert ok is False
    assert message.startswith("Could not start ") and argv[0] in message and message.endswith(".")
    assert thread.pid is None and thread.error == message and refused == [message]


def test_stop_before_start_never_launches(qtbot):
    thread = ProcessThread([sys.executable, "-c", "print('ran')"])
    thread.stop()
    ok, message = run(qtbot, thread)
    assert (ok, message) == (False, "Stopped before it started.")
    assert thread.pid is None


def test_argv_is_passed_verbatim(qtbot, spawn):
    args = ["with space", 'double"quote', "it's", "ünïcødé ✓ 音", "$HOME", "*", "", "--flag=a b",
            "; rm -rf /", "back\\slash", "tab\there"]
    thread = spawn("""
        import json, sys
        sys.stdout.buffer.write(json.dumps(sys.argv[1:], ensure_ascii=False).encode() + b"\\n")
    """, *args)
    assert run(qtbot, thread)[0] is True
    assert len(thread.lines) == 1
    assert json.loads(thread.lines[0]) == args


def test_env_and_cwd_reach_the_child(qtbot, spawn, tmp_path):
    env = dict(os.environ, RAVE_GUI_TEST_VAR="value with spaces")
    env.pop("PYTHONUNBUFFERED", None)
    thread = spawn("""
        import os
        print(os.environ["RAVE_GUI_TEST_VAR"])
        print(os.environ["PYTHONUNBUFFERED"])
        print(os.getcwd())
    """, env=env, cwd=tmp_path)
    assert run(qtbot, thread)[0] is True
    assert thread.lines == ["value with spaces", "1", str(tmp_path)]


# -- stopping ------------------------------------------------------------------------

def stop_when_ready(qtbot, thread: ProcessThread, ready: int = 1) -> tuple[tuple, float, float]:
    """Start, wait for ``ready`` lines saying 'ready', stop. Returns (finished args,
    seconds stop() took, seconds from stop() to finished)."""
    with qtbot.waitSignal(thread.finished, timeout=TIMEOUT_MS) as blocker:
        thread.start()
        qtbot.waitUntil(lambda: thread.lines.count("ready") >= ready, timeout=TIMEOUT_MS)
        t0 = time.monotonic()
        thread.stop()
        stop_cost = time.monotonic() - t0
    elapsed = time.monotonic() - t0
    assert thread.wait(5000)
    return tuple(blocker.args), stop_cost, elapsed


def test_stop_interrupts_a_cooperative_child_with_sigint(qtbot, spawn):
    thread = spawn("""
        import time
        print("ready", flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("got SIGINT", flush=True)
            raise SystemExit(0)
    """)
    thread.interrupt_timeout = 30.0  # no escalation may be needed
    args, stop_cost, elapsed = stop_when_ready(qtbot, thread)
    assert args == (False, "Stopped.")  # a stop is never reported as success, even on exit 0
    assert stop_cost < 0.2
    assert elapsed < 5
    assert thread.lines[-1] == "got SIGINT"
    assert thread.returncode == 0


def test_stop_escalates_to_sigterm_when_sigint_is_ignored(qtbot, spawn):
    thread = spawn("""
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    thread.interrupt_timeout = 0.5
    thread.terminate_timeout = 0.5
    args, stop_cost, elapsed = stop_when_ready(qtbot, thread)
    assert args == (False, "Stopped.")
    assert stop_cost < 0.2
    assert thread.returncode == -signal.SIGTERM
    assert 0.5 <= elapsed < 0.5 + 0.5 + 1.5


def test_stop_escalates_to_sigkill_when_sigint_and_sigterm_are_ignored(qtbot, spawn):
    thread = spawn("""
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    thread.interrupt_timeout = 0.3
    thread.terminate_timeout = 0.3
    args, stop_cost, elapsed = stop_when_ready(qtbot, thread)
    assert args == (False, "Stopped.")
    assert stop_cost < 0.2
    assert thread.returncode == -signal.SIGKILL
    assert 0.6 <= elapsed < 0.6 + 1.5


GRANDCHILD = ("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)")


def test_stop_ends_every_grandchild(qtbot, spawn):
    """RAVE's data-loader workers: the grandchildren ignore SIGINT and SIGTERM and
    outlive the leader; none may be left running once finished arrives."""
    thread = spawn(f"""
        import subprocess, sys, time
        kids = [subprocess.Popen([sys.executable, "-c", {GRANDCHILD!r}]) for _ in range(3)]
        print("pids", *[k.pid for k in kids], flush=True)
        time.sleep(60)
    """)
    thread.interrupt_timeout = 0.5
    thread.terminate_timeout = 0.5
    args, _, elapsed = stop_when_ready(qtbot, thread, ready=3)
    pids = [int(p) for p in next(line for line in thread.lines if line.startswith("pids")).split()[1:]]
    assert len(pids) == 3
    assert args == (False, "Stopped.")
    alive = [pid for pid in pids if running(pid)]
    assert alive == []
    assert not running(thread.pid)
    assert elapsed < 0.5 + 0.5 + 1.5


def test_background_children_are_reaped_after_a_normal_exit(qtbot, spawn):
    thread = spawn(f"""
        import subprocess, sys, time
        kids = [subprocess.Popen([sys.executable, "-c", {GRANDCHILD!r}]) for _ in range(2)]
        print("pids", *[k.pid for k in kids], flush=True)
        time.sleep(0.2)  # then exit 0, leaving them behind
    """)
    ok, message = run(qtbot, thread)
    assert (ok, message) == (True, "Finished.")
    pids = [int(p) for p in next(line for line in thread.lines if line.startswith("pids")).split()[1:]]
    assert len(pids) == 2
    assert [pid for pid in pids if running(pid)] == []


# -- log file mode ----------------------------------------------------------------------

def test_log_path_keeps_every_line_and_appends(qtbot, spawn, tmp_path):
    log = tmp_path / "runs" / "7" / "train.log"  # parent folders are created
    log.parent.mkdir(parents=True)
    log.write_text("from an earlier run\n")
    thread = spawn("""
        import sys
        for i in range(2000):
            print(f"line {i}")
        sys.stdout.write("\\r50%|#####     |\\r100%|##########|\\nno newline at the end")
    """, log_path=log)
    assert run(qtbot, thread)[0] is True
    expected = [f"line {i}" for i in range(2000)] + ["50%|#####     |", "100%|##########|",
                                                    "no newline at the end"]
    assert thread.lines == expected  # the earlier run's line is not re-emitted
    text = log.read_text()
    assert text.startswith("from an earlier run\n")
    file_lines = [ln for ln in text.replace("\r", "\n").split("\n") if ln]
    assert file_lines == ["from an earlier run"] + expected


def test_without_log_path_the_temporary_log_is_removed(qtbot, spawn, tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    thread = spawn("print('x')")
    assert run(qtbot, thread)[0] is True
    assert thread.lines == ["x"]
    assert list(tmp_path.glob("rave-gui-*.log")) == []


# -- hooks ------------------------------------------------------------------------------

class FailingHook(ProcessThread):
    def handle_line(self, line: str) -> None:
        if line == "boom":
            raise RuntimeError("parser broke")


def test_exception_in_a_hook_is_reported_and_the_child_goes_on(qtbot, spawn):
    """The app's bookkeeping failing must never cost the person their process."""
    thread = spawn("""
        import time
        print("ok", flush=True)
        print("boom", flush=True)
        time.sleep(1.0)
        print("after", flush=True)
        print("boom", flush=True)
    """, cls=FailingHook)
    warnings = []
    thread.warning.connect(warnings.append)
    ok, message = run(qtbot, thread)
    assert ok is True and thread.returncode == 0  # the child ran to its own end
    assert thread.lines == ["ok", "boom", "after", "boom"]
    assert thread.hook_errors == 2
    assert len(warnings) == 1 and "parser broke" in warnings[0]  # said once, not per line
    assert "keeps running" in warnings[0]


class FailingPoll(ProcessThread):
    poll_interval = 0.02

    def poll(self):
        raise OSError(28, "No space left on device")


def test_exception_in_poll_never_ends_the_child(qtbot, spawn):
    thread = spawn("import time; time.sleep(0.5); print('done', flush=True)", cls=FailingPoll)
    ok, _ = run(qtbot, thread)
    assert ok is True and thread.lines == ["done"] and thread.hook_errors >= 3


def test_a_nul_byte_in_the_arguments_is_refused_with_a_sentence(qtbot, python):
    thread = ProcessThread([python, "-c", "print('x')", "a\x00b"])
    ok, message = run(qtbot, thread)
    assert ok is False and "arguments are not valid" in message and thread.pid is None


def test_a_runaway_line_is_cut_and_memory_stays_bounded(qtbot, spawn):
    """200 MB without a newline used to be held whole (1.3 GB in the app)."""
    import resource
    thread = spawn("""
        import sys
        chunk = "x" * (1 << 20)
        for _ in range(200):
            sys.stdout.write(chunk)
        sys.stdout.write("\\nend\\n")
        sys.stdout.flush()
    """)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ok, _ = run(qtbot, thread, timeout=60_000)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert ok is True
    assert len(thread.lines) == 2 and thread.lines[1] == "end"
    assert thread.lines[0].endswith("line cut: too long]") and len(thread.lines[0]) < 70_000
    assert grown_mb < 150


def test_line_splitter_cuts_long_lines_and_resumes_at_the_next_break():
    from rave_gui.core.process import LineSplitter
    splitter = LineSplitter(max_line=8)
    assert splitter.feed(b"short\nabcdefghijkl") == ["short", "abcdefgh [… line cut: too long]"]
    assert splitter.feed(b"mnop") == []          # still the cut line: dropped
    assert splitter.feed(b"qr\rnext\npart") == ["next"]
    assert splitter.flush() == ["part"]


def test_hooks_are_called_in_the_worker_thread(qtbot, spawn):
    seen = {"lines": [], "polls": 0, "threads": set()}

    class Recorder(ProcessThread):
        def on_started(self, pid):
            seen["pid"] = pid
            seen["threads"].add(threading.get_ident())

        def handle_line(self, line):
            seen["lines"].append(line)
            seen["threads"].add(threading.get_ident())

        def poll(self):
            seen["polls"] += 1

    thread = spawn("import time; print('a'); time.sleep(0.2); print('b')", cls=Recorder)
    assert run(qtbot, thread)[0] is True
    assert seen["pid"] == thread.pid
    assert len(seen["threads"]) == 1 and threading.get_ident() not in seen["threads"]
    assert seen["lines"] == ["a", "b"] == thread.lines
    assert seen["polls"] >= 3


def test_an_exit_check_that_raises_is_reported_and_never_aborts_the_thread():
    """The fallback wait (the log could not be followed) survives an exit check that
    raises: it reports once and tries again; one that never answers counts as killed."""
    thread = ProcessThread(["true"])
    thread.poll_interval = 0.001
    thread.max_poll_failures = 5
    warnings = []
    thread.warning.connect(warnings.append)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("an odd checkpoint listing")
        return 0

    assert thread._wait_unfollowed(flaky) == 0 and len(calls) == 3
    assert thread.hook_errors == 1 and "odd checkpoint listing" in warnings[0]

    def broken():
        raise ValueError("a bug")

    assert thread._wait_unfollowed(broken) == -9
