"""Export from a chosen checkpoint (``model_export``, ``CheckpointExportProcess``'s
command), the fidelity preview, and the model scripts' command lines and output."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rave_gui.backend import model_tools
from rave_gui.backend.checkpoints import REMOTE_LISTING
from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.model_export import (BEST, LAST, checkpoint_options, fidelity_at, fidelity_preview,
                                           full_latent_size_of_run, rave_finds_config, rave_latent_size,
                                           rave_run_argument, resolve_checkpoint)
from rave_gui.backend.training import TrainingManager


def make_run(root: Path, files: list[tuple[str, int | None, float | None]], version: str = "version_0") -> Path:
    """A RAVE run folder whose checkpoints are written in the given order (oldest
    first, a second apart), each with the launcher's index entry."""
    run = root / "cello_0a1b2c3d4e"
    folder = run / version / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    (run / "config.gin").write_text("LATENT_SIZE = 128\nmodel.RAVE.latent_size = %LATENT_SIZE\n")
    base = time.time() - 100
    with open(folder / "rave-gui-index.jsonl", "a") as index:
        for i, (name, step, validation) in enumerate(files):
            path = folder / name
            path.write_bytes(b"\0" * 16)
            os.utime(path, (base + i, base + i))
            index.write(json.dumps({"file": name, "step": step, "validation": validation}) + "\n")
    return run


# -- which checkpoint --------------------------------------------------------------------------

def test_best_last_and_a_listed_checkpoint(tmp_path):
    # RAVE wrote best.ckpt at step 19, then the epoch checkpoint at 39 (the newest: RAVE's own choice)
    run = make_run(tmp_path, [("best.ckpt", 19, 3.5), ("epoch-epoch=0019.ckpt", 39, 4.1)])
    assert resolve_checkpoint(run, BEST)["file"] == "best.ckpt"
    assert resolve_checkpoint(run, LAST)["file"] == "epoch-epoch=0019.ckpt"
    assert resolve_checkpoint(run, None)["file"] == "epoch-epoch=0019.ckpt"
    listed = str(run / "version_0" / "checkpoints" / "best.ckpt")
    assert resolve_checkpoint(run, listed)["step"] == 19
    keys = [key for key, _label in checkpoint_options(run)]
    assert keys[:2] == [BEST, LAST] and len(keys) == 4
    labels = dict(checkpoint_options(run))
    assert "step 19" in labels[BEST] and "validation 3.5" in labels[BEST]
    assert "epoch-epoch=0019.ckpt" in labels[LAST] and "rave export --run" in labels[LAST]


def test_best_comes_from_the_newest_version(tmp_path):
    run = make_run(tmp_path, [("best.ckpt", 19, 3.5)])
    make_run(tmp_path, [("best.ckpt", 59, 2.5), ("stopped-step=61.ckpt", 61, None)], version="version_1")
    assert resolve_checkpoint(run, BEST)["version"] == "version_1"
    assert resolve_checkpoint(run, LAST)["file"] == "stopped-step=61.ckpt"


def test_choices_that_cannot_be_exported_say_why(tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(ValueError, match="no checkpoint"):
        resolve_checkpoint(empty, LAST)
    run = make_run(tmp_path, [("epoch-epoch=0009.ckpt", 9, 3.0)])
    with pytest.raises(ValueError, match="no best.ckpt"):
        resolve_checkpoint(run, BEST)
    with pytest.raises(ValueError, match="not a checkpoint of this run"):
        resolve_checkpoint(run, str(tmp_path / "elsewhere.ckpt"))


def test_a_remote_only_checkpoint_is_not_offered(tmp_path):
    run = tmp_path / "remote_run"
    folder = run / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / REMOTE_LISTING).write_text(json.dumps({"best.ckpt": [100, 1.0]}))
    assert checkpoint_options(run) == []
    with pytest.raises(ValueError, match="on the machine it trained on"):
        resolve_checkpoint(run, BEST)


def test_the_checkpoint_file_itself_is_passed_when_rave_finds_its_config(tmp_path):
    run = make_run(tmp_path, [("best.ckpt", 19, 3.5)])
    ckpt = run / "version_0" / "checkpoints" / "best.ckpt"
    assert rave_finds_config(ckpt)
    argument, scratch = rave_run_argument(ckpt, run, tmp_path / "scratch")
    assert argument == str(ckpt) and scratch is None and not (tmp_path / "scratch").exists()


def test_a_checkpoint_outside_the_run_layout_is_linked_into_a_scratch_run(tmp_path):
    run = make_run(tmp_path, [("best.ckpt", 19, 3.5)])
    loose = tmp_path / "saved" / "keep-this.ckpt"
    loose.parent.mkdir()
    loose.write_bytes(b"weights")
    assert not rave_finds_config(loose)
    argument, scratch = rave_run_argument(loose, run, tmp_path / "scratch")
    argument = Path(argument)
    assert scratch == tmp_path / "scratch"
    assert argument == scratch / run.name / "version_0" / "checkpoints" / "keep-this.ckpt"
    assert argument.read_bytes() == b"weights"                  # RAVE loads this file...
    assert (scratch / run.name / "config.gin").read_text() == (run / "config.gin").read_text()
    assert rave_finds_config(argument)                          # ...with the run's config


def test_the_export_command_passes_the_chosen_checkpoint(db, tmp_path, fake_dataset):
    from rave_gui.backend.model_export_process import CheckpointExportProcess
    from rave_gui.backend.models import apply_models_migration
    apply_models_migration(db)
    manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])
    dataset_id = DatasetManager(db).register(fake_dataset)
    exp_id = manager.start_training({"name": "cello", "dataset_id": dataset_id, "max_steps": 60})
    manager.set_status(exp_id, "failed")
    run = make_run(Path(manager.get_experiment(exp_id)["out_dir"]),
                   [("best.ckpt", 19, 3.5), ("epoch-epoch=0019.ckpt", 39, 4.1)])
    manager.set_run_dir(exp_id, run)
    for choice, name, ckpt in ((BEST, "cello_best", "best.ckpt"), (LAST, "cello", "epoch-epoch=0019.ckpt"),
                               (str(run / "version_0/checkpoints/epoch-epoch=0019.ckpt"), "cello_step39",
                                "epoch-epoch=0019.ckpt")):
        process = CheckpointExportProcess(manager, exp_id, checkpoint=choice, streaming=True)
        process.prepare()
        argv = process.build_command()
        assert argv[1] == "export" and argv[argv.index("--run") + 1].endswith("/checkpoints/" + ckpt)
        assert argv[argv.index("--name") + 1] == name and "--streaming" in argv
        assert process.path.name == f"{name}_streaming.ts"


# -- what the fidelity keeps ---------------------------------------------------------------------

HISTORY = {"fidelity_0.8": [(9, 1.0), (19, 2.0)], "fidelity_0.9": [(9, 3.0), (19, 4.0)],
           "fidelity_0.95": [(9, 5.0), (19, 9.0)], "fidelity_0.99": [(9, 20.0), (19, 30.0)],
           "val_loss": [(9, 3.0)]}


def test_rave_rounds_the_latent_size_up_to_a_power_of_two():
    assert [rave_latent_size(n) for n in (0, 1, 2, 3, 5, 8, 9, 127)] == [1, 1, 2, 4, 8, 8, 16, 128]


def test_fidelity_at_the_checkpoint_step():
    assert fidelity_at(HISTORY, 9) == {0.8: 1, 0.9: 3, 0.95: 5, 0.99: 20}
    assert fidelity_at(HISTORY, 15) == fidelity_at(HISTORY, 9)
    assert fidelity_at(HISTORY, None) == {0.8: 2, 0.9: 4, 0.95: 9, 0.99: 30}


def test_preview_of_a_logged_fidelity_is_exact():
    preview = fidelity_preview(HISTORY, 0.95, step=19)
    assert preview["exact"] and preview["low"] == preview["high"] == 16
    assert "keep 16 latent dimensions" in preview["sentence"] and "9 needed at step 19" in preview["sentence"]
    assert fidelity_preview(HISTORY, 0.95, step=9)["low"] == 8


def test_preview_between_logged_fidelities_is_a_range():
    preview = fidelity_preview(HISTORY, 0.93, step=19)
    assert not preview["exact"] and (preview["low"], preview["high"]) == (4, 16)
    assert "between 4 and 16" in preview["sentence"]
    high = fidelity_preview(HISTORY, 0.995, step=19, full_latent_size=128)
    assert (high["low"], high["high"]) == (32, 128)
    low = fidelity_preview(HISTORY, 0.5, step=19)
    assert (low["low"], low["high"]) == (1, 2)


def test_preview_without_fidelity_says_so():
    preview = fidelity_preview({"val_loss": [(9, 3.0)]}, 0.95)
    assert preview["low"] is None and "logged no fidelity" in preview["sentence"]


def test_full_latent_size_from_the_run_config(tmp_path):
    run = make_run(tmp_path, [])
    assert full_latent_size_of_run(run) == 128
    assert full_latent_size_of_run(tmp_path / "nothing") is None


# -- the scripts' command lines and output ----------------------------------------------------------

def test_try_command_passes_only_the_controls_that_move():
    argv = model_tools.try_command("m.ts", "in.wav", "out.wav", scale=[1.0, 1.0], bias=[0.0, 0.0],
                                   python="py", device="cpu")
    assert argv == ["py", str(model_tools.TRY_SCRIPT), "m.ts", "in.wav", "out.wav", "--device", "cpu"]
    argv = model_tools.try_command("m.ts", "in.wav", "out.wav", scale=[1.5, 1.0], bias=[0.0, -0.25],
                                   input_copy="a.wav", python="py")
    assert argv[-6:] == ["--scale", "1.5,1", "--bias", "0,-0.25", "--input-copy", "a.wav"]
    assert model_tools.check_command("m.ts", python="py") == ["py", str(model_tools.CHECK_SCRIPT), "m.ts"]


def test_progress_and_result_lines():
    assert model_tools.parse_progress("progress: 40 one second of noise") == (40, "one second of noise")
    assert model_tools.parse_progress("progress: x") is None and model_tools.parse_progress("Epoch 1") is None
    assert model_tools.parse_result('{"ok": true, "message": "Works."}') == {"ok": True, "message": "Works."}
    assert model_tools.parse_result('{"other": 1}') is None and model_tools.parse_result("{not json") is None


def test_a_script_that_printed_no_result_gets_a_sentence():
    assert "torch is not installed" in model_tools.no_result(
        ["ModuleNotFoundError: No module named 'torch'"], 1, "check")["message"]
    assert "signal 9" in model_tools.no_result([], -9, "try")["message"]
    result = model_tools.no_result(["boom"], 3, "check")
    assert result == {"ok": False, "message": "The check did not finish: it exited with code 3: boom."}


def test_the_scripts_import_nothing_from_the_app_and_no_torch_at_import():
    """They run with the interpreter of `rave`, which may not have the app installed."""
    import ast
    for script in (model_tools.CHECK_SCRIPT, model_tools.TRY_SCRIPT):
        tree = ast.parse(script.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom)}
        assert not any(str(name).startswith(("rave_gui", "torch", "numpy")) for name in names), names


def test_run_check_with_a_tiny_fake_script(tmp_path, python):
    """``run_check`` (the export thread's wait) reads progress and the JSON line, and can stop."""
    fake = tmp_path / "fake_check.py"
    fake.write_text("import json, sys, time\nprint('progress: 50 half', flush=True)\n"
                    "if sys.argv[1].endswith('slow.ts'):\n    time.sleep(60)\n"
                    "print(json.dumps({'ok': True, 'message': 'Works.', 'latent_size': 4}))\n")
    seen = []
    orig = model_tools.CHECK_SCRIPT
    model_tools.CHECK_SCRIPT = fake
    try:
        result = model_tools.run_check("fast.ts", python=python, on_progress=lambda p, w: seen.append((p, w)))
        assert result == {"ok": True, "message": "Works.", "latent_size": 4} and seen == [(50, "half")]
        started = time.monotonic()
        assert model_tools.run_check("slow.ts", python=python, should_stop=lambda: time.monotonic() - started > 1) \
            is None
        assert time.monotonic() - started < 30
    finally:
        model_tools.CHECK_SCRIPT = orig
