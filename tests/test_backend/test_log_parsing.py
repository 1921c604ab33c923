"""Parsing what RAVE, Lightning and tqdm print (rave_gui.backend.log_parsing),
checked on many formats and on every line of the real logs in fixtures/rave."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from rave_gui.backend import training
from rave_gui.backend.log_parsing import (
    explain_failure, parse_fit_end, parse_metrics, parse_preprocess_line, parse_progress_line,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rave"
LOGS = sorted(FIXTURES.glob("*.log"))


def log_lines(path: Path) -> list[str]:
    """The lines of a log as a terminal would show them: tqdm separates with \\r."""
    return re.split(r"[\r\n]", path.read_text(encoding="utf-8"))


ALL_LINES = [(path.name, line) for path in LOGS for line in log_lines(path)]


def test_fixture_logs_are_there():
    assert {p.name for p in LOGS} >= {"rave_train_smoke_v2small_cpu.log", "rave_train_sigint.log",
                                      "rave_train_missing_db.log", "rave_train_channels0_crash.log"}
    assert len(ALL_LINES) > 500


# -- parse_metrics: formats ----------------------------------------------------------------------
@pytest.mark.parametrize("line, expected", [
    # key=value
    ("loss=0.5", {"loss": 0.5}),
    ("step=120 loss=0.25 lr=0.001", {"step": 120, "loss": 0.25, "lr": 0.001}),
    ("val_loss=1.5", {"val_loss": 1.5}),
    ("epoch=3", {"epoch": 3}),
    ("global_step=42", {"step": 42}),
    ("learning_rate=0.0003", {"lr": 0.0003}),
    # key: value
    ("loss: 0.123", {"loss": 0.123}),
    ("Validation loss: 2.5", {"val_loss": 2.5}),
    ("validation: 29.81", {"val_loss": 29.81}),
    ("LR: 1e-3", {"lr": 0.001}),
    ("Epoch: 7, Step: 700", {"epoch": 7, "step": 700}),
    # key value
    ("loss 0.75", {"loss": 0.75}),
    ("val loss 0.3", {"val_loss": 0.3}),
    ("validation loss 0.31", {"val_loss": 0.31}),
    ("learning rate 2e-4", {"lr": 0.0002}),
    ("step 120/500000", {"step": 120}),
    ("Epoch 3", {"epoch": 3}),
    ("global step 9", {"step": 9}),
    # scientific notation, signs, case, spacing
    ("loss=1e-4", {"loss": 1e-4}),
    ("loss=2.5E+03", {"loss": 2500.0}),
    ("loss=-3.1e-05", {"loss": -3.1e-05}),
    ("loss=+4.0", {"loss": 4.0}),
    ("loss=.5", {"loss": 0.5}),
    ("LOSS = 7", {"loss": 7.0}),
    ("Val_Loss:0.01", {"val_loss": 0.01}),
    ("lr=5.E-4", {"lr": 5e-4}),
    ("step=1e3", {"step": 1000}),
    ("the loss is now loss 0.5.", {"loss": 0.5}),          # a sentence's full stop
    ("[step=10, loss=2.0, val_loss=3.0, lr=1e-3, epoch=1]",
     {"step": 10, "loss": 2.0, "val_loss": 3.0, "lr": 1e-3, "epoch": 1}),
    ("step: 5 | loss: 0.5 | lr: 0.001", {"step": 5, "loss": 0.5, "lr": 0.001}),
    ("loss=0.5, loss=0.7", {"loss": 0.5}),                 # the first value wins
    # the launcher's own lines
    ("[rave-gui] step=1/60", {"step": 1}),
    ("[rave-gui] step=500000/500000", {"step": 500_000}),
    ("[rave-gui] checkpoint=/runs/3/x_abc/version_0/checkpoints/stopped-step=12.ckpt step=12", {"step": 12}),
    ("[rave-gui] saved epoch-epoch=0003.ckpt at step=120", {"step": 120}),
    ("[rave-gui] stop requested: saving a checkpoint at the end of this step", {}),
])
def test_parse_metrics_formats(line, expected):
    result = parse_metrics(line)
    assert result == pytest.approx(expected) and set(result) == set(expected)
    for key in ("step", "epoch"):
        if key in result:
            assert type(result[key]) is int
    for key in ("loss", "val_loss", "lr"):
        if key in result:
            assert type(result[key]) is float


@pytest.mark.parametrize("line", [
    "",
    "no metrics here",
    "loss",                                  # no value
    "loss=nan", "loss=inf",                  # not numbers the app can plot
    "train_loss=0.5",                        # another metric that ends in 'loss'
    "my_lr=0.1", "slr 0.3", "flow 3",        # names that only end like ours
    "max_steps=6", "log_every_n_steps=50",   # flags, not the step
    "steps=6",
    "loss_dis=0.3",                          # a discriminator term, not the loss
    "lr-Adam=0.001",
    "epoch=1.5", "step=-3", "step=2.5",      # not a step/epoch count
    "loss=1.2.3",                            # a version, not a number
    "Validation:   0%|          | 0/1 [00:00<?, ?it/s]",
    "Validation: 100%|██████████| 1/1 [00:00<00:00,  8.87it/s]",
    "'validation': 3",                       # a quoted key (profiler, dict reprs)
    "epoch-epoch=0003.ckpt",
    "stopped-step=12.ckpt",
    "path/to/step 5/x",
])
def test_parse_metrics_finds_nothing(line):
    assert parse_metrics(line) == {}


@pytest.mark.parametrize("line", [
    "Traceback (most recent call last):",
    '  File "/x/rave/model.py", line 188, in training_step 5',
    '  File "/x/step 5/train.py", line 3, in main',
    "ValueError: loss 3.5 is not finite",
    "RuntimeError: step 12 failed: epoch 3",
    "torch.cuda.OutOfMemoryError: CUDA out of memory at step 4",
    "KeyboardInterrupt",
    "During handling of the above exception, another exception occurred: step 3",
    "|  [Callback]ModelCheckpoint{'monitor': 'validation'}.on_train_epoch_end  |  step 3  |  6  |",
    "|  Action   |  Mean duration (s)   |  loss 5  |",
])
def test_no_metrics_from_tracebacks_exceptions_or_tables(line):
    # each of these names a metric and a number, but is not a metric line
    assert parse_metrics(line) == {}


def test_parse_metrics_is_the_one_training_exports():
    assert training.parse_metrics is parse_metrics
    assert training.parse_metrics("step=3") == {"step": 3}


# -- parse_metrics on every line of the real logs -------------------------------------------------
TRACEBACK_OR_EXCEPTION = re.compile(
    r"^(Traceback|  File |\s+\^+\s*$|[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b)")
PROFILER = re.compile(r"\|.*(\[(Callback|LightningModule|Strategy)\]|Action)")
BAR = re.compile(r"^(\s*)Epoch (\d+):\s*\d+%\|")


def test_no_line_of_the_real_logs_gives_an_unstated_metric():
    epochs_seen = 0
    for name, line in ALL_LINES:
        found = parse_metrics(line)
        if TRACEBACK_OR_EXCEPTION.match(line) or PROFILER.search(line):
            assert found == {}, (name, line)
            continue
        bar = BAR.match(line)
        if bar:
            assert found == {"epoch": int(bar.group(2))}, (name, line)
            epochs_seen += 1
            continue
        # no other line of these logs states a metric: RAVE prints none (they live in the event files)
        assert found == {}, (name, line)
    assert epochs_seen > 100


def test_real_logs_have_traceback_profiler_and_bar_lines_to_check():
    # the test above is only worth something if the logs hold those lines
    kinds = {"traceback": 0, "profiler": 0, "bar": 0, "validation_bar": 0}
    for _, line in ALL_LINES:
        kinds["traceback"] += bool(TRACEBACK_OR_EXCEPTION.match(line))
        kinds["profiler"] += bool(PROFILER.search(line))
        kinds["bar"] += bool(BAR.match(line))
        kinds["validation_bar"] += line.startswith("Validation:") and "%|" in line
    assert all(count > 3 for count in kinds.values()), kinds


@pytest.mark.parametrize("name", [p.name for p in LOGS])
def test_every_fixture_log_gives_only_epochs(name):
    keys = set()
    for line in log_lines(FIXTURES / name):
        keys |= set(parse_metrics(line))
    # RAVE prints no loss, validation loss, learning rate or step: they live in the event files
    assert keys <= {"epoch"}


def test_bar_with_launcher_line_appended():
    line = "Epoch 0:  33%|███▎      | 1/3 [00:01<00:02,  1.12s/it, v_num=0][rave-gui] step=1/60"
    bar, marker, ours = line.partition("[rave-gui]")   # what TrainingProcess does
    assert marker
    assert parse_metrics(ours) == {"step": 1}
    assert parse_metrics(bar) == {"epoch": 0}
    assert parse_progress_line(bar) == {"phase": "train", "epoch": 0, "percent": 33, "current": 1, "total": 3}


# -- progress bars ------------------------------------------------------------------------------------
@pytest.mark.parametrize("line, expected", [
    ("Epoch 2:  67%|██████▋   | 2/3 [00:02<00:01,  1.40it/s, v_num=0]",
     {"phase": "train", "epoch": 2, "percent": 67, "current": 2, "total": 3}),
    ("Epoch 0:  33%|███▎      | 1/3 [00:01<00:02,  1.12s/it]",
     {"phase": "train", "epoch": 0, "percent": 33, "current": 1, "total": 3}),
    ("Epoch 10: 100%|██████████| 2/2 [00:01<00:00,  1.18it/s, v_num=0]",
     {"phase": "train", "epoch": 10, "percent": 100, "current": 2, "total": 2}),
    ("Epoch 11:   0%|          | 0/3 [00:00<?, ?it/s, v_num=0]        ",
     {"phase": "train", "epoch": 11, "percent": 0, "current": 0, "total": 3}),
    ("Epoch 3:  45%|████▌     | 120/266 [00:12<00:14, 10.1it/s, v_num=2]",
     {"phase": "train", "epoch": 3, "percent": 45, "current": 120, "total": 266}),
    ("Validation:   0%|          | 0/1 [00:00<?, ?it/s]\x1b[A",
     {"phase": "validation", "epoch": None, "percent": 0, "current": 0, "total": 1}),
    ("Validation DataLoader 0: 100%|██████████| 1/1 [00:00<00:00,  8.87it/s]\x1b[A",
     {"phase": "validation", "epoch": None, "percent": 100, "current": 1, "total": 1}),
    ("Sanity Checking DataLoader 0: 100%|██████████| 1/1 [00:00<00:00,  5.25it/s]Computing receptive field",
     {"phase": "sanity", "epoch": None, "percent": 100, "current": 1, "total": 1}),
    ("Sanity Checking:   0%|          | 0/1 [00:00<?, ?it/s]",
     {"phase": "sanity", "epoch": None, "percent": 0, "current": 0, "total": 1}),
    ("Training:   0%|          | 0/3 [00:00<?, ?it/s]",
     {"phase": "training", "epoch": None, "percent": 0, "current": 0, "total": 3}),
])
def test_progress_bars(line, expected):
    assert parse_progress_line(line) == expected


@pytest.mark.parametrize("line", [
    "", "Sanity Checking: 0it [00:00, ?it/s]", "Validation: 0it [00:00, ?it/s]\x1b[A",
    "Training: 0it [00:00, ?it/s]", "train set: 5 examples", "selected gpu: 0",
    "                                                                      \x1b[A",
    "`Trainer.fit` stopped: `max_steps=6` reached.", "[rave-gui] step=1/60", "loss=0.5",
    "|  run_training_epoch  |  2.2007  |  3  |  6.6022  |  62.632  |",
    "Traceback (most recent call last):",
])
def test_non_bar_lines_are_not_progress(line):
    assert parse_progress_line(line) is None


def test_every_bar_line_of_the_smoke_log_parses():
    lines = log_lines(FIXTURES / "rave_train_smoke_v2small_cpu.log")
    bars = [parse_progress_line(line) for line in lines if re.match(r"^(Epoch \d+|Validation|Sanity Checking)"
                                                                   r"(?: DataLoader \d+)?:\s*\d+%\|", line)]
    assert len(bars) > 30 and all(b is not None for b in bars)
    train = [b for b in bars if b["phase"] == "train"]
    assert {b["epoch"] for b in train} == {0, 1, 2}
    assert all(0 <= b["current"] <= b["total"] and b["percent"] == round(100 * b["current"] / b["total"])
               for b in train)
    # every line that is not a bar gives None
    others = [line for line in lines if "%|" not in line]
    assert others and all(parse_progress_line(line) is None for line in others)


# -- preprocess and fit end ---------------------------------------------------------------------------
@pytest.mark.parametrize("line, seconds", [
    ("dataset length: 0:00:29.72", 29.72),
    ("  0%|          | 0/3 [00:00<?, ?it/s]dataset length: 0:01:05", 65.0),
    ("dataset length: 2:03:04.5", 2 * 3600 + 3 * 60 + 4.5),
    ("dataset length: 1 day, 0:00:01", 86401.0),
    ("dataset length: 3 days, 1:00:00", 3 * 86400 + 3600.0),
])
def test_preprocess_length(line, seconds):
    assert parse_preprocess_line(line) == pytest.approx(seconds)


@pytest.mark.parametrize("line", ["", "dataset length:", "length: 0:00:29.72", "Epoch 1:  50%|█| 1/2"])
def test_preprocess_length_absent(line):
    assert parse_preprocess_line(line) is None


def test_fit_end():
    assert parse_fit_end("`Trainer.fit` stopped: `max_steps=6` reached.") == 6
    smoke = log_lines(FIXTURES / "rave_train_smoke_v2small_cpu.log")
    assert [parse_fit_end(line) for line in smoke if parse_fit_end(line) is not None] == [6]
    for name in ("rave_train_sigint.log", "rave_train_missing_db.log", "rave_train_channels0_crash.log"):
        assert all(parse_fit_end(line) is None for line in log_lines(FIXTURES / name)), name
    assert parse_fit_end("max_steps=6 reached") is None


# -- explaining failures ----------------------------------------------------------------------------
def tail(name: str, n: int = 200) -> list[str]:
    return [line for line in log_lines(FIXTURES / name) if line.strip()][-n:]


def test_missing_dataset_is_explained():
    message = explain_failure(tail("rave_train_missing_db.log"), 1)
    assert "dataset" in message.lower()
    assert "data/nonexistent" in message
    assert "Traceback" not in message and "\n" not in message


def test_channels_crash_is_explained():
    message = explain_failure(tail("rave_train_channels0_crash.log"), 1)
    assert "channel" in message.lower()
    assert "metadata.yaml" in message


def test_explain_failure_fallbacks():
    assert "signal 9" in explain_failure(["something"], -9)
    assert explain_failure(["Traceback (most recent call last):", '  File "x.py", line 1',
                            "ZeroDivisionError: division by zero"], 1) == \
        "RAVE stopped with ZeroDivisionError: division by zero. See the log for details."
    assert explain_failure([], 3) == "RAVE exited with code 3. See the log for details."
    assert "ran out of memory" in explain_failure(["torch.cuda.OutOfMemoryError: CUDA out of memory."], 1)
    assert "disk is full" in explain_failure(["OSError: [Errno 28] No space left on device"], 1)


# the last lines `rave train` (acids-rave 2.3.1) printed for three gin errors, measured
GIN_FRAME = ('  File "/v/lib/python3.11/site-packages/gin/config.py", line 648, in _raise_unknown_configurable_error\n'
             "    raise ValueError(f\"No configurable matching '{selector}'.\")")
UNKNOWN_OVERRIDE_TAIL = (GIN_FRAME + "\nValueError: No configurable matching 'blocks.Foo'.\n"
                         "  In bindings string line 1\n    blocks.Foo.bar=1").splitlines()
RAVE_DOT_RAVE_TAIL = (GIN_FRAME + "\nValueError: No configurable matching 'rave.RAVE'.\n"
                      "  In bindings string line 1\n    rave.RAVE.phase_1_duration=100").splitlines()
MISSING_GIN_TAIL = [
    '  File "/v/lib/python3.11/site-packages/gin/config.py", line 2457, in parse_config_file',
    "    raise IOError(err_str.format(config_file, prefixes))",
    "OSError: Unable to open file: nosuch.gin. Searched config paths: ['', "
    "PosixPath('/v/lib/python3.11/site-packages/rave'), PosixPath('/v/lib/python3.11/site-packages/rave/configs')].",
]
BROKEN_CONFIG_TAIL = [
    "ValueError: Configurable 'transforms.Compress' doesn't have a parameter named 'amp_range'.",
    '  In file "/v/lib/python3.11/site-packages/rave/configs/v2_nopqmf_small.gin", line 40',
    "        amp_range = [-60,-10]",
    "        ^",
]


@pytest.mark.parametrize("lines, expected", [
    (UNKNOWN_OVERRIDE_TAIL, "RAVE did not accept the configuration: No configurable matching 'blocks.Foo'. "
                            "Check the config, modifiers and overrides."),
    (MISSING_GIN_TAIL, "RAVE did not accept the configuration: Unable to open file: nosuch.gin. "
                       "Check the config, modifiers and overrides."),
    (BROKEN_CONFIG_TAIL, "RAVE did not accept the configuration: Configurable 'transforms.Compress' doesn't have "
                         "a parameter named 'amp_range'. Check the config, modifiers and overrides."),
])
def test_gin_errors_are_explained_from_the_exception_line(lines, expected):
    # not from gin's own source line shown in the traceback ("... '{selector}'.")")
    assert explain_failure(lines, 1) == expected


def test_rave_dot_rave_override_is_explained():
    message = explain_failure(RAVE_DOT_RAVE_TAIL, 1)
    assert "rave.RAVE" in message and "RAVE.phase_1_duration=" in message
    assert "{selector}" not in message


def test_the_log_tab_drops_escapes_and_the_launchers_step_lines():
    from rave_gui.backend.log_parsing import strip_progress
    assert strip_progress("[rave-gui:ab12] step=5/40") == ""
    assert strip_progress("[rave-gui] step=5/40") == ""
    assert strip_progress("\x1b[A\x1b[2K\x1b[32mValidation done\x1b[0m") == "Validation done"
    assert strip_progress("[rave-gui:ab12] saved best.ckpt at step=19") == "[rave-gui:ab12] saved best.ckpt at step=19"
    assert strip_progress("run named step=5/40") == "run named step=5/40"


def test_a_dataset_shorter_than_a_batch_is_explained():
    from rave_gui.backend.log_parsing import explain_failure
    tail = ['  File "scripts/train.py", line 194, in main', "    nepoch = FLAGS.val_every // len(train)",
            "ZeroDivisionError: integer division or modulo by zero"]
    assert "fewer training examples than one batch" in explain_failure(tail, 1)
