"""Creating datasets from audio: the checks, and the real ``rave preprocess``."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.preprocess import check_preprocess_inputs, preprocess_command
from rave_gui.backend.preprocess_process import PreprocessProcess
from rave_gui.backend.rave_cli import find_rave
from rave_gui.core.signals import app_signals

NUM_SIGNAL = 4096  # examples of 8192 samples (0.19 s at 44.1 kHz): seconds of audio suffice
TIMEOUT_MS = 120_000


def write_audio(path: Path, seconds: float = 2.0, channels: int = 1, sr: int = 44100) -> Path:
    rng = np.random.default_rng(len(str(path)))
    t = np.arange(int(seconds * sr)) / sr
    sig = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.03 * rng.standard_normal(t.size)
           for c in range(channels)]
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.stack(sig, axis=1).astype("float32"), sr)
    return path


def write_mp3(path: Path, seconds: float = 2.0) -> Path:
    source = write_audio(path.with_suffix(".tmp.wav"), seconds)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), str(path)],
                   check=True)
    source.unlink()
    return path


@pytest.fixture
def nested_audio(tmp_path) -> Path:
    root = tmp_path / "audio"
    write_audio(root / "a.wav")
    write_audio(root / "sub" / "b.flac")
    write_mp3(root / "sub" / "deeper" / "c.mp3")
    (root / "notes.txt").write_text("not audio")
    return root


def rows(db) -> int:
    return db.query_one("SELECT count(*) FROM datasets")[0]


def run(qtbot, proc: PreprocessProcess, timeout: int = TIMEOUT_MS) -> tuple[bool, str]:
    try:
        with qtbot.waitSignal(proc.finished, timeout=timeout) as blocker:
            proc.start()
    finally:
        if proc.isRunning():  # the wait timed out: end RAVE before the test ends
            proc.stop()
        proc.wait()
    return tuple(blocker.args)


# -- checks (no CLI) -----------------------------------------------------------

def test_check_counts_audio_in_nested_folders(nested_audio, tmp_path):
    plan = check_preprocess_inputs([nested_audio], tmp_path / "out", num_signal=NUM_SIGNAL)
    assert plan.counts == {".flac": 1, ".mp3": 1, ".wav": 1}
    assert abs(plan.total_seconds - 6.0) < 0.2  # mp3 adds encoder padding
    assert plan.examples == 30 and plan.expected_seconds == pytest.approx(29 * 8192 / 44100)
    assert plan.summary().startswith("1 .flac, 1 .mp3, 1 .wav: 0:00:06 of audio")
    assert plan.estimated_bytes >= 6 * 44100 * 2


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"No audio RAVE can read .* It is empty"):
        check_preprocess_inputs([tmp_path / "empty"], tmp_path / "out")


def test_folder_of_text_files_is_refused(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    (folder / "b.txt").write_text("y")
    with pytest.raises(ValueError, match=r"It holds 2 \.txt\. Add audio files"):
        check_preprocess_inputs([folder], tmp_path / "out")


def test_unreadable_audio_is_refused(tmp_path):
    write_audio(tmp_path / "audio" / "good.wav")
    (tmp_path / "audio" / "broken.wav").write_text("not a wav")
    with pytest.raises(ValueError, match=r"1 file\(s\) could not be read .*broken\.wav"):
        check_preprocess_inputs([tmp_path / "audio"], tmp_path / "out")


def test_too_little_audio_is_refused(tmp_path):
    write_audio(tmp_path / "audio" / "short.wav", seconds=3.0)
    with pytest.raises(ValueError, match=r"too short: RAVE cuts it into examples of 5\.9 s"):
        check_preprocess_inputs([tmp_path / "audio"], tmp_path / "out")


def test_used_output_folder_and_missing_folder_are_refused(nested_audio, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ValueError, match="is not empty"):
        check_preprocess_inputs([nested_audio], tmp_path / "used", num_signal=NUM_SIGNAL)
    with pytest.raises(ValueError, match="does not exist"):
        check_preprocess_inputs([tmp_path / "nope"], tmp_path / "out")
    with pytest.raises(ValueError, match="at least one folder"):
        check_preprocess_inputs([], tmp_path / "out")


def test_missing_ffmpeg_is_refused_before_launch(db, nested_audio, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rave").symlink_to(find_rave())
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"ffmpeg and ffprobe are not installed.*sudo apt install ffmpeg"):
        DatasetManager(db).create_from_audio([nested_audio], out, "voice")
    assert rows(db) == 0 and not out.exists()


def test_command_lines(nested_audio, tmp_path):
    plan = check_preprocess_inputs([nested_audio], tmp_path / "out", channels=2, sample_rate=48000,
                                   num_signal=NUM_SIGNAL, lazy=True)
    argv = preprocess_command(Path("/x/rave"), plan)
    assert argv[1] == "-c" and argv[3] == "/x/rave"  # answers RAVE's "Continue ? (y/n)"
    assert argv[4:] == ["preprocess", "--input_path", str(nested_audio), "--output_path",
                        str(tmp_path / "out"), "--channels", "2", "--sampling_rate", "48000",
                        "--num_signal", str(NUM_SIGNAL), "--lazy"]


def test_remove_dataset_can_delete_files(db, fake_dataset):
    manager = DatasetManager(db)
    (fake_dataset / "keep.txt").write_text("mine")
    dataset_id = manager.register(fake_dataset)
    manager.remove_dataset(dataset_id, delete_files=True)
    assert manager.get_dataset(dataset_id) is None
    assert sorted(p.name for p in fake_dataset.iterdir()) == ["keep.txt"]  # only RAVE's files go


# -- the real CLI --------------------------------------------------------------

@pytest.mark.e2e
def test_mono_dataset_from_nested_wav_flac_mp3(qtbot, db, nested_audio, tmp_path):
    out = tmp_path / "datasets" / "voice"
    proc = DatasetManager(db).create_from_audio([nested_audio], out, "voice", num_signal=NUM_SIGNAL)
    percents = []
    proc.progress.connect(lambda p, _text: percents.append(p))
    with qtbot.waitSignals([proc.dataset_created, app_signals().dataset_added], timeout=TIMEOUT_MS):
        ok, message = run(qtbot, proc)
    assert ok, message
    assert "is ready" in message
    meta = yaml.safe_load((out / "metadata.yaml").read_text())
    assert meta["channels"] == 1 and meta["sr"] == 44100 and meta["n_seconds"] > 5
    row = DatasetManager(db).get_dataset(proc.dataset_id)
    assert row["name"] == "voice" and Path(row["path"]) == out and row["channels"] == 1
    assert percents[0] == 0 and percents[-1] == 100 and percents == sorted(percents)


@pytest.mark.e2e
def test_stereo_dataset_and_lazy_prompt_answered(qtbot, db, tmp_path):
    write_audio(tmp_path / "st" / "a.wav", channels=2)
    write_audio(tmp_path / "st" / "b" / "c.flac", channels=2)
    manager = DatasetManager(db)
    proc = manager.create_from_audio([tmp_path / "st"], tmp_path / "stereo", "stereo",
                                     channels=2, sample_rate=22050, num_signal=NUM_SIGNAL)
    ok, message = run(qtbot, proc)
    assert ok, message
    assert manager.get_dataset(proc.dataset_id)["channels"] == 2
    assert yaml.safe_load((tmp_path / "stereo" / "metadata.yaml").read_text())["sr"] == 22050

    lazy = manager.create_from_audio([tmp_path / "st"], tmp_path / "lazy", "lazy", lazy=True)
    ok, message = run(qtbot, lazy)
    assert ok, message
    meta = yaml.safe_load((tmp_path / "lazy" / "metadata.yaml").read_text())
    assert meta["lazy"] is True and meta["n_seconds"] == pytest.approx(4.0, abs=0.1)


@pytest.mark.e2e
def test_cancel_removes_half_written_dataset(qtbot, db, nested_audio, tmp_path):
    out = tmp_path / "cancelled"
    proc = DatasetManager(db).create_from_audio([nested_audio], out, "cancelled", num_signal=NUM_SIGNAL)
    proc.output.connect(lambda _line: proc.stop())
    ok, message = run(qtbot, proc)
    assert not ok and message.startswith("Cancelled")
    assert rows(db) == 0 and not out.exists()


@pytest.mark.e2e
def test_ffmpeg_vanishing_after_the_check_ends_the_hang(qtbot, db, nested_audio, tmp_path, monkeypatch):
    """RAVE waits forever when its workers cannot run ffprobe; the process ends it."""
    out = tmp_path / "noffmpeg"
    proc = DatasetManager(db).create_from_audio([nested_audio], out, "x", num_signal=NUM_SIGNAL)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("ffprobe") is None
    ok, message = run(qtbot, proc, timeout=60_000)
    assert not ok and "could not start ffmpeg or ffprobe" in message and "apt install" in message
    assert rows(db) == 0 and not out.exists()


def test_a_read_only_output_place_is_said_as_such_not_as_zero_gb_free(nested_audio):
    """/proc cannot be written, even by root (it used to read "needs about 0.0 GB but only
    0.0 GB is free")."""
    with pytest.raises(ValueError) as info:
        check_preprocess_inputs([nested_audio], "/proc/rave-gui-dataset")
    message = str(info.value)
    assert "cannot be written" in message and "Choose a folder you can write to." in message
    assert "GB" not in message
