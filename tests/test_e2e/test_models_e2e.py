"""The models library against REAL exported models: a 20-step v2_small CPU run
(validation every 10 steps), exported from chosen checkpoints by the real
``rave export``, checked by ``model_check`` with torch, heard through ``model_try``."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from audio import write_tone_wav  # tests/ helper

from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.model_export import BEST, FIDELITY_KEYS, fidelity_preview
from rave_gui.backend.model_export_process import CheckpointExportProcess
from rave_gui.backend.model_tool_process import ModelCheckProcess, ModelJobs
from rave_gui.backend.model_tools import CHECK_SCRIPT, TRY_SCRIPT, tool_python
from rave_gui.backend.models import ModelLibrary, apply_models_migration
from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager

pytestmark = pytest.mark.e2e


def pump(qapp, until, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        qapp.processEvents()
        time.sleep(0.05)


def run_thread(qapp, process, timeout: float = 600) -> tuple[bool, str]:
    done = []
    process.finished.connect(lambda ok, message: done.append((ok, message)))
    process.start()
    pump(qapp, lambda: bool(done), timeout, type(process).__name__)
    process.wait(10_000)
    qapp.processEvents()
    return done[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, rave_dataset, qapp):
    """A real 20-step run through the RunController (the launcher notes each
    checkpoint's step and validation loss), and its library."""
    from rave_gui.core.database import Database
    root = tmp_path_factory.mktemp("models_e2e")
    db = Database(root / "db.sqlite3")
    apply_models_migration(db)
    manager = TrainingManager(db)
    dataset_id = DatasetManager(db).register(rave_dataset)
    controller = RunController(manager)
    exp_id = manager.start_training(dict(base_config="v2_small", batch_size=2, device="cpu", val_every=10,
                                         max_steps=20, name="tiny", dataset_id=dataset_id))
    controller._launch(exp_id)
    process = controller.live_run(exp_id).process
    pump(qapp, lambda: not controller.is_live(exp_id), 900, "the 20-step run")
    process.wait(10_000)
    qapp.processEvents()
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "completed", exp["error"]
    yield manager, exp_id, ModelLibrary(db), root
    db.close()


@pytest.fixture(scope="module")
def best_export(trained, qapp):
    """``best.ckpt`` exported for streaming, checked right after."""
    manager, exp_id, library, root = trained
    process = CheckpointExportProcess(manager, exp_id, output_dir=root / "exports", streaming=True,
                                      fidelity=0.95, checkpoint=BEST)
    ok, message = run_thread(qapp, process)
    assert ok, message + "\n" + "\n".join(process.tail)
    return process


def test_export_of_the_best_checkpoint_passes_its_check(trained, best_export):
    manager, exp_id, library, root = trained
    process = best_export
    assert process.path == root / "exports" / "tiny_best_streaming.ts" and process.path.stat().st_size > 1e6
    assert "--run" in process.build_command() and any("model found" in line and "best.ckpt" in line
                                                      for line in process.tail)
    model = library.get(process.model_id)
    best = next(c for c in list_checkpoints(manager.get_experiment(exp_id)["run_dir"]) if c["best"])
    assert (model["checkpoint"], model["step"], model["validation"]) == ("best.ckpt", best["step"],
                                                                          best["validation"])
    assert model["step"] is not None and model["validation"] > 0
    assert model["status"] == "ok", model["check_message"]
    assert (model["sample_rate"], model["channels"], model["streaming"], model["full_latent_size"]) == (
        44100, 1, 1, 128)
    assert model["latent_size"] >= 1 and model["check_message"].startswith("Works")
    result = process.check_result
    assert [c["name"] for c in result["checks"]] == ["load", "methods", "silence", "noise", "consecutive buffers"]


def test_the_fidelity_preview_matches_what_rave_kept(trained, best_export):
    manager, exp_id, library, _root = trained
    model = library.get(best_export.model_id)
    history = manager.get_metric_history(exp_id, FIDELITY_KEYS)
    assert set(history) == set(FIDELITY_KEYS)        # logged at the validations before phase 2
    preview = fidelity_preview(history, 0.95, model["step"], 128)
    assert preview["exact"] and preview["low"] == model["latent_size"], (preview, history)


def test_export_of_a_listed_checkpoint_without_streaming(trained, best_export, qapp):
    manager, exp_id, library, root = trained
    epoch = next(c for c in list_checkpoints(manager.get_experiment(exp_id)["run_dir"]) if not c["best"])
    process = CheckpointExportProcess(manager, exp_id, output_dir=root / "exports", streaming=False,
                                      checkpoint=epoch["path"])
    ok, message = run_thread(qapp, process)
    assert ok, message
    model = library.get(process.model_id)
    assert process.path.name == f"tiny_step{epoch['step']}.ts" and model["checkpoint"] == epoch["file"]
    assert model["status"] == "ok" and model["streaming"] == 0 and "not a streaming export" in model["check_message"]
    assert len(library.ids()) == 2                   # the best export is still there, its own file


def test_check_script_reports_the_model_and_fails_corrupt_files_with_a_sentence(best_export, tmp_path):
    python = tool_python()
    out = subprocess.run([python, str(CHECK_SCRIPT), str(best_export.path)], capture_output=True, text=True,
                         timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0 and result["ok"] and result["sample_rate"] == 44100 and result["channels"] == 1
    assert {"forward", "encode", "decode"} <= set(result["methods"]) and result["streaming"] is True
    random_bytes = tmp_path / "random.ts"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(200_000))
    truncated = tmp_path / "truncated.ts"
    truncated.write_bytes(best_export.path.read_bytes()[: best_export.path.stat().st_size // 2])
    for path in (random_bytes, truncated):
        out = subprocess.run([python, "-m", "rave_gui.backend.model_check", str(path)], capture_output=True,
                             text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert out.returncode == 1 and result["ok"] is False
        assert "torch.jit.load could not open it" in result["message"] and result["message"].endswith(".")


def test_an_imported_copy_is_checked_and_a_truncated_one_is_broken(trained, best_export, qapp, tmp_path):
    _manager, _exp_id, library, _root = trained
    copy = tmp_path / "elsewhere" / "my model.ts"
    copy.parent.mkdir()
    shutil.copyfile(best_export.path, copy)
    cut = tmp_path / "elsewhere" / "cut.ts"
    cut.write_bytes(best_export.path.read_bytes()[:1_000_000])
    jobs = ModelJobs(library, work_dir=tmp_path / "tries")
    done = {}
    jobs.check_done.connect(lambda model_id, ok, message: done.__setitem__(model_id, (ok, message)))
    good, bad = library.import_file(copy), library.import_file(cut)
    jobs.verify(good)
    jobs.verify(bad)
    pump(qapp, lambda: len(done) == 2, 600, "the two checks")
    pump(qapp, lambda: not jobs._ending or not any(p.isRunning() for p in jobs._ending), 10, "threads")
    assert done[good][0] is True and library.get(good)["status"] == "ok"
    assert library.get(good)["latent_size"] == library.get(best_export.model_id)["latent_size"]
    assert done[bad][0] is False and library.get(bad)["status"] == "broken"
    assert "cut short" in library.get(bad)["check_message"]


def test_a_check_can_be_cancelled(best_export, qapp):
    process = ModelCheckProcess(best_export.path)
    process.progress.connect(lambda *_: process.stop())   # once it runs
    ok, message = run_thread(qapp, process)
    assert not ok and message == "The check was cancelled."


def test_try_writes_a_reconstruction_as_long_as_the_input(best_export, tmp_path):
    src = write_tone_wav(tmp_path / "voice.wav", seconds=2.5, sr=22050, channels=2)
    out, copy = tmp_path / "heard.wav", tmp_path / "as-heard.wav"
    proc = subprocess.run([tool_python(), str(TRY_SCRIPT), str(best_export.path), str(src), str(out),
                           "--scale", "1.5", "--bias", "0.5", "--device", "auto", "--input-copy", str(copy)],
                          capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], proc.stdout[-2000:] + proc.stderr[-2000:]
    assert any(line.startswith("progress: ") for line in lines)
    for path in (out, copy):
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels()) == (44100, 1)
            assert abs(w.getnframes() - int(2.5 * 44100)) <= 2048        # within one block
            frames = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert np.sqrt(np.mean((frames / 32767.0) ** 2)) > 1e-3          # not silent
    assert result["frames"] == int(2.5 * 44100) and result["device"] in ("cpu", "cuda")


def test_try_through_the_jobs_owner(trained, best_export, qapp, tmp_path):
    _manager, _exp_id, library, _root = trained
    jobs = ModelJobs(library, work_dir=tmp_path / "tries")
    done = []
    jobs.try_done.connect(lambda ok, message, result: done.append((ok, message, result)))
    jobs.try_model(best_export.model_id, write_tone_wav(tmp_path / "in.wav", seconds=1.0), device="cpu")
    with pytest.raises(ValueError, match="already running"):
        jobs.try_model(best_export.model_id, tmp_path / "in.wav")
    pump(qapp, lambda: bool(done), 600, "the try")
    jobs.stop_all()
    ok, message, result = done[0]
    assert ok, message
    assert Path(result["output"]).parent == tmp_path / "tries" and Path(result["input_copy"]).is_file()
