"""Shared fixtures. Qt runs offscreen; every database lives in tmp_path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "QtAgg")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helper modules: audio, fake_process

import pytest  # noqa: E402

from rave_gui.core.database import Database  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rave"


@pytest.fixture
def db(tmp_path) -> Database:
    database = Database(tmp_path / "test.sqlite3")
    yield database
    database.close()


@pytest.fixture
def fake_dataset(tmp_path) -> Path:
    """A folder that looks like `rave preprocess` output (metadata + data.mdb)."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "metadata.yaml").write_text("channels: 1\nlazy: false\nn_seconds: 29.72154195011338\nsr: 44100\n")
    (folder / "data.mdb").write_bytes(b"\0" * 16)
    return folder


@pytest.fixture
def python() -> str:
    return sys.executable
