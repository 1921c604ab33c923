"""PHASE_1_DURATION read off a run's own config.gin (the operative config RAVE writes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rave_gui.backend.gin_config import phase_1_duration_of_run, phase_1_duration_of_text

SMOKE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "rave" / "smoke_run"


def write_run(tmp_path: Path, text: str) -> Path:
    run = tmp_path / "demo_0123456789"
    run.mkdir()
    (run / "config.gin").write_text(text)
    return run


def test_real_v2_small_run_config():
    assert phase_1_duration_of_run(SMOKE_RUN) == 1_000_000
    assert phase_1_duration_of_run(SMOKE_RUN / "config.gin") == 1_000_000  # the file itself
    assert phase_1_duration_of_run(str(SMOKE_RUN)) == 1_000_000


def test_real_config_with_an_override_of_the_macro(tmp_path):
    # what `rave train --override PHASE_1_DURATION=60` writes: the macro line changes
    text = (SMOKE_RUN / "config.gin").read_text()
    assert "PHASE_1_DURATION = 1000000" in text
    run = write_run(tmp_path, text.replace("PHASE_1_DURATION = 1000000", "PHASE_1_DURATION = 60"))
    assert phase_1_duration_of_run(run) == 60


def test_real_config_with_the_binding_set_to_a_number(tmp_path):
    # spherical / v2_nopqmf style: the binding is a number, the macro then changes nothing
    text = (SMOKE_RUN / "config.gin").read_text()
    text = text.replace("model.RAVE.phase_1_duration = %PHASE_1_DURATION",
                        "model.RAVE.phase_1_duration = 200000")
    assert phase_1_duration_of_run(write_run(tmp_path, text)) == 200_000


@pytest.mark.parametrize("text, expected", [
    ("PHASE_1_DURATION = 60\n", 60),
    ("PHASE_1_DURATION = 1_000_000\nmodel.RAVE.phase_1_duration = %PHASE_1_DURATION\n", 1_000_000),
    ("model.RAVE.phase_1_duration = %PHASE_1_DURATION\nPHASE_1_DURATION = 5_000\n", 5_000),
    ("RAVE.phase_1_duration = 1_500\n", 1_500),
    ("rave.model.RAVE.phase_1_duration = 2e5\n", 200_000),
    ("PHASE_1_DURATION = 100  # short run\n", 100),
    ("PHASE_1_DURATION = 100\nPHASE_1_DURATION = 300\n", 300),  # the last binding wins
    # a number bound after the macro reference wins over the macro, and vice versa
    ("PHASE_1_DURATION = 10\nmodel.RAVE.phase_1_duration = 20\n", 20),
    ("model.RAVE.phase_1_duration = 20\nmodel.RAVE.phase_1_duration = %PHASE_1_DURATION\n"
     "PHASE_1_DURATION = 10\n", 10),
    ("# PHASE_1_DURATION = 10\nLATENT_SIZE = 128\n", None),  # commented out: nothing bound
    ("model.RAVE.phase_1_duration = @some.function()\nPHASE_1_DURATION = 10\n", None),
    ("PHASE_1_DURATION = 'soon'\n", None),
    ("", None),
])
def test_hand_written_variants(tmp_path, text, expected):
    assert phase_1_duration_of_text(text) == expected
    assert phase_1_duration_of_run(write_run(tmp_path, text)) == expected


def test_no_config_yet_or_no_run(tmp_path):
    assert phase_1_duration_of_run(None) is None
    assert phase_1_duration_of_run("") is None
    assert phase_1_duration_of_run(tmp_path) is None  # a folder without config.gin
    assert phase_1_duration_of_run(tmp_path / "missing") is None

