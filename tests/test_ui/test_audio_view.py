"""The Audio tab (rave_gui.ui.widgets.audio_view) on the real RAVE run's event file and on
files written by torch's SummaryWriter (the writer RAVE's Lightning logger uses)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtWidgets import QFileDialog

from rave_gui.ui.widgets.audio_view import NO_DEVICE, AudioPlayer, AudioView

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "rave" / "smoke_run"
DEVICE_CHECK = Path(__file__).resolve().parents[1] / "audio_device_check.py"
N = 2048


@pytest.fixture
def view(qtbot):
    widget = AudioView()
    qtbot.addWidget(widget)
    yield widget
    widget.set_run(None)


@pytest.fixture
def smoke_run(tmp_path) -> Path:
    run = tmp_path / "smoke_run"
    shutil.copytree(FIXTURE_RUN, run)
    return run


@pytest.fixture
def no_device(monkeypatch):
    monkeypatch.setattr(AudioPlayer, "_output_device", staticmethod(lambda: None))


@pytest.fixture
def pulse_server(tmp_path):
    """A private PulseAudio daemon with one null sink, for this test only: its runtime,
    state and home in tmp_path, no D-Bus, no autospawn, never the machine's own daemon.
    Yields its address (``unix:<tmp>/native``); stopped (and reaped) at the end."""
    binary = shutil.which("pulseaudio")
    if binary is None:
        pytest.fail("pulseaudio is required for the audio device test (make test installs it)")
    root = tmp_path / "pulse"
    dirs = {name: root / name for name in ("runtime", "state", "home", "xdg")}
    for folder in dirs.values():
        folder.mkdir(parents=True, mode=0o700)
    socket_path = root / "native"
    if len(str(socket_path)) > 100:    # a unix socket's path has at most 107 bytes
        short = Path(tempfile.mkdtemp(prefix="rave-pulse-", dir="/tmp"))
        socket_path = short / "native"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "DBUS_"))}
    env.pop("DISPLAY", None)      # no D-Bus autolaunch through X11
    env.update(HOME=str(dirs["home"]), XDG_RUNTIME_DIR=str(dirs["xdg"]),
               XDG_CONFIG_HOME=str(dirs["home"] / ".config"),
               PULSE_RUNTIME_PATH=str(dirs["runtime"]), PULSE_STATE_PATH=str(dirs["state"]),
               # a bus that is not there: the daemon neither finds nor starts one
               DBUS_SESSION_BUS_ADDRESS=f"unix:path={root / 'no-bus'}",
               DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={root / 'no-bus'}")
    # -n: no default.pa (only the two modules below); --system=false: a per-user daemon even
    # as root (it warns "not intended to be run as root" and runs); nothing system-wide.
    command = [binary, "-n", "--daemonize=no", "--system=false", "--use-pid-file=no",
               "--exit-idle-time=-1", "--disallow-exit", "--realtime=no", "--high-priority=no",
               "--no-cpu-limit", "--log-target=stderr", "--log-level=warning",
               "-L", "module-null-sink",
               "-L", f"module-native-protocol-unix socket={socket_path} auth-anonymous=1"]
    # what a client of this daemon reads (next to its socket): no autospawn, ever
    (socket_path.parent / "client.conf").write_text("autospawn = no\n")
    log = root / "pulseaudio.log"
    with open(log, "wb") as stderr:
        daemon = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=stderr, cwd=root)
    try:
        deadline = time.monotonic() + 10
        while not _accepts(socket_path):
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the private PulseAudio daemon did not start (exit code "
                            f"{daemon.poll()}):\n{log.read_text(errors='replace')}")
            time.sleep(0.02)
        yield f"unix:{socket_path}"
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=5)
        if socket_path.parent != root:
            shutil.rmtree(socket_path.parent, ignore_errors=True)


def pulse_client_env(server: str) -> dict[str, str]:
    """The environment of a process that plays through the ``pulse_server`` daemon and no
    other: Qt's PulseAudio backend (not PipeWire), that server, the client.conf and a cookie
    next to its socket (not the person's ~/.config/pulse)."""
    folder = Path(server.removeprefix("unix:")).parent
    return {"PULSE_SERVER": server, "PULSE_CLIENTCONFIG": str(folder / "client.conf"),
            "PULSE_COOKIE": str(folder / "client-cookie"), "QT_AUDIO_BACKEND": "pulseaudio"}


def _accepts(path: Path) -> bool:
    """Whether a daemon listens on the unix socket ``path`` (it exists and takes a connection)."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def add_validation(writer, counter: int, step: int, examples: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    stream = rng.uniform(-0.8, 0.8, examples * 2 * N).astype(np.float32)
    writer.add_audio("audio_val", stream, counter, 44100)
    writer.add_scalar("validation", 1.0 + step / 1000, step)
    writer.flush()
    return stream


def load(qtbot, view, run, count, **kwargs):
    view.set_run(str(run), **kwargs)
    qtbot.waitUntil(lambda: len(view.validations) == count, timeout=10_000)


def test_selection_shows_step_loss_and_examples(qtbot, view, smoke_run):
    load(qtbot, view, smoke_run, 3)
    assert view.list.count() == 3
    assert [view.list.item(i).text().split("   ")[0] for i in range(3)] == ["Step 1", "Step 3", "Step 5"]
    assert "validation loss 29.81" in view.list.item(0).text()
    assert view.list.currentRow() == 2 and view.selected().step == 5     # the newest is selected
    view.select(0)
    assert view.selected().step == 1 and view.selected().counter == 0
    assert view.example_combo.count() == 1 and view.example_combo.currentText() == "Example 1"
    assert "step 1" in view.status_text().lower() and "1 example" in view.status_text()
    assert view.play_original_button.isEnabled() and not view.stop_button.isEnabled()
    # both sides drawn: a waveform outline and a spectrogram each, over the example's 2.97 s
    assert all(len(lines[0].get_xdata()) > 100 for lines in view._wave_lines)
    assert all(image.get_visible() and image.get_array().shape[0] == 513 for image in view._images)
    assert view.wave_axes[1].get_xlim()[1] == pytest.approx(131072 / 44100)


def test_examples_of_a_generated_run(qtbot, view, tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(tmp_path / "run" / "version_0"))
    add_validation(writer, 0, 30, examples=3)
    writer.close()
    load(qtbot, view, tmp_path / "run", 1, n_signal=N)
    assert view.example_combo.count() == 3
    view.example_combo.setCurrentIndex(2)
    assert view.example_combo.currentText() == "Example 3"


def test_play_without_an_audio_device_says_so(qtbot, view, smoke_run, no_device):
    load(qtbot, view, smoke_run, 3)
    assert view.play("reconstruction") is False
    assert NO_DEVICE in view.status_text() and not view.is_playing()
    view.play_original_button.click()
    assert NO_DEVICE in view.status_text() and not view.is_playing()


def test_play_on_this_machine_never_crashes(qtbot, view, smoke_run):
    """Offscreen CI has no sound card: the sentence; a desk with one: it plays."""
    load(qtbot, view, smoke_run, 3)
    played = view.play("original")
    assert played == view.is_playing()
    assert played or "save the example as WAV" in view.status_text()
    view.stop()
    assert not view.is_playing()


def test_ab_toggle(qtbot, view, smoke_run, no_device):
    load(qtbot, view, smoke_run, 3)
    assert view.current_side() == "original" and view.play_original_button.isChecked()
    view.play_reconstruction_button.click()
    assert view.current_side() == "reconstruction"
    assert view.play_reconstruction_button.isChecked() and not view.play_original_button.isChecked()
    view.play("original")
    assert view.current_side() == "original"
    assert view.play_original_button.isChecked() and not view.play_reconstruction_button.isChecked()
    with pytest.raises(ValueError):
        view.play("both")


@pytest.mark.parametrize("which", ["original", "reconstruction"])
def test_save_as_wav_writes_the_samples(qtbot, view, smoke_run, tmp_path, monkeypatch, which):
    load(qtbot, view, smoke_run, 3)
    view.select(1)
    target = tmp_path / "out" / "example"            # no extension: .wav is added
    target.parent.mkdir()
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (asked.append(a), (str(target), ""))[1]))
    path = view.save_as_wav(which)
    assert path == str(target) + ".wav" and asked and asked[0][2].endswith(f"step3_example1_{which}.wav")
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 44100)
        saved = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0
    expected = view.selected().pairs[0][0 if which == "original" else 1]
    np.testing.assert_allclose(saved, expected, atol=1 / 32767)
    assert "Saved the " + which in view.status_text()


def test_save_errors_are_a_sentence(qtbot, view, smoke_run, tmp_path, monkeypatch):
    load(qtbot, view, smoke_run, 3)
    bad = tmp_path / "missing-folder" / "x.wav"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    assert view.save_as_wav() is None
    assert "Could not save" in view.status_text() and "Choose another folder" in view.status_text()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    assert view.save_as_wav() is None                   # cancelled: nothing said, nothing written


def test_refresh_picks_up_a_new_validation(qtbot, view, tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(tmp_path / "run" / "version_0"))
    try:
        add_validation(writer, 0, 100)
        add_validation(writer, 1, 200)
        load(qtbot, view, tmp_path / "run", 2, n_signal=N)
        view.select(0)
        add_validation(writer, 2, 300, seed=3)
        with qtbot.waitSignal(view.validations_changed, timeout=10_000):
            view.refresh()
        assert [v.step for v in view.validations] == [100, 200, 300]
        assert view.list.count() == 3 and view.list.item(2).text().startswith("Step 300")
        assert view.list.currentRow() == 0                # the person's selection stays
        view.refresh()
        view.refresh()                                    # refreshes while one is running: coalesced
        qtbot.wait(50)
        qtbot.waitUntil(lambda: not view._in_flight, timeout=10_000)
        assert view.list.count() == 3
    finally:
        writer.close()


def test_set_run_none_clears_and_a_late_read_is_dropped(qtbot, view, smoke_run):
    load(qtbot, view, smoke_run, 3)
    view.set_run(None)
    assert view.validations == [] and view.list.count() == 0 and view.example_combo.count() == 0
    assert view.status_text() == "" and view.selected() is None
    assert not view.play_original_button.isEnabled()
    assert not any(image.get_visible() for image in view._images)
    view.set_run(str(smoke_run))
    view.set_run(None)                                    # the read started above comes back late
    qtbot.wait(300)
    assert view.validations == [] and view.list.count() == 0


def test_a_run_without_validations_yet(qtbot, view, tmp_path):
    (tmp_path / "run" / "version_0").mkdir(parents=True)
    view.set_run(str(tmp_path / "run"))
    qtbot.waitUntil(lambda: "No validation audio yet" in view.status_text(), timeout=10_000)
    assert view.play("original") is False and "Select a validation" in view.status_text()


def test_multichannel_note(qtbot, view, tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(tmp_path / "run" / "version_0"))
    add_validation(writer, 0, 30, examples=2)     # 2 examples of 1 channel = 1 example of 2 channels
    writer.close()
    load(qtbot, view, tmp_path / "run", 1, n_signal=N, channels=2)
    assert view.example_combo.count() == 1
    assert "2 channels end to end" in view.note_label.text() and not view.note_label.isHidden()


def test_player_on_a_real_device(smoke_run, pulse_server):
    """Plays through a real audio output: a private PulseAudio daemon's null sink. In a
    fresh process (tests/audio_device_check.py), as QtMultimedia lists the devices once."""
    env = {**os.environ, **pulse_client_env(pulse_server), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(DEVICE_CHECK), str(smoke_run)], env=env,
                          capture_output=True, text=True, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"rc {done.returncode}\n{done.stdout}\n{done.stderr}"
    result = json.loads(lines[-1])
    assert result["device"] == "Null Output", result      # the private daemon's sink, no other
    # the checks of a play on a device: original plays and moves on; A/B to the reconstruction
    # keeps the same output and position; Stop stops; clearing the run leaves nothing playing
    assert result["checks"] == dict.fromkeys(
        ["output_device", "loaded", "plays_original", "position_advances", "plays_reconstruction",
         "same_sink", "reconstruction_active", "position_kept", "stopped", "cleared"], True), result
