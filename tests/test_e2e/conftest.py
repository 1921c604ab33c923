"""End-to-end fixtures: a real tiny dataset made by the real `rave preprocess`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from audio import make_audio_folder  # tests/ helper (on sys.path through tests/conftest.py)

from rave_gui.backend import rave_cli


@pytest.fixture(scope="session")
def rave_exe() -> Path:
    return rave_cli.find_rave()


@pytest.fixture(scope="session")
def rave_dataset(tmp_path_factory, rave_exe) -> Path:
    """~18 s of synthetic audio preprocessed by the real CLI (6 examples)."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required for the end-to-end tests (make test installs it)")
    root = tmp_path_factory.mktemp("rave_data")
    audio = make_audio_folder(root / "audio", files=4, seconds=8)
    out = root / "dataset"
    subprocess.run([str(rave_exe), "preprocess", "--input_path", str(audio), "--output_path", str(out),
                    "--channels", "1"], check=True, capture_output=True, timeout=300)
    assert (out / "metadata.yaml").is_file()
    return out
