"""What the app knows about RAVE (acids-rave 2.3.1) beyond its command line:
what each config and modifier is for, which configs to offer, the numbers
``rave train`` uses that no flag shows (n_signal, the train/validation split,
the optimisers' learning rates, the minimum GPU memory each config needs).

Plain Python, no Qt. The lists of configs and modifiers themselves, and the
broken configs, stay in ``rave_cli`` (they shape the command line).
"""
from __future__ import annotations

from rave_gui.backend.rave_cli import BROKEN_CONFIGS, RAVE_CONFIGS, RAVE_DIS_LR, RAVE_GEN_LR, RAVE_MODIFIERS
from rave_gui.core.formatting import format_lr

# The configs and modifiers shown first; the rest stay one click away.
BASE_CONFIGS = ("v1", "v2", "v3", "discrete")
MAIN_MODIFIERS = ("causal", "snake", "noise")

CONFIG_HELP = {
    "v1": "The original RAVE (2021).",
    "v2": "RAVE v2: the recommended starting point.",
    "v3": "v2 with adaptive instance normalisation, snake activations and the Descript discriminator.",
    "discrete": "A discrete (quantised) latent space, for use with a prior; phase 1 lasts 200 000 steps.",
    "v2_small": "A smaller v2: faster, for small datasets or testing.",
    "v2_nopqmf": "v2 without the PQMF filter bank.",
    "v2_nopqmf_small": "Does not load in acids-rave 2.3.1 (its gin file fails to parse): use v2_small.",
    "discrete_v3": "discrete with snake activations and the Descript discriminator.",
    "raspberry": "A light config for the Raspberry Pi.",
    "onnx": "A config whose model exports to ONNX.",
}
MODIFIER_HELP = {
    "causal": "Causal convolutions: lower latency for real-time use, slightly lower quality.",
    "snake": "Snake (periodic) activations in the encoder and generator.",
    "noise": "Adds a noise generator to the decoder: helps noisy and percussive sounds.",
    "adain": "Adaptive instance normalisation in the encoder and generator.",
    "descript_discriminator": "Uses the Descript audio codec's discriminator.",
    "spectral_discriminator": "Adds a multi-scale spectral discriminator.",
    "spherical": "A spherical latent space (16 dimensions); phase 1 lasts 200 000 steps.",
    "wasserstein": "A Wasserstein (noise-augmented) encoder, 16 latents; phase 1 lasts 200 000 steps.",
    "hybrid": "A mel-spectrogram encoder with a recurrent generator (includes v2 again).",
    "normalize_ambient": "Compresses the training audio (dynamic range augmentation).",
}

# `rave train --n_signal` (default 131072): samples per training example. It is a
# flag of `rave train`, not a gin binding: no shipped config changes it.
N_SIGNAL = 131_072
# `rave train` keeps this percentage of the examples for training
# (rave.dataset.split_dataset(dataset, 98): at least one), the rest for validation.
TRAIN_PERCENT = 98
# RAVE's README: the least GPU memory (GB, as GPU makers label their boards) each config
# trains with. Phase 2 (adversarial) needs more than phase 1. The other configs
# (v2_nopqmf, discrete_v3, ...) are not in RAVE's table: nothing is said about them.
MIN_GPU_MEMORY_GB = {"v1": 8, "v2": 16, "v2_small": 8, "v3": 32, "discrete": 18, "onnx": 6, "raspberry": 5}
# What to suggest when a GPU is too small for the chosen config, most demanding first:
# general-purpose configs (discrete is for a prior, onnx for an ONNX export).
SMALLER_CONFIGS = ("v2", "v2_small", "raspberry")
# Measured: v2_small at batch 2 on a 2-core CPU runs about one step a second.
CPU_STEPS_PER_SECOND = 1.0


def offered_configs() -> tuple[list[str], list[str]]:
    """The base configs to show first and the others, both without the
    configs that do not load (``rave_cli.BROKEN_CONFIGS``)."""
    usable = [c for c in RAVE_CONFIGS if c not in BROKEN_CONFIGS]
    first = [c for c in BASE_CONFIGS if c in usable]
    return first, [c for c in usable if c not in BASE_CONFIGS]


def main_and_more_modifiers() -> tuple[list[str], list[str]]:
    """The modifiers to show first and the others, in ``RAVE_MODIFIERS`` order."""
    first = [m for m in MAIN_MODIFIERS if m in RAVE_MODIFIERS]
    return first, [m for m in RAVE_MODIFIERS if m not in MAIN_MODIFIERS]


def config_help(name: str) -> str:
    """One sentence on what a config is for ('' for an unknown one)."""
    return BROKEN_CONFIGS.get(name) or CONFIG_HELP.get(name, "")


def modifier_help(name: str) -> str:
    """One sentence on what a modifier does ('' for an unknown one)."""
    return MODIFIER_HELP.get(name, "")


def min_gpu_memory_gb(base_config: str) -> int | None:
    """The GPU memory (GB) RAVE's README asks for ``base_config``; None when its table
    does not list it."""
    return MIN_GPU_MEMORY_GB.get(base_config)


def smaller_config(gb: float, base_config: str) -> str | None:
    """The config to suggest instead of ``base_config`` on a GPU of ``gb`` GB: the most
    demanding of ``SMALLER_CONFIGS`` that fits and needs less; None when none does."""
    need = MIN_GPU_MEMORY_GB.get(base_config)
    for name in SMALLER_CONFIGS:
        least = MIN_GPU_MEMORY_GB[name]
        if name != base_config and least <= gb and (need is None or least < need):
            return name
    return None


def training_examples(num_samples: int, n_signal: int = N_SIGNAL) -> tuple[int, int]:
    """(examples, training examples) ``rave train`` makes of a dataset of
    ``num_samples`` samples: whole ``n_signal`` chunks, 98% of them for training."""
    examples = max(0, int(num_samples or 0)) // n_signal
    train = max(examples * TRAIN_PERCENT // 100, 1) if examples else 0
    return examples, train


def learning_rate_schedule() -> str:
    """The optimisers RAVE's code fixes, in words (no flag or gin binding sets them)."""
    gen_start, gen_end = RAVE_GEN_LR
    return (f"Adam, {format_lr(gen_start)} for the generator, decaying linearly to {format_lr(gen_end)} "
            f"over phase 1; {format_lr(RAVE_DIS_LR)} for the discriminator")


def learning_rate_summary() -> str:
    """What the review page says under "Learning rate"."""
    return f"set by RAVE's code ({learning_rate_schedule()})"


def learning_rate_field() -> str:
    """The short text of the (read-only) learning-rate field: the generator's schedule."""
    gen_start, gen_end = RAVE_GEN_LR
    return f"{format_lr(gen_start)} \u2192 {format_lr(gen_end)} (set by RAVE)"
