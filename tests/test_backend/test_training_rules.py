"""backend.training_rules: gin overrides and the review page's warnings (no Qt)."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rave_gui.backend.rave_catalogue import N_SIGNAL
from rave_gui.backend.training_rules import (
    CONTROL_RE, OVERRIDE_RE, check_binding, compute_warnings, dataset_folder_warning, device_warning,
    parse_overrides, phase_1_warning, short_dataset_warning, split_lines, validation_warning,
)

SETTINGS = settings(max_examples=300, deadline=None, database=None)
CONTROLS = [chr(c) for c in range(0x20) if c != 0x09] + ["\x7f"]


def is_control(c: str) -> bool:
    return (ord(c) < 0x20 and c != "\t") or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029"


def is_sentence(text: str) -> bool:
    return (isinstance(text, str) and len(text) > 10 and text.rstrip().endswith(".")
            and not any(is_control(c) for c in text))


# -- one binding ---------------------------------------------------------------------------
@pytest.mark.parametrize("binding", [
    "PHASE_1_DURATION=200000", "  rave.RAVE.n_channels = 1  ", "RAVE.phase_1_duration=%PHASE_1_DURATION",
    "scope/encoder.EncoderV2.latent_size=8", "A =\t1", "A=1\t2", "A=[1, 2, 3]", "A='text with spaces'",
])
def test_good_bindings_pass(binding):
    assert check_binding(binding) == ""
    assert OVERRIDE_RE.match(binding.strip()) and OVERRIDE_RE.fullmatch(binding.strip())


@pytest.mark.parametrize("binding, says", [
    ("not a binding", "'not a binding' is not a gin binding; write it as NAME=value"),
    ("=1", "is not a gin binding"),
    ("1A=2", "is not a gin binding"),
    ("A=", "is not a gin binding"),
    ("--override A=1", "Write only the binding, without --override."),
    ("", "The override is empty"),
    ("   ", "The override is empty"),
    (None, "Overrides are gin bindings written as text"),
    (42, "Overrides are gin bindings written as text"),
])
def test_bad_bindings_are_refused_with_a_sentence(binding, says):
    problem = check_binding(binding)
    assert says in problem and is_sentence(problem)


@pytest.mark.parametrize("char", CONTROLS)
def test_every_control_character_is_refused(char):
    for binding in (f"PHASE_1_DURATION=2000{char}00", f"PHASE_1_DURATION=200000{char}", f"{char}A=1"):
        problem = check_binding(binding)
        assert problem, repr(binding)
        assert ("control character" in problem or "line break" in problem) and is_sentence(problem)
        assert repr(char)[1:-1] in problem      # says which character, escaped
        assert not OVERRIDE_RE.match(binding)


def test_newline_inside_one_binding_is_refused():
    problem = check_binding("PHASE_1_DURATION=1\nRAVE.latent_size=4")
    assert "line break" in problem and "one binding per line" not in problem
    assert "put each binding on a line of its own" in problem
    assert check_binding("PHASE_1_DURATION=1\n")         # a trailing newline too


def test_nul_byte_refused_because_popen_cannot_take_it():
    binding = "PHASE_1_DURATION=200000\x00"
    with pytest.raises(ValueError, match="null"):    # what happened before the rule
        subprocess.run([sys.executable, "-c", "pass", binding])
    problem = check_binding(binding)
    assert "control character (\\x00)" in problem and "type the binding again" in problem


def test_accepted_bindings_reach_a_real_child_process_unchanged():
    bindings, errors = parse_overrides("PHASE_1_DURATION=200000\nA = 'é ü'\nB=1\t2\n")
    assert errors == []
    out = subprocess.run([sys.executable, "-c", "import sys; print(repr(sys.argv[1:]))", *bindings],
                         capture_output=True, text=True, check=True).stdout
    assert eval(out) == bindings   # noqa: S307 - our own child's repr


def test_old_regex_hole_is_closed():
    # `$` used to match before a final newline, so "A=1\n" passed OVERRIDE_RE.match
    assert not OVERRIDE_RE.match("A=1\n")
    assert not OVERRIDE_RE.match("A=1\x00")


# -- many lines ----------------------------------------------------------------------------
def test_parse_overrides_skips_blanks_and_comments_and_numbers_lines():
    text = "PHASE_1_DURATION=200000\n\n# a comment\n  rave.RAVE.n_channels = 1  \nnot a binding\n--override X=1\n"
    bindings, errors = parse_overrides(text)
    assert bindings == ["PHASE_1_DURATION=200000", "rave.RAVE.n_channels = 1"]
    assert errors == [
        "Line 5: 'not a binding' is not a gin binding; write it as NAME=value "
        "(for example PHASE_1_DURATION=200000).",
        "Line 6: write only the binding, without --override.",
    ]
    assert parse_overrides("") == ([], [])
    assert parse_overrides(None) == ([], [])


def test_parse_overrides_refuses_a_pasted_nul_with_its_line():
    bindings, errors = parse_overrides("A=1\r\nPHASE_1_DURATION=2\x00\rB=2")
    assert bindings == ["A=1", "B=2"]
    assert len(errors) == 1 and errors[0].startswith("Line 2: 'PHASE_1_DURATION=2\\x00' contains")
    assert is_sentence(errors[0])


def test_only_real_line_ends_split_lines():
    assert split_lines("a\r\nb\rc\nd\x0be\x85f\u2028g") == ["a", "b", "c", "d\x0be\x85f\u2028g"]
    bindings, errors = parse_overrides("A=1\x0bB=2")
    assert bindings == [] and "line break (\\x0b)" in errors[0]


# -- fuzzing ---------------------------------------------------------------------------------
NASTY = st.sampled_from(list("Aa_Z.9/=%#'\" \t-é\xa0") + CONTROLS + ["\x85", "\u2028", "\u2029", "\x9b"])
TEXT = st.one_of(st.text(), st.text(alphabet=NASTY), st.text(alphabet=st.characters(max_codepoint=0x200)))


def assert_clean_binding(binding: str) -> None:
    assert OVERRIDE_RE.fullmatch(binding), repr(binding)
    name, value = binding.split("=", 1)
    assert name.strip() and value.strip()
    assert not CONTROL_RE.search(binding)
    assert not any(is_control(c) for c in binding), repr(binding)
    assert "\x00" not in binding and "\n" not in binding


@SETTINGS
@given(TEXT)
def test_check_binding_refuses_with_a_sentence_or_accepts_a_clean_binding(text):
    problem = check_binding(text)
    if problem:
        assert is_sentence(problem), problem
    else:
        assert_clean_binding(text.strip())
        assert not any(is_control(c) for c in text)    # nothing stripped away was a control character


@SETTINGS
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}=[0-9A-Za-z%]{1,8}", fullmatch=True),
       st.sampled_from(CONTROLS + ["\x85", "\u2028", "\u2029"]), st.integers(0, 30))
def test_a_control_character_anywhere_is_refused(binding, char, where):
    where = min(where, len(binding))
    assert check_binding(binding) == ""
    assert check_binding(binding[:where] + char + binding[where:])


@SETTINGS
@given(TEXT)
def test_parse_overrides_never_returns_a_binding_popen_or_gin_would_choke_on(text):
    bindings, errors = parse_overrides(text)
    for binding in bindings:
        assert_clean_binding(binding)
        assert binding == binding.strip()
        assert check_binding(binding) == ""
    for error in errors:
        assert error.startswith("Line ") and is_sentence(error)
    lines = [line.strip() for line in split_lines(text)]
    meaningful = [line for line in lines if line and not line.startswith("#")]
    assert len(bindings) + len(errors) == len(meaningful)


# -- warnings ------------------------------------------------------------------------------
def cfg(**changes) -> dict:
    base = {"max_steps": 2_000_000, "batch_size": 8, "val_every": 10_000, "device": "auto",
            "base_config": "v2", "modifiers": [], "overrides": []}
    return {**base, **changes}


def test_phase_1_warning_names_the_knob_that_works():
    assert phase_1_warning(cfg(), 1_000_000) == ""
    assert phase_1_warning(cfg(max_steps=500_000), None) == ""
    text = phase_1_warning(cfg(max_steps=500_000), 1_000_000)
    assert "before RAVE's adversarial phase 2 begins at step 1,000,000" in text
    assert text.endswith("PHASE_1_DURATION=250000.")
    spherical = phase_1_warning(cfg(max_steps=150_000, modifiers=["spherical"]), 200_000)
    assert spherical.endswith("RAVE.phase_1_duration=75000.") and "rave.RAVE." not in spherical


def test_short_dataset_warning():
    samples = 1_310_720       # 10 examples of 131,072 samples, 9 for training
    assert short_dataset_warning(samples, 44_100, 8) == ""
    assert short_dataset_warning(samples, 44_100, 9) == ""
    text = short_dataset_warning(samples, 44_100, 16)
    assert text.startswith("The dataset is shorter than one batch: 1,310,720 samples make 10 training example(s)")
    assert "lower the batch size to 9" in text and f"{N_SIGNAL:,} samples (3.0 s each)" in text
    empty = short_dataset_warning(N_SIGNAL - 1, None, 1)
    assert empty.endswith("add more audio.") and "lower the batch size" not in empty
    assert short_dataset_warning(N_SIGNAL, 44_100, 1) == ""    # one example: RAVE keeps it for training


def test_device_validation_and_folder_warnings(tmp_path):
    assert device_warning("auto", ["H200"], 10) == "" and device_warning("gpu:0", ["H200"], 10) == ""
    cpu = device_warning("auto", [], 7_200)
    assert cpu.startswith("No GPU found: training runs on the CPU") and "roughly 2.0 hours" in cpu
    assert "although 2 GPU(s) are present" in device_warning("cpu", ["a", "b"], 10)
    assert validation_warning(10_000, 10_000) == ""
    assert "saves checkpoints only at validation" in validation_warning(10_000, 5_000)
    assert dataset_folder_warning(None) == ""
    assert "no longer holds metadata.yaml" in dataset_folder_warning(tmp_path)
    (tmp_path / "metadata.yaml").write_text("sr: 44100\n")
    assert dataset_folder_warning(tmp_path) == ""


def test_compute_warnings_in_order(tmp_path):
    dataset = {"num_samples": 1_310_720, "sample_rate": 44_100, "path": str(tmp_path)}
    (tmp_path / "metadata.yaml").write_text("sr: 44100\n")
    assert compute_warnings(cfg(), dataset, 1_000_000, ["H200"]) == []
    found = compute_warnings(cfg(max_steps=5_000, batch_size=16, device="cpu"), dataset, 1_000_000, [],
                             "The `rave` command was not found.")
    assert [w.split(" ")[0] for w in found] == ["Training", "No", "The", "RAVE", "The"]
    assert found[-1] == "The `rave` command was not found."
    assert all(is_sentence(w) for w in found)
    unknown = compute_warnings(cfg(), {}, None, ["H200"])        # no row: nothing to train on
    assert len(unknown) == 1 and unknown[0].startswith("The dataset is shorter than one batch: 0 samples")


# -- the chosen GPU's memory against RAVE's minimum -------------------------------------------
GIB = 2**30


def test_chosen_gpu_follows_the_device():
    from rave_gui.backend.training_rules import chosen_gpu
    assert chosen_gpu("gpu:1", ["a", "b"]) == 1
    assert chosen_gpu("auto", ["a", "b"]) == 0       # Auto uses GPU 0
    assert chosen_gpu("auto", []) is None and chosen_gpu("cpu", ["a"]) is None
    assert chosen_gpu("gpu:x", ["a"]) is None


def test_gpu_memory_warning_when_the_gpu_is_below_the_configs_minimum():
    from rave_gui.backend.training_rules import gpu_memory_warning
    gpus, totals = ["NVIDIA GeForce RTX 3060", "NVIDIA A100"], [12 * GIB, 80 * GIB]
    small = gpu_memory_warning("v2", "gpu:0", gpus, totals)
    assert small == ("GPU 0 (NVIDIA GeForce RTX 3060) has 12.0 GB of memory, less than the 16 GB RAVE asks "
                     "for v2: choose a smaller config (v2_small needs 8 GB), or expect the run to stop with a "
                     "CUDA out-of-memory error, at once or when phase 2 starts (it needs more memory). A smaller "
                     "batch size helps a little.")
    assert is_sentence(small)
    assert gpu_memory_warning("v2", "auto", gpus, totals) == small       # Auto takes GPU 0
    assert gpu_memory_warning("v2", "gpu:1", gpus, totals) == ""        # 80 GB is plenty
    assert gpu_memory_warning("v2_small", "gpu:0", gpus, totals) == ""  # 8 GB asked
    assert gpu_memory_warning("v3", "gpu:1", gpus, totals) == ""
    assert "less than the 32 GB RAVE asks for v3: choose a smaller config (v2 needs 16 GB)" in \
        gpu_memory_warning("v3", "gpu:0", ["RTX 4090"], [24 * GIB])
    tiny = gpu_memory_warning("v2", "gpu:0", ["GT 1030"], [2 * GIB])
    assert "no config in RAVE's table fits it: train on the CPU instead, or expect" in tiny and is_sentence(tiny)


def test_gpu_memory_warning_says_nothing_it_cannot_know():
    from rave_gui.backend.training_rules import gpu_memory_warning
    gpus, totals = ["T4"], [8 * GIB]
    assert gpu_memory_warning("v2", "cpu", gpus, totals) == ""              # not on a GPU
    assert gpu_memory_warning("discrete_v3", "gpu:0", gpus, totals) == ""   # not in RAVE's table
    assert gpu_memory_warning("v2", "gpu:0", gpus, None) == ""              # memory unknown
    assert gpu_memory_warning("v2", "gpu:0", gpus, []) == ""                # no NVML
    assert gpu_memory_warning("v2", "gpu:0", gpus, [8 * GIB, 8 * GIB]) == ""  # the lists disagree
    assert gpu_memory_warning("v2", "gpu:3", gpus, totals) == ""            # no such GPU
    assert gpu_memory_warning("v2", "gpu:0", gpus, [0]) == ""


@pytest.mark.parametrize("total, warned", [
    (15_843_721_216, False),   # a "16 GB" T4 as NVML reports it (15 360 MiB): labelled 16 GB, no warning
    (16 * GIB, False),
    (math.ceil(16 * GIB * 0.9), False),   # 90% of the label: the least that passes
    (math.floor(16 * GIB * 0.9), True),
    (12 * GIB, True),
])
def test_a_board_labelled_with_the_minimum_is_not_warned(total, warned):
    from rave_gui.backend.training_rules import gpu_memory_warning
    assert bool(gpu_memory_warning("v2", "gpu:0", ["GPU"], [total])) is warned
