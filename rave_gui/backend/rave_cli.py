"""Finding the ``rave`` executable and building its command lines.

No Qt, no torch: the GUI never imports RAVE itself, it launches it.
"""
from __future__ import annotations

import os
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
# RAVE's hard-coded generator schedule and when phase 2 (adversarial) starts.
RAVE_GEN_LR = (1e-3, 1e-4)
RAVE_DIS_LR = 1e-4
DEFAULT_PHASE_1 = {"v1": 1_000_000, "v2": 1_000_000, "v2_small": 1_000_000, "v3": 1_000_000,
                   "discrete": 200_000, "v2_nopqmf": 1_000_000, "v2_nopqmf_small": 1_000_000}

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
    """A copy-pasteable shell line for ``argv``."""
    import shlex
    if len(argv) > 1 and argv[1] == str(LAUNCHER):
        argv = ["rave", *argv[2:]]
    return shlex.join(argv)
