"""Finding the ``rave`` executable and building its command lines.

No Qt, no torch: the GUI never imports RAVE itself, it launches it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# What acids-rave 2.3.1 ships (rave/configs/*.gin). Base configs first as the
# wizard shows them; the rest stays reachable.
RAVE_CONFIGS = ("v1", "v2", "v3", "discrete", "v2_small", "v2_nopqmf", "v2_nopqmf_small",
                "discrete_v3", "raspberry", "onnx")
RAVE_MODIFIERS = ("causal", "snake", "noise", "adain", "descript_discriminator",
                  "spectral_discriminator", "spherical", "wasserstein", "hybrid", "normalize_ambient")
ENV_RAVE = "RAVE_GUI_RAVE"
# Shipped but unusable in acids-rave 2.3.1 (measured with the CLI).
BROKEN_CONFIGS = {
    "v2_nopqmf_small": "v2_nopqmf_small does not load in acids-rave 2.3.1 (its gin file fails to parse: "
                       "Compress has no parameter amp_range). Choose v2_small instead.",
}
# RAVE's hard-coded generator schedule and when phase 2 (adversarial) starts.
RAVE_GEN_LR = (1e-3, 1e-4)
RAVE_DIS_LR = 1e-4

# When phase 2 begins, read off acids-rave 2.3.1's configs/*.gin. v1.gin binds
# ``PHASE_1_DURATION = 1000000`` and ``rave.RAVE.phase_1_duration = %PHASE_1_DURATION``;
# v2, v2_small, onnx (and raspberry, which includes onnx), hybrid include it unchanged;
# discrete.gin (and discrete_v3) rebinds the macro to 200000; wasserstein.gin rebinds it
# to 200000 and points phase_1_duration back at it. v2_nopqmf.gin (1000000),
# v2_nopqmf_small.gin (500000), v2_with_augs.gin (1000000) and the spherical modifier
# (200000) bind rave.RAVE.phase_1_duration to a number: there a PHASE_1_DURATION
# override changes nothing. (Measured: v2_nopqmf_small.gin itself does not parse in
# 2.3.1, "Configurable 'transforms.Compress' doesn't have a parameter named 'amp_range'".)
_PHASE_1_MACRO = {**{c: 1_000_000 for c in ("v1", "v2", "v2_small", "v3", "v2_nopqmf", "v2_nopqmf_small",
                                            "v2_with_augs", "onnx", "raspberry")},
                  "discrete": 200_000, "discrete_v3": 200_000}
_PHASE_1_BOUND = {"v2_nopqmf": 1_000_000, "v2_nopqmf_small": 500_000, "v2_with_augs": 1_000_000}
# gin names RAVE's class rave.model.RAVE: an override may write RAVE.phase_1_duration,
# model.RAVE.… or rave.model.RAVE.…; rave.RAVE.… is read here too, although `rave train`
# rejects it ("No configurable matching 'rave.RAVE'": only the gin files import rave as such).
_PHASE_OVERRIDE = re.compile(r"^\s*(?P<key>PHASE_1_DURATION|(?:rave\.)?(?:model\.)?RAVE\.phase_1_duration)"
                             r"\s*=\s*(?P<value>\S.*?)\s*$")


def _gin_int(text: str) -> int | None:
    try:
        return int(float(text.replace("_", "")))
    except ValueError:
        return None


def phase_1_duration(base_config: str, modifiers=(), overrides=()) -> int | None:
    """The step at which RAVE starts phase 2 (adversarial) for this base config,
    modifiers (applied in order, after the base) and ``--override`` bindings
    (applied last, as ``rave train`` does), or ``None`` when it cannot be told
    (an unknown config, or an override whose value cannot be read)."""
    macro = _PHASE_1_MACRO.get(base_config)
    bound = _PHASE_1_BOUND.get(base_config)
    for mod in modifiers:
        if mod == "wasserstein":        # PHASE_1_DURATION = 200000, phase_1_duration = %PHASE_1_DURATION
            macro, bound = 200_000, None
        elif mod == "spherical":        # rave.RAVE.phase_1_duration = 200000
            bound = 200_000
        elif mod == "hybrid":           # include "configs/v2.gin" (which includes v1.gin)
            macro, bound = 1_000_000, None
    for binding in overrides:
        match = _PHASE_OVERRIDE.match(binding)
        if not match:
            continue
        value = match["value"]
        if match["key"] == "PHASE_1_DURATION":
            macro = _gin_int(value)
        elif value == "%PHASE_1_DURATION":
            bound = None
        else:
            bound = _gin_int(value)
            if bound is None:
                return None
    return bound if bound is not None else macro


# Phase 1 of each base config alone (no modifiers, no overrides).
DEFAULT_PHASE_1 = {name: phase_1_duration(name) for name in RAVE_CONFIGS}

LAUNCHER = Path(__file__).with_name("rave_launcher.py")


class RaveNotFound(RuntimeError):
    """No ``rave`` executable; the message says how to install it."""


def find_rave(setting: str | os.PathLike | None = None) -> Path:
    """Locate ``rave``: next to the running interpreter, then on PATH, then
    the setting (argument or ``RAVE_GUI_RAVE``)."""
    candidates = [Path(sys.executable).parent / "rave"]
    on_path = shutil.which("rave")
    if on_path:
        candidates.append(Path(on_path))
    setting = setting or os.environ.get(ENV_RAVE)
    if setting:
        candidates.append(Path(setting).expanduser())
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise RaveNotFound(
        "The `rave` command was not found (it comes with the acids-rave package). "
        "Install it with `pip install acids-rave==2.3.1` in this environment "
        f"(or run `make run`), or set {ENV_RAVE} to the path of an existing `rave`.")


def interpreter_for(rave: Path) -> str:
    """The Python that runs ``rave`` (its shebang), so the launcher imports the same RAVE."""
    try:
        with open(rave, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
    except OSError:
        return sys.executable
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and Path(parts[0]).name.startswith("python") and Path(parts[0]).exists():
            return parts[0]
    return sys.executable


def detect_gpus() -> list[str]:
    """Names of NVIDIA GPUs (``nvidia-smi -L``), without importing torch."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines()
            if line.startswith("GPU ") and ":" in line]


def gpu_flag(device: str, gpus: list[str] | None = None) -> list[str]:
    """``--gpu`` arguments for 'cpu', 'gpu:N' and 'auto' (first GPU if any, else CPU)."""
    if device == "cpu":
        return ["--gpu", "-1"]
    if device.startswith("gpu:"):
        return ["--gpu", device.split(":", 1)[1]]
    gpus = detect_gpus() if gpus is None else gpus
    return ["--gpu", "0"] if gpus else ["--gpu", "-1"]


def default_workers(device_args: list[str]) -> int:
    if device_args == ["--gpu", "-1"]:
        return 0  # measured: workers on a CPU run slow each step ~5x
    return min(8, os.cpu_count() or 1)


def train_arguments(cfg: dict, dataset: dict, out_dir: str | os.PathLike,
                    gpus: list[str] | None = None, ckpt: str | os.PathLike | None = None) -> list[str]:
    """Arguments after ``rave train`` for a validated config and its dataset."""
    args: list[str] = []
    for name in [cfg["base_config"], *cfg.get("modifiers", [])]:
        args += ["--config", name]
    device = gpu_flag(cfg.get("device", "auto"), gpus)
    workers = cfg.get("workers")
    args += ["--db_path", str(dataset["path"]), "--name", cfg["name"], "--out_path", str(out_dir),
             "--channels", str(int(dataset["channels"])),
             "--max_steps", str(int(cfg["max_steps"])), "--batch", str(int(cfg["batch_size"])),
             "--val_every", str(int(cfg["val_every"])),
             "--workers", str(default_workers(device) if workers is None else int(workers)), *device]
    for binding in cfg.get("overrides", []):
        args += ["--override", binding]
    if ckpt:
        args += ["--ckpt", str(ckpt)]
    return args


def train_command(rave: Path, cfg: dict, dataset: dict, out_dir, *, launcher: bool = True,
                  gpus: list[str] | None = None, ckpt=None) -> list[str]:
    """The argv that runs ``rave train``. With ``launcher`` it runs RAVE's own
    entry point through ``rave_launcher.py``, which adds the Lightning
    callbacks the app needs (stop checkpoint, step lines, learning-rate log)."""
    args = ["train", *train_arguments(cfg, dataset, out_dir, gpus, ckpt)]
    if launcher:
        return [interpreter_for(rave), str(LAUNCHER), *args]
    return [str(rave), *args]


def display_command(argv: list[str]) -> str:
    """A copy-pasteable shell line for ``argv`` (``rave`` by name: the one on
    PATH once the app's environment is active)."""
    import shlex
    if len(argv) > 1 and argv[1] == str(LAUNCHER):
        argv = ["rave", *argv[2:]]
    elif argv and Path(argv[0]).name == "rave":
        argv = ["rave", *argv[1:]]
    return shlex.join(argv)
