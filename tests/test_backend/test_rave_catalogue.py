"""backend.rave_catalogue: what the app says about RAVE, checked against acids-rave's files."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from rave_gui.backend.rave_catalogue import (
    BASE_CONFIGS, CONFIG_HELP, MAIN_MODIFIERS, MODIFIER_HELP, N_SIGNAL, TRAIN_PERCENT, config_help,
    learning_rate_field, learning_rate_summary, main_and_more_modifiers, modifier_help, offered_configs,
    training_examples,
)
from rave_gui.backend.rave_cli import BROKEN_CONFIGS, RAVE_CONFIGS, RAVE_MODIFIERS

spec = importlib.util.find_spec("rave")
RAVE_DIR = Path(spec.submodule_search_locations[0]) if spec else None
needs_rave = pytest.mark.skipif(RAVE_DIR is None, reason="acids-rave is not installed")


def test_every_config_and_modifier_has_help():
    assert set(CONFIG_HELP) == set(RAVE_CONFIGS)
    assert set(MODIFIER_HELP) == set(RAVE_MODIFIERS)
    assert all(config_help(c) for c in RAVE_CONFIGS) and all(modifier_help(m) for m in RAVE_MODIFIERS)
    assert config_help("nope") == "" == modifier_help("nope")
    for name, sentence in BROKEN_CONFIGS.items():
        assert config_help(name) == sentence


def test_offered_configs_leave_out_the_broken_ones():
    first, others = offered_configs()
    assert first == [c for c in BASE_CONFIGS if c not in BROKEN_CONFIGS]
    assert others == [c for c in RAVE_CONFIGS if c not in BASE_CONFIGS and c not in BROKEN_CONFIGS]
    assert not set(first + others) & set(BROKEN_CONFIGS)
    assert "v2_nopqmf_small" in BROKEN_CONFIGS and "v2_nopqmf_small" not in others


def test_modifiers_split():
    main, more = main_and_more_modifiers()
    assert main == list(MAIN_MODIFIERS) and main + more == [*MAIN_MODIFIERS, *[m for m in RAVE_MODIFIERS
                                                                              if m not in MAIN_MODIFIERS]]


@pytest.mark.parametrize("samples, expected", [(0, (0, 0)), (None, (0, 0)), (N_SIGNAL - 1, (0, 0)),
                                               (N_SIGNAL, (1, 1)), (10 * N_SIGNAL, (10, 9)),
                                               (100 * N_SIGNAL, (100, 98)), (-5, (0, 0))])
def test_training_examples(samples, expected):
    assert training_examples(samples) == expected


def test_learning_rate_says_what_rave_uses():
    assert learning_rate_summary() == ("set by RAVE's code (Adam, 1e-3 for the generator, decaying linearly "
                                       "to 1e-4 over phase 1; 1e-4 for the discriminator)")
    assert learning_rate_field().startswith("1e-3")


@needs_rave
def test_numbers_match_the_installed_rave():
    model = (RAVE_DIR / "model.py").read_text()
    assert "torch.optim.Adam(gen_p, 1e-3" in model and "torch.optim.Adam(dis_p, 1e-4" in model
    assert "end_factor=0.1" in model                       # 1e-3 decays to 1e-4
    train = RAVE_DIR.parent / "scripts" / "train.py"
    if train.is_file():
        text = train.read_text()
        assert re.search(r"DEFINE_integer\('n_signal',\s*%d" % N_SIGNAL, text)
        assert f"split_dataset(dataset, {TRAIN_PERCENT})" in text
    configs = {p.stem for p in (RAVE_DIR / "configs").glob("*.gin")}
    assert set(RAVE_CONFIGS) <= configs and set(RAVE_MODIFIERS) <= configs
    assert not any("n_signal" in p.read_text() for p in (RAVE_DIR / "configs").glob("*.gin"))


# -- the minimum GPU memory per config (RAVE's README, ../shared/RAVE_FACTS.md) ---------------------
def test_min_gpu_memory_table_is_rave_readmes():
    from rave_gui.backend.rave_catalogue import MIN_GPU_MEMORY_GB, SMALLER_CONFIGS, min_gpu_memory_gb
    assert MIN_GPU_MEMORY_GB == {"v1": 8, "v2": 16, "v2_small": 8, "v3": 32, "discrete": 18, "onnx": 6,
                                 "raspberry": 5}
    assert set(MIN_GPU_MEMORY_GB) <= set(RAVE_CONFIGS)           # the names `rave train --config` takes
    assert set(SMALLER_CONFIGS) <= set(MIN_GPU_MEMORY_GB)
    assert min_gpu_memory_gb("v2") == 16 and min_gpu_memory_gb("v3") == 32
    assert min_gpu_memory_gb("discrete_v3") is None and min_gpu_memory_gb("v2_nopqmf") is None


@pytest.mark.parametrize("gb, base, suggested", [
    (12.0, "v2", "v2_small"),       # 16 GB asked: the 8 GB one fits
    (24.0, "v3", "v2"),             # 32 GB asked: v2 (16) fits
    (16.0, "discrete", "v2"),
    (7.9, "v2", "raspberry"),       # not even v2_small's 8 GB
    (6.0, "v1", "raspberry"),
    (4.0, "v2", None),              # under raspberry's 5 GB: nothing fits
    (4.0, "raspberry", None),
    (7.0, "v2_small", "raspberry"),
])
def test_smaller_config_suggests_the_biggest_that_fits_and_needs_less(gb, base, suggested):
    from rave_gui.backend.rave_catalogue import MIN_GPU_MEMORY_GB, smaller_config
    assert smaller_config(gb, base) == suggested
    if suggested:
        assert MIN_GPU_MEMORY_GB[suggested] <= gb and MIN_GPU_MEMORY_GB[suggested] < MIN_GPU_MEMORY_GB[base]
