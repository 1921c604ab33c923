"""Building the ``rave train`` command line and finding ``rave``
(rave_gui.backend.rave_cli), and when RAVE's phase 2 begins (``phase_1_duration``,
checked against the gin files acids-rave ships)."""
from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rave_gui.backend import rave_cli
from rave_gui.backend.rave_cli import (
    DEFAULT_PHASE_1, ENV_RAVE, LAUNCHER, RAVE_CONFIGS, RAVE_MODIFIERS, RaveNotFound, default_workers,
    detect_gpus, display_command, find_rave, gpu_flag, interpreter_for, phase_1_duration, train_arguments,
    train_command,
)

WEIRD_NAME = "my run \"quoted\" it's ünïcødé 🎛 $HOME; echo hi `id` *"


def make_cfg(**overrides) -> dict:
    cfg = {"name": "first", "base_config": "v2", "modifiers": ["causal", "snake"], "device": "cpu",
           "max_steps": 300_000, "batch_size": 8, "val_every": 5_000, "workers": None,
           "overrides": ["PHASE_1_DURATION=200000", "RAVE.latent_size = 16"]}
    cfg.update(overrides)
    return cfg


def dataset(tmp_path, channels=2) -> dict:
    return {"path": str(tmp_path / "data sets" / "piano db"), "channels": channels}


def values(argv: list[str], flag: str) -> list[str]:
    """Every value given to ``flag``, in order."""
    return [argv[i + 1] for i, item in enumerate(argv) if item == flag]


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_rave(tmp_path) -> Path:
    """A ``rave`` that prints its arguments as JSON (its shebang is this Python)."""
    return executable(tmp_path / "fake_bin" / "rave",
                      f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")


# -- train_arguments ---------------------------------------------------------------------------------
def test_full_argument_list(tmp_path):
    ds = dataset(tmp_path)
    args = train_arguments(make_cfg(), ds, tmp_path / "out dir")
    assert args == [
        "--config", "v2", "--config", "causal", "--config", "snake",
        "--db_path", ds["path"], "--name", "first", "--out_path", str(tmp_path / "out dir"),
        "--channels", "2", "--max_steps", "300000", "--batch", "8", "--val_every", "5000",
        "--workers", "0", "--gpu", "-1",
        "--override", "PHASE_1_DURATION=200000", "--override", "RAVE.latent_size = 16",
    ]
    assert all(isinstance(a, str) for a in args)


@pytest.mark.parametrize("base, modifiers", [
    ("v1", []), ("v3", ["noise"]), ("discrete", ["causal", "snake", "noise"]),
    ("v2_small", ["spherical", "wasserstein", "hybrid"]), ("onnx", ["normalize_ambient", "adain"]),
])
def test_every_config_in_order(tmp_path, base, modifiers):
    args = train_arguments(make_cfg(base_config=base, modifiers=modifiers), dataset(tmp_path), tmp_path)
    assert values(args, "--config") == [base, *modifiers]
    assert args[:2 * (1 + len(modifiers))] == list(itertools.chain(*(["--config", c] for c in [base, *modifiers])))


@pytest.mark.parametrize("channels", [1, 2, "2", 2.0])
def test_channels_come_from_the_dataset(tmp_path, channels):
    args = train_arguments(make_cfg(), dataset(tmp_path, channels), tmp_path)
    assert values(args, "--channels") == [str(int(channels))]


def test_missing_modifiers_and_overrides_keys(tmp_path):
    cfg = make_cfg()
    del cfg["modifiers"], cfg["overrides"], cfg["workers"]
    args = train_arguments(cfg, dataset(tmp_path), tmp_path)
    assert values(args, "--config") == ["v2"]
    assert "--override" not in args and "--ckpt" not in args
    assert values(args, "--workers") == ["0"]


@pytest.mark.parametrize("device, gpus, expected", [
    ("cpu", [], ["-1"]),
    ("cpu", ["NVIDIA H200"], ["-1"]),
    ("gpu:0", [], ["0"]),
    ("gpu:1", ["A", "B"], ["1"]),
    ("gpu:3", ["A"], ["3"]),
    ("auto", ["NVIDIA H200"], ["0"]),
    ("auto", ["A", "B"], ["0"]),
    ("auto", [], ["-1"]),
])
def test_gpu_flag(tmp_path, device, gpus, expected):
    args = train_arguments(make_cfg(device=device), dataset(tmp_path), tmp_path, gpus=gpus)
    assert values(args, "--gpu") == expected          # exactly one --gpu: several would ask for several GPUs
    assert gpu_flag(device, gpus) == ["--gpu", expected[0]]


def test_workers_default_to_zero_on_cpu_and_honour_the_config(tmp_path):
    ds = dataset(tmp_path)
    assert values(train_arguments(make_cfg(device="cpu"), ds, tmp_path), "--workers") == ["0"]
    assert values(train_arguments(make_cfg(device="auto"), ds, tmp_path, gpus=[]), "--workers") == ["0"]
    on_gpu = values(train_arguments(make_cfg(device="gpu:0"), ds, tmp_path, gpus=["A"]), "--workers")
    assert on_gpu == [str(min(8, os.cpu_count() or 1))]
    assert values(train_arguments(make_cfg(device="cpu", workers=3), ds, tmp_path), "--workers") == ["3"]
    assert values(train_arguments(make_cfg(device="gpu:0", workers=0), ds, tmp_path), "--workers") == ["0"]
    assert default_workers(["--gpu", "-1"]) == 0


def test_each_override_is_its_own_argument(tmp_path):
    overrides = ["PHASE_1_DURATION=100000", "RAVE.phase_1_duration = 5", "blocks.EncoderV2.n_out=2",
                 "dataset.get_dataset.augmentations = []"]
    args = train_arguments(make_cfg(overrides=overrides), dataset(tmp_path), tmp_path)
    assert values(args, "--override") == overrides
    assert args[-2 * len(overrides):] == list(itertools.chain(*(["--override", o] for o in overrides)))


def test_ckpt_only_when_given(tmp_path):
    ds = dataset(tmp_path)
    assert "--ckpt" not in train_arguments(make_cfg(), ds, tmp_path)
    assert "--ckpt" not in train_arguments(make_cfg(), ds, tmp_path, ckpt=None)
    run = tmp_path / "out" / "first_0123456789"
    args = train_arguments(make_cfg(), ds, tmp_path, ckpt=run)
    assert values(args, "--ckpt") == [str(run)]
    assert args[-2:] == ["--ckpt", str(run)]


# -- train_command: argv, no shell ------------------------------------------------------------------------
def test_command_runs_rave_directly_without_launcher(tmp_path, fake_rave):
    argv = train_command(fake_rave, make_cfg(), dataset(tmp_path), tmp_path / "out", launcher=False, gpus=[])
    assert argv[:2] == [str(fake_rave), "train"]
    assert argv[2:] == train_arguments(make_cfg(), dataset(tmp_path), tmp_path / "out", gpus=[])


def test_command_with_launcher_runs_the_interpreter_of_rave(tmp_path, fake_rave):
    argv = train_command(fake_rave, make_cfg(), dataset(tmp_path), tmp_path / "out", gpus=[])
    assert argv[:3] == [sys.executable, str(LAUNCHER), "train"]
    assert Path(argv[1]).name == "rave_launcher.py" and Path(argv[1]).is_file()
    assert argv[3:] == train_arguments(make_cfg(), dataset(tmp_path), tmp_path / "out", gpus=[])


def test_strange_names_survive_as_single_arguments(tmp_path, fake_rave):
    out = tmp_path / "out 'dir'" / "ünï $x"
    ds = {"path": str(tmp_path / 'data "set" 🎹'), "channels": 1}
    cfg = make_cfg(name=WEIRD_NAME, overrides=["RAVE.name = 'a b'", 'X="y z"'])
    argv = train_command(fake_rave, cfg, ds, out, launcher=False, gpus=[])
    assert values(argv, "--name") == [WEIRD_NAME]
    assert values(argv, "--db_path") == [ds["path"]]
    assert values(argv, "--out_path") == [str(out)]
    # run it for real, without a shell: the program receives exactly these strings
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == argv[1:]


def test_display_command_quotes_for_a_shell(tmp_path, fake_rave):
    cfg = make_cfg(name=WEIRD_NAME)
    plain = train_command(fake_rave, cfg, dataset(tmp_path), tmp_path / "o u t", launcher=False, gpus=[])
    shown = display_command(plain)
    assert shlex.split(shown) == ["rave", *plain[1:]]  # by name: no machine path on screen
    assert WEIRD_NAME not in shown.replace(shlex.quote(WEIRD_NAME), "")  # only ever shown quoted
    # the launcher is an implementation detail: the line shown is the plain `rave train` one
    launched = train_command(fake_rave, cfg, dataset(tmp_path), tmp_path / "o u t", gpus=[])
    assert shlex.split(display_command(launched)) == ["rave", *launched[2:]]
    assert str(LAUNCHER) not in display_command(launched)
    # and the shell runs it as the same argv
    env = dict(os.environ, PATH=f"{fake_rave.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(["sh", "-c", shown], capture_output=True, text=True, timeout=60, check=True,
                            env=env)
    assert json.loads(result.stdout) == plain[1:]


# -- finding rave ------------------------------------------------------------------------------------------
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """sys.executable in an empty bin folder, an empty PATH, no RAVE_GUI_RAVE."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    empty = tmp_path / "empty_path"
    empty.mkdir()
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(ENV_RAVE, raising=False)
    return {"bin": bin_dir, "path": empty, "tmp": tmp_path}


def fake(path: Path) -> Path:
    return executable(path, "#!/bin/sh\necho fake\n")


def test_rave_not_found_says_how_to_install(isolated):
    with pytest.raises(RaveNotFound) as info:
        find_rave()
    message = str(info.value)
    assert "pip install acids-rave" in message and ENV_RAVE in message
    assert message.endswith(".") and "\n" not in message


def test_rave_next_to_the_interpreter_comes_first(isolated, monkeypatch):
    beside = fake(isolated["bin"] / "rave")
    fake(isolated["path"] / "rave")
    setting = fake(isolated["tmp"] / "elsewhere" / "rave")
    monkeypatch.setenv(ENV_RAVE, str(setting))
    assert find_rave() == beside
    assert find_rave(setting) == beside


def test_rave_on_path_comes_before_the_setting(isolated, monkeypatch):
    on_path = fake(isolated["path"] / "rave")
    setting = fake(isolated["tmp"] / "elsewhere" / "rave")
    monkeypatch.setenv(ENV_RAVE, str(setting))
    assert find_rave() == on_path
    assert find_rave(str(setting)) == on_path


def test_setting_and_environment(isolated, monkeypatch):
    from_env = fake(isolated["tmp"] / "env" / "rave")
    from_arg = fake(isolated["tmp"] / "arg" / "rave")
    monkeypatch.setenv(ENV_RAVE, str(from_env))
    assert find_rave() == from_env
    assert find_rave(from_arg) == from_arg        # an explicit setting beats the environment
    monkeypatch.delenv(ENV_RAVE)
    assert find_rave(str(from_arg)) == from_arg


def test_setting_with_tilde(isolated, monkeypatch):
    home = isolated["tmp"] / "home"
    target = fake(home / "tools" / "rave")
    monkeypatch.setenv("HOME", str(home))
    assert find_rave("~/tools/rave") == target


def test_files_that_cannot_run_are_skipped(isolated):
    (isolated["bin"] / "rave").write_text("not executable")
    (isolated["path"] / "rave").mkdir()                 # a folder named rave
    with pytest.raises(RaveNotFound):
        find_rave(isolated["tmp"] / "missing" / "rave")
    setting = fake(isolated["tmp"] / "ok" / "rave")
    assert find_rave(setting) == setting


def test_interpreter_for_reads_the_shebang(tmp_path):
    python = Path(sys.executable)
    assert interpreter_for(executable(tmp_path / "a", f"#!{python}\n")) == str(python)
    assert interpreter_for(executable(tmp_path / "b", "#!/usr/bin/env python3\n")) == sys.executable
    assert interpreter_for(executable(tmp_path / "c", "#!/nonexistent/python3.11\n")) == sys.executable
    assert interpreter_for(executable(tmp_path / "d", "#!/bin/sh\n")) == sys.executable
    assert interpreter_for(tmp_path / "missing") == sys.executable


def test_detect_gpus_reads_nvidia_smi(isolated):
    assert detect_gpus() == []
    assert gpu_flag("auto") == ["--gpu", "-1"]
    executable(isolated["path"] / "nvidia-smi",
               "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-1234)'\necho 'GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-5)'\n")
    assert detect_gpus() == ["NVIDIA H200", "NVIDIA A100-SXM4-80GB"]
    assert gpu_flag("auto") == ["--gpu", "0"]


# -- phase 1 -------------------------------------------------------------------------------------------------
def test_default_phase_1_table():
    assert DEFAULT_PHASE_1 == {
        "v1": 1_000_000, "v2": 1_000_000, "v2_small": 1_000_000, "v3": 1_000_000,
        "discrete": 200_000, "discrete_v3": 200_000, "v2_nopqmf": 1_000_000, "v2_nopqmf_small": 500_000,
        "onnx": 1_000_000, "raspberry": 1_000_000,
    }
    assert set(DEFAULT_PHASE_1) == set(RAVE_CONFIGS)


@pytest.mark.parametrize("base, modifiers, overrides, expected", [
    ("v2", [], [], 1_000_000),
    ("discrete", [], [], 200_000),
    ("discrete_v3", [], [], 200_000),
    ("onnx", [], [], 1_000_000),
    ("raspberry", [], [], 1_000_000),
    ("v2_nopqmf_small", [], [], 500_000),
    ("v2", ["wasserstein"], [], 200_000),
    ("v2", ["spherical"], [], 200_000),
    ("v2", ["causal", "snake", "noise"], [], 1_000_000),
    ("discrete", ["hybrid"], [], 1_000_000),                        # hybrid includes v2.gin again
    ("v2", ["spherical", "hybrid"], [], 1_000_000),                 # ... which rebinds phase_1_duration
    ("v2", ["hybrid", "spherical"], [], 200_000),
    ("v2_nopqmf", ["wasserstein"], [], 200_000),                    # wasserstein points it back at the macro
    ("v2", [], ["PHASE_1_DURATION=300000"], 300_000),
    ("v2", [], ["PHASE_1_DURATION = 300_000"], 300_000),
    ("v2", [], ["PHASE_1_DURATION=1e5"], 100_000),
    ("discrete", [], ["PHASE_1_DURATION=50000"], 50_000),
    ("v2_nopqmf", [], ["PHASE_1_DURATION=10"], 1_000_000),          # bound directly: the macro does nothing
    ("v2_nopqmf_small", [], ["PHASE_1_DURATION=10"], 500_000),
    ("v2", ["spherical"], ["PHASE_1_DURATION=50000"], 200_000),
    ("v2", ["wasserstein"], ["PHASE_1_DURATION=50000"], 50_000),
    ("v2", ["spherical"], ["RAVE.phase_1_duration=75000"], 75_000),
    ("v2_nopqmf", [], ["rave.model.RAVE.phase_1_duration=42"], 42),
    ("v2", [], ["model.RAVE.phase_1_duration=43"], 43),
    ("v2", [], ["rave.RAVE.phase_1_duration=42"], 42),              # read, though `rave train` rejects it
    ("v2", ["spherical"], ["PHASE_1_DURATION=5", "RAVE.phase_1_duration=%PHASE_1_DURATION"], 5),
    ("v2", [], ["RAVE.phase_1_duration=%OTHER_MACRO"], None),       # cannot be told
    ("v2", [], ["RAVE.latent_size=4", "blocks.EncoderV2.n_out=2"], 1_000_000),
    ("unknown_config", [], [], None),
])
def test_phase_1_duration(base, modifiers, overrides, expected):
    assert phase_1_duration(base, modifiers, overrides) == expected


def test_wizard_uses_the_backend_function():
    pytest.importorskip("PyQt6.QtWidgets")
    from rave_gui.ui.dialogs import new_training
    assert new_training.phase_1_duration is rave_cli.phase_1_duration
    assert not hasattr(new_training, "_PHASE_1_MACRO")


# The answer read straight off the gin files acids-rave ships: follow includes and
# apply bindings in order, as gin does (configs, then modifiers, then overrides).
spec = importlib.util.find_spec("rave")
RAVE_CONFIG_DIR = Path(spec.submodule_search_locations[0]) / "configs" if spec else None


def gin_files_phase_1(names: list[str], overrides: list[str]) -> int:
    state = {"macro": None, "bound": None}
    key = r"(?:(?:rave\.)?(?:model\.)?RAVE\.)?phase_1_duration"

    def bind(statement: str, in_rave_block: bool) -> None:
        match = re.fullmatch(r"PHASE_1_DURATION\s*=\s*(\S+)", statement)
        if match and not in_rave_block:
            state["macro"] = match.group(1)
            return
        match = re.fullmatch(rf"{key}\s*=\s*(\S+)", statement)
        if match and (in_rave_block or "RAVE." in statement):
            state["bound"] = match.group(1)

    def parse(name: str) -> None:
        scope = None
        for raw in (RAVE_CONFIG_DIR / f"{name}.gin").read_text().splitlines():
            line = raw.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            include = re.fullmatch(r'include\s+"configs/(\w+)\.gin"', line.strip())
            if include:
                parse(include.group(1))
                scope = None
            elif not raw[0].isspace():
                header = re.fullmatch(r"([\w.]+):", line)
                scope = header.group(1) if header else None
                if not header:
                    bind(line, False)
            elif scope == "rave.RAVE":
                bind(line.strip(), True)

    for name in names:
        parse(name)
    for binding in overrides:
        bind(binding.strip(), False)
    value = state["macro"] if state["bound"] == "%PHASE_1_DURATION" else state["bound"]
    return int(float(value))


OVERRIDE_SETS = [[], ["PHASE_1_DURATION=12345"], ["RAVE.phase_1_duration=777"],
                 ["rave.model.RAVE.phase_1_duration=778"],
                 ["PHASE_1_DURATION=12345", "RAVE.phase_1_duration=%PHASE_1_DURATION"]]
MODIFIER_SETS = [[]] + [[m] for m in RAVE_MODIFIERS] + [
    ["spherical", "hybrid"], ["hybrid", "spherical"], ["wasserstein", "spherical"], ["spherical", "wasserstein"],
    ["causal", "wasserstein", "noise"]]


@pytest.mark.skipif(RAVE_CONFIG_DIR is None, reason="acids-rave is not installed")
def test_phase_1_agrees_with_the_gin_files_for_every_combination():
    assert gin_files_phase_1(["v1"], []) == 1_000_000 and gin_files_phase_1(["v2_nopqmf_small"], []) == 500_000
    checked = 0
    for base in RAVE_CONFIGS:
        for modifiers in MODIFIER_SETS:
            for overrides in OVERRIDE_SETS:
                expected = gin_files_phase_1([base, *modifiers], overrides)
                assert phase_1_duration(base, modifiers, overrides) == expected, (base, modifiers, overrides)
                checked += 1
    assert checked == len(RAVE_CONFIGS) * len(MODIFIER_SETS) * len(OVERRIDE_SETS)


@pytest.mark.skipif(RAVE_CONFIG_DIR is None, reason="acids-rave is not installed")
def test_phase_1_agrees_with_gin_itself():
    """gin's own parser, as `rave train` calls it (imports rave, hence torch: a few seconds)."""
    gin = pytest.importorskip("gin")
    pytest.importorskip("rave")

    def real(names, overrides):
        gin.clear_config()
        gin.parse_config_files_and_bindings([str(RAVE_CONFIG_DIR / f"{n}.gin") for n in names], overrides)
        value = gin.query_parameter("rave.model.RAVE.phase_1_duration")
        return value if isinstance(value, int) else gin.query_parameter("%PHASE_1_DURATION")

    try:
        for base, modifiers, overrides in [
            ("v2", [], []), ("discrete_v3", [], []), ("raspberry", [], []), ("v2_nopqmf", [], []),
            ("v2", ["spherical"], ["PHASE_1_DURATION=5"]), ("onnx", ["wasserstein"], []),
            ("v2_nopqmf", ["hybrid"], ["PHASE_1_DURATION=7"]), ("v3", ["spherical"], ["RAVE.phase_1_duration=9"]),
            ("discrete", ["spherical", "wasserstein"], ["PHASE_1_DURATION=11"]),
        ]:
            assert phase_1_duration(base, modifiers, overrides) == real([base, *modifiers], overrides)
        # what `rave train` rejects, measured: the app's failure sentences rely on it
        with pytest.raises(ValueError, match="No configurable matching 'rave.RAVE'"):
            real(["v2"], ["rave.RAVE.phase_1_duration=5"])
        with pytest.raises(ValueError, match="doesn't have a parameter named 'amp_range'"):
            real(["v2_nopqmf_small"], [])
    finally:
        gin.clear_config()
