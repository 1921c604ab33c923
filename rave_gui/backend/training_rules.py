"""The rules a new training run is checked against before it starts: gin
overrides, and the warnings the review page shows (phase 2 never reached, a
dataset shorter than one batch, no GPU, no validation, a vanished dataset), and
the one the parameters page shows when the chosen GPU has less memory than
RAVE's README asks for the config.

Plain Python, no Qt: the wizard shows these sentences and
``TrainingManager.validate_config`` can refuse with the same ones.
Every function returns sentences that say what to do; '' means "fine".
"""
from __future__ import annotations

import re
from pathlib import Path

from rave_gui.backend.rave_cli import phase_1_duration
from rave_gui.backend.rave_catalogue import (
    CPU_STEPS_PER_SECOND, N_SIGNAL, TRAIN_PERCENT, min_gpu_memory_gb, smaller_config, training_examples,
)
from rave_gui.core.formatting import format_rough_duration

# Characters no binding may hold: C0 controls except tab, DEL, C1 controls, and
# the Unicode line and paragraph separators. A NUL makes subprocess.Popen raise
# "embedded null byte"; the others corrupt gin's parse or the log.
_CONTROL_CLASS = "\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f\\u2028\\u2029"
CONTROL_RE = re.compile(f"[{_CONTROL_CLASS}]")
# What Python's str.splitlines() (and a person) takes for a line break.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# NAME=value: a gin name (``scope/`` optional), '=', a value; blanks around '=' allowed,
# no control character anywhere. Anchored: ``match`` and ``fullmatch`` agree.
OVERRIDE_RE = re.compile(
    rf"^[A-Za-z_][\w.]*(?:/[\w.]+)?[^\S{_CONTROL_CLASS}]*=[^\S{_CONTROL_CLASS}]*"
    rf"[^\s{_CONTROL_CLASS}][^{_CONTROL_CLASS}]*\Z")
EXAMPLE_BINDING = "PHASE_1_DURATION=200000"
_SHOWN = 60           # characters of a refused binding quoted in its sentence


def _quoted(binding: str) -> str:
    """The binding as a sentence quotes it: repr (control characters escaped), shortened."""
    return repr(binding[:_SHOWN]) + ("\u2026" if len(binding) > _SHOWN else "")


def _lower_first(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:]


def check_binding(binding) -> str:
    """'' when ``binding`` (surrounding blanks allowed) is one gin binding
    ``NAME=value`` that ``rave train --override`` can take; otherwise the sentence
    that says what is wrong and what to do."""
    if not isinstance(binding, str):
        return f"Overrides are gin bindings written as text, such as {EXAMPLE_BINDING} (got {binding!r})."
    if not binding.strip():
        return f"The override is empty: write a gin binding such as {EXAMPLE_BINDING}, or remove it."
    breaks = sorted({c for c in binding if c in LINE_BREAKS})
    if breaks:
        shown = " ".join(repr(c)[1:-1] for c in breaks)
        return (f"{_quoted(binding)} contains a line break ({shown}): "
                "put each binding on a line of its own.")
    controls = sorted(set(CONTROL_RE.findall(binding)))
    if controls:
        shown = " ".join(repr(c)[1:-1] for c in controls)
        return (f"{_quoted(binding)} contains an invisible control character ({shown}), probably pasted, "
                "which RAVE cannot be given: type the binding again by hand as NAME=value.")
    text = binding.strip()
    if text.startswith("--override"):
        return "Write only the binding, without --override."
    if not OVERRIDE_RE.match(text):
        return (f"{_quoted(text)} is not a gin binding; write it as NAME=value "
                f"(for example {EXAMPLE_BINDING}).")
    return ""


def split_lines(text: str) -> list[str]:
    """``text`` cut at \\n, \\r\\n and \\r only: any other line-break character stays
    inside its line, where ``check_binding`` refuses it."""
    return re.split(r"\r\n|\r|\n", text)


def parse_overrides(text: str) -> tuple[list[str], list[str]]:
    """The gin bindings typed in ``text`` (one a line, stripped; blank lines and
    ``#`` comments skipped) and, for each other line, a sentence ``Line N: ...``."""
    bindings, errors = [], []
    for number, line in enumerate(split_lines(text or ""), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        problem = check_binding(line)
        if problem:
            errors.append(f"Line {number}: {_lower_first(problem)}")
        else:
            bindings.append(stripped)
    return bindings, errors


# -- the review page's warnings ---------------------------------------------------------------
def phase_1_warning(cfg: dict, phase_1: int | None) -> str:
    """Training stops before RAVE's adversarial phase 2 (``phase_1`` = its first step)."""
    steps = cfg["max_steps"]
    if not phase_1 or steps > phase_1:
        return ""
    shorter = max(1, steps // 2)
    knob = "PHASE_1_DURATION"    # some configs bind phase_1_duration directly: the macro does nothing
    if phase_1_duration(cfg["base_config"], cfg["modifiers"],
                        [*cfg["overrides"], f"{knob}={shorter}"]) != shorter:
        knob = "RAVE.phase_1_duration"
    return (f"Training stops after {steps:,} steps, before RAVE's adversarial phase 2 begins at step "
            f"{phase_1:,}: the model never gets the adversarial fine-tuning that makes it sound sharp. "
            f"Raise max steps above {phase_1:,}, or shorten phase 1 with an override such as "
            f"{knob}={shorter}.")


def device_warning(device: str, gpus: list[str], max_steps: int) -> str:
    """Training on the CPU (chosen, or because no GPU was found)."""
    if device in ("auto", "cpu") and not gpus:
        pace = format_rough_duration(max_steps / CPU_STEPS_PER_SECOND)
        return ("No GPU found: training runs on the CPU, which is very slow (about one step per second "
                "for v2_small at batch 2 on a 2-core CPU; "
                f"{max_steps:,} steps would take roughly {pace} at that pace).")
    if device == "cpu":
        return f"You chose the CPU although {len(gpus)} GPU(s) are present: training will be much slower."
    return ""


# NVML reports a board's memory a little under its label (what the driver and ECC
# keep: a "16 GB" T4 reports 15 360 MiB): a GPU is below RAVE's minimum when it has
# less than this share of it.
GPU_LABEL_SHARE = 0.9
GIB = 2**30


def chosen_gpu(device: str, gpus: list[str]) -> int | None:
    """The index of the GPU ``device`` trains on ('auto': GPU 0 when there is one);
    None for the CPU."""
    if device.startswith("gpu:"):
        return int(device[4:]) if device[4:].isdigit() else None
    if device == "auto" and gpus:
        return 0
    return None


def gpu_memory_warning(base_config: str, device: str, gpus: list[str], memory_totals: list[int] | None) -> str:
    """The chosen GPU of this computer has less memory than RAVE's README asks for
    ``base_config``. ``gpus`` are the GPUs' names (nvidia-smi), ``memory_totals`` their
    total memory in bytes (NVML, same order); when the two lists disagree, or a total
    is unknown, nothing is said. A warning, never a refusal: RAVE may still train."""
    need = min_gpu_memory_gb(base_config)
    index = chosen_gpu(device, gpus)
    if need is None or index is None or not memory_totals or len(memory_totals) != len(gpus) \
            or index >= len(gpus) or not memory_totals[index]:
        return ""
    gb = memory_totals[index] / GIB
    if gb >= need * GPU_LABEL_SHARE:
        return ""
    smaller = smaller_config(gb, base_config)
    advice = (f"choose a smaller config ({smaller} needs {min_gpu_memory_gb(smaller)} GB)" if smaller else
              "no config in RAVE's table fits it: train on the CPU instead")
    return (f"GPU {index} ({gpus[index]}) has {gb:.1f} GB of memory, less than the {need} GB RAVE asks for "
            f"{base_config}: {advice}, or expect the run to stop with a CUDA out-of-memory error, at once or "
            "when phase 2 starts (it needs more memory). A smaller batch size helps a little.")


def short_dataset_warning(num_samples: int, sample_rate: int | None, batch_size: int,
                          n_signal: int = N_SIGNAL) -> str:
    """The dataset is shorter than one batch: RAVE drops incomplete batches,
    so the run would have nothing to train on."""
    samples = max(0, int(num_samples or 0))
    examples, train = training_examples(samples, n_signal)
    if train >= batch_size:
        return ""
    sr = int(sample_rate or 44_100)
    advice = f"lower the batch size to {train} or add more audio" if train else "add more audio"
    return (f"The dataset is shorter than one batch: {samples:,} samples make {examples} training "
            f"example(s) of {n_signal:,} samples ({n_signal / sr:.1f} s each), RAVE keeps {TRAIN_PERCENT}% "
            f"for training and needs {batch_size} for one batch of {batch_size} (about "
            f"{batch_size * n_signal / sr:.0f} s of audio). RAVE drops incomplete batches, so the run "
            f"would have nothing to train on: {advice}.")


def validation_warning(val_every: int, max_steps: int) -> str:
    """No validation before the end: no checkpoint, nothing to export."""
    if val_every <= max_steps:
        return ""
    return (f"RAVE validates every {val_every:,} steps but the run stops after {max_steps:,}: "
            "it saves checkpoints only at validation, so the finished run would have no model to export.")


def dataset_folder_warning(path) -> str:
    """The dataset's folder lost its ``metadata.yaml`` (RAVE would stop at once)."""
    if not path or (Path(path) / "metadata.yaml").is_file():
        return ""
    return (f"The dataset folder {path} no longer holds metadata.yaml: RAVE would stop with "
            "an error. Register the dataset again.")


def compute_warnings(cfg: dict, dataset: dict, phase_1: int | None, gpus: list[str],
                     rave_missing: str = "") -> list[str]:
    """Every warning for this run, in the order the review page shows them.
    ``cfg`` is the wizard's config (max_steps, batch_size, val_every, device,
    base_config, modifiers, overrides), ``dataset`` its database row,
    ``phase_1`` the step phase 2 starts at (None when unknown), ``gpus`` the
    GPUs found, ``rave_missing`` the sentence saying ``rave`` was not found."""
    dataset = dataset or {}
    found = [
        phase_1_warning(cfg, phase_1),
        device_warning(cfg["device"], gpus, cfg["max_steps"]),
        short_dataset_warning(dataset.get("num_samples"), dataset.get("sample_rate"), cfg["batch_size"]),
        validation_warning(cfg["val_every"], cfg["max_steps"]),
        dataset_folder_warning(dataset.get("path")),
        rave_missing,
    ]
    return [w for w in found if w]
