"""Registering a dataset whose metadata.yaml or folder is odd: every case is a
ValueError with a sentence, and nothing reaches the database (an OverflowError or
OSError here used to end the app). Also the siblings: the preprocess checks, what
the preprocess thread reads, and a run's checkpoint list."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rave_gui.backend.checkpoints import delete_checkpoint, list_checkpoints
from rave_gui.backend.datasets import DatasetManager, read_metadata
from rave_gui.backend.preprocess import PreprocessPlan, check_preprocess_inputs
from rave_gui.backend.preprocess_process import PreprocessProcess


@pytest.fixture
def datasets(db) -> DatasetManager:
    return DatasetManager(db)


def count(db) -> int:
    return db.query_one("SELECT count(*) FROM datasets")[0]


def assert_refused(datasets, db, folder, *words: str, name=None) -> str:
    with pytest.raises(ValueError) as info:
        datasets.register(folder, name=name)
    assert type(info.value) is ValueError  # not an OverflowError, not a DatabaseError
    message = str(info.value)
    assert message.endswith(".") and not message[0].islower(), message
    for word in words:
        assert word in message, message
    assert count(db) == 0
    return message


GOOD = {"channels": "1", "sr": "44100", "n_seconds": "29.7", "lazy": "false"}


def metadata(**changes: str) -> str:
    values = {**GOOD, **changes}
    return "".join(f"{key}: {value}\n" for key, value in values.items() if value is not None)


@pytest.mark.parametrize("changes, word", [
    ({"n_seconds": ".inf"}, "n_seconds: inf"),
    ({"n_seconds": "-.inf"}, "n_seconds: -inf"),
    ({"n_seconds": ".nan"}, "n_seconds: nan"),
    ({"n_seconds": "nan"}, "n_seconds: 'nan'"),
    ({"n_seconds": "1e20"}, "n_seconds: '1e20'"),  # YAML 1.1 reads it as text
    ({"n_seconds": "1.0e+20"}, "n_seconds: 1e+20"),
    ({"n_seconds": "-3"}, "n_seconds: -3"),
    ({"n_seconds": "'29.7'"}, "n_seconds: '29.7'"),
    ({"n_seconds": "true"}, "n_seconds: True"),
    ({"n_seconds": "[1, 2]"}, "n_seconds: [1, 2]"),
    ({"n_seconds": "9" * 400}, "n_seconds: 999"),
    ({"channels": "2.7"}, "channels: 2.7"),
    ({"channels": "true"}, "channels: True"),
    ({"channels": "0"}, "channels: 0"),
    ({"channels": "65"}, "channels: 65"),
    ({"channels": "-1"}, "channels: -1"),
    ({"channels": "'2'"}, "channels: '2'"),
    ({"channels": "{a: 1}"}, "channels: {'a': 1}"),
    ({"channels": None}, "no channels"),
    ({"sr": "1.0e+30"}, "sr: 1e+30"),
    ({"sr": "1" + "0" * 40}, "sr: 1000"),
    ({"sr": ".inf"}, "sr: inf"),
    ({"sr": "44100.5"}, "sr: 44100.5"),
    ({"sr": "1000001"}, "sr: 1000001"),
    ({"sr": "forty-four k"}, "sr: 'forty-four k'"),
    ({"sr": None}, "no sr"),
    ({"lazy": "'no'"}, "lazy: 'no'"),
    ({"lazy": "3"}, "lazy: 3"),
])
def test_odd_values_are_refused_with_a_sentence(datasets, db, fake_dataset, changes, word):
    (fake_dataset / "metadata.yaml").write_text(metadata(**changes))
    message = assert_refused(datasets, db, fake_dataset, word, "Preprocess the audio again")
    assert str(fake_dataset) in message


@pytest.mark.parametrize("text, word", [
    ("- channels: 1\n- sr: 44100\n", "holds a list"),
    ("42\n", "holds a int"),
    ("just text\n", "holds a str"),
    ("sr: " + "1" * 5000 + "\n", "unreadable"),  # past Python's int digit limit
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "unreadable"),  # deeper than the parser goes
    ("? [a, b]\n: c\n", "unreadable"),  # a list as a key
    ("when: 2001-13-45\n", "unreadable"),  # a date that is not one
])
def test_documents_that_are_not_settings_are_refused(datasets, db, fake_dataset, text, word):
    (fake_dataset / "metadata.yaml").write_text(text)
    assert_refused(datasets, db, fake_dataset, word)


def test_whole_numbers_written_as_floats_are_fine(datasets, fake_dataset):
    (fake_dataset / "metadata.yaml").write_text(metadata(channels="2.0", sr="48000.0", n_seconds="2"))
    meta = read_metadata(fake_dataset)
    assert (meta["channels"], meta["sample_rate"], meta["num_samples"]) == (2, 48000, 96000)
    assert type(meta["channels"]) is int and type(meta["sample_rate"]) is int
    assert datasets.register(fake_dataset) > 0


def test_the_longest_dataset_still_fits_the_database(datasets, db, fake_dataset):
    (fake_dataset / "metadata.yaml").write_text(metadata(sr="1000000", n_seconds="315576000"))
    ds = datasets.get_dataset(datasets.register(fake_dataset))
    assert ds["num_samples"] == 315_576_000_000_000


def test_metadata_that_is_not_text_or_too_big_is_refused(datasets, db, fake_dataset):
    meta = fake_dataset / "metadata.yaml"
    meta.write_bytes(b"channels: 1\nsr: \xff\xfe\n")
    assert_refused(datasets, db, fake_dataset, "not text")
    meta.write_text(metadata() + "# padding\n" * 200_000)
    assert_refused(datasets, db, fake_dataset, "far more than RAVE writes")


def test_a_symlink_loop_is_refused(datasets, db, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for path in (tmp_path / "a", tmp_path / "a" / "inside"):
        assert_refused(datasets, db, path)


def test_a_path_too_long_is_refused(datasets, db, tmp_path):
    assert_refused(datasets, db, tmp_path / ("x" * 300) / "dataset", "cannot be read")
    assert_refused(datasets, db, tmp_path / "/".join(["y" * 200] * 30), "cannot be read")


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_metadata_that_cannot_be_read_is_refused(datasets, db, fake_dataset):
    """/proc/self/mem is a regular file that fails to read at offset 0, even for root."""
    meta = fake_dataset / "metadata.yaml"
    meta.unlink()
    meta.symlink_to("/proc/self/mem")
    assert_refused(datasets, db, fake_dataset, "cannot be read", "Input/output error")


# -- the name ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, words", [
    ("", ["Give the dataset a name."]),
    ("   ", ["Give the dataset a name."]),
    ("a/b", ["The dataset name cannot contain /"]),
    ("tab\there", ["cannot contain \\t"]),
    (".hidden", ["cannot start with '.' or '-'"]),
    ("-x", ["cannot start with '.' or '-'"]),
    ("x" * 65, ["65 characters long; keep it under 64"]),
])
def test_register_checks_the_name_it_is_given(datasets, db, fake_dataset, name, words):
    assert_refused(datasets, db, fake_dataset, *words, name=name)


def test_a_folder_name_that_breaks_the_rule_becomes_a_good_name(datasets, tmp_path):
    folder = tmp_path / ".my:set*"
    folder.mkdir()
    (folder / "metadata.yaml").write_text(metadata())
    (folder / "data.mdb").write_bytes(b"")
    assert datasets.get_dataset(datasets.register(folder))["name"] == "my_set_"


# -- siblings: the preprocess checks and the checkpoint list --------------------------------

def test_preprocess_checks_turn_folder_failures_into_sentences(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ValueError, match="audio folder .* cannot be used"):
        check_preprocess_inputs([tmp_path / "a" / "x"], tmp_path / "out")
    (tmp_path / "audio").mkdir()
    with pytest.raises(ValueError, match="output folder .* cannot be used"):
        check_preprocess_inputs([tmp_path / "audio"], tmp_path / "a" / "out")
    for channels, sample_rate in ((2.5, 44100), ("2", 44100), (1, float("inf")), (True, 44100)):
        with pytest.raises(ValueError, match="must be a whole number"):
            check_preprocess_inputs([tmp_path / "audio"], tmp_path / "out", channels, sample_rate)


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run_abc" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    for age, name in ((30, "epoch-epoch=0001.ckpt"), (20, "best.ckpt"), (10, "last.ckpt")):
        (folder / name).write_bytes(b"x")
        then = time.time() - age
        os.utime(folder / name, (then, then))
    return tmp_path / "run_abc"


def test_a_damaged_checkpoint_index_is_skipped_line_by_line(run_dir):
    index = run_dir / "version_0" / "checkpoints" / "rave-gui-index.jsonl"
    lines = ["[1, 2]", "5", '"text"', "null", "[" * 100_000, '{"file": ["a"]}', '{"file": 3}',
             json.dumps({"file": "best.ckpt", "step": "twelve", "validation": "low"}),
             json.dumps({"file": "last.ckpt", "step": True, "validation": float("nan")}),
             '{"file": "epoch-epoch=0001.ckpt", "step": 7, "validation": 1e999}']
    index.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")
    ckpts = list_checkpoints(run_dir)
    assert [c["file"] for c in ckpts] == ["epoch-epoch=0001.ckpt", "best.ckpt", "last.ckpt"]
    assert [(c["step"], c["validation"]) for c in ckpts] == [(7, None), (None, None), (None, None)]


def test_a_checkpoint_that_vanishes_while_listed_is_left_out(run_dir):
    """A dangling link is what a file deleted between the listing and the stat looks like."""
    gone = run_dir / "version_0" / "checkpoints" / "gone.ckpt"
    gone.symlink_to(run_dir / "nowhere.ckpt")
    assert "gone.ckpt" not in [c["file"] for c in list_checkpoints(run_dir)]


def test_a_checkpoint_that_cannot_be_deleted_is_a_sentence(run_dir):
    """A folder named like a checkpoint: unlink fails (even for root)."""
    odd = run_dir / "version_0" / "checkpoints" / "odd.ckpt"
    odd.mkdir()
    os.utime(odd, (time.time() - 100, time.time() - 100))
    with pytest.raises(ValueError, match=r"odd\.ckpt could not be deleted \(.+\)\. Check the folder"):
        delete_checkpoint(run_dir, odd)
    assert odd.is_dir()


@pytest.mark.parametrize("text, expected", [
    ("channels: 1\nn_seconds: 12.5\n", 12.5), ("n_seconds: 3\n", 3.0), ("", 0.0),
    ("- a list\n", None), ("n_seconds: .inf\n", None), ("n_seconds: .nan\n", None),
    ("n_seconds: " + "9" * 400 + "\n", None), ("n_seconds: [1]\n", None), ("n_seconds: true\n", None),
    (": [\n", None),
])
def test_preprocess_reads_what_rave_wrote_without_crashing(tmp_path, text, expected):
    """What the preprocess thread reads before it registers the dataset (a crash there
    would leave the dialog waiting)."""
    (tmp_path / "metadata.yaml").write_text(text)
    process = PreprocessProcess(PreprocessPlan([tmp_path], tmp_path), None, "x", Path("/bin/true"))
    assert process._written_seconds() == expected
