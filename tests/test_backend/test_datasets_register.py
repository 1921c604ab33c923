"""DatasetManager: registering preprocessed folders, listing, removing."""
from __future__ import annotations

import pytest
import yaml

from rave_gui.backend.datasets import DatasetManager


@pytest.fixture
def datasets(db) -> DatasetManager:
    return DatasetManager(db)


def count(db) -> int:
    return db.query_one("SELECT count(*) FROM datasets")[0]


def assert_sentence(message: str) -> None:
    assert message.endswith(".") and len(message) > 20 and not message[0].islower(), message


def add_experiment(db, dataset_id: int, status: str = "completed") -> int:
    return db.execute("INSERT INTO experiments (name, dataset_id, status) VALUES ('e', ?, ?)",
                      (dataset_id, status)).lastrowid


def test_register_reads_the_metadata(datasets, fake_dataset):
    meta = yaml.safe_load((fake_dataset / "metadata.yaml").read_text())
    ds_id = datasets.register(fake_dataset)
    ds = datasets.get_dataset(ds_id)
    assert ds["name"] == "dataset"  # the folder's name
    assert ds["path"] == str(fake_dataset.resolve())
    assert ds["num_samples"] == round(meta["sr"] * meta["n_seconds"]) == 1_310_720
    assert (ds["channels"], ds["sample_rate"]) == (1, 44100)
    assert ds["duration"] == pytest.approx(meta["n_seconds"])
    assert ds["created_at"]


def test_register_with_a_name_and_a_stereo_dataset(datasets, tmp_path):
    folder = tmp_path / "stereo set"
    folder.mkdir()
    (folder / "metadata.yaml").write_text("channels: 2\nlazy: true\nn_seconds: 1.5\nsr: 48000\n")
    (folder / "data.mdb").write_bytes(b"")
    ds = datasets.get_dataset(datasets.register(folder, name="  Strings ✓  "))
    assert ds["name"] == "Strings ✓"
    assert (ds["channels"], ds["sample_rate"], ds["num_samples"]) == (2, 48000, 72000)


def test_duplicate_path_is_refused(datasets, db, fake_dataset):
    first = datasets.register(fake_dataset)
    # the same folder written differently is still the same folder
    for same in (fake_dataset, fake_dataset.parent / "." / fake_dataset.name, str(fake_dataset) + "/"):
        with pytest.raises(ValueError) as info:
            datasets.register(same, name="other")
        assert str(first) in str(info.value)
        assert_sentence(str(info.value))
    assert count(db) == 1


def test_missing_folder_is_refused(datasets, db, tmp_path):
    with pytest.raises(ValueError) as info:
        datasets.register(tmp_path / "nowhere")
    assert "does not exist" in str(info.value)
    assert_sentence(str(info.value))
    assert count(db) == 0


@pytest.mark.parametrize("present", [[], ["data.mdb"], ["metadata.yaml"]], ids=["empty", "no metadata", "no data"])
def test_folder_that_is_not_a_dataset_is_refused(datasets, db, tmp_path, present):
    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "song.wav").write_bytes(b"RIFF")
    for name in present:
        (folder / name).write_text("channels: 1\nsr: 44100\nn_seconds: 1\n")
    with pytest.raises(ValueError) as info:
        datasets.register(folder)
    assert "not a preprocessed RAVE dataset" in str(info.value)
    assert_sentence(str(info.value))
    assert count(db) == 0


@pytest.mark.parametrize("text", [
    "\x00\x01 not yaml: [",
    ": : :\n  - [",
    "just a string",
    "- a list\n- of things\n",
    "channels: one\nsr: 44100\nn_seconds: 1\n",
    "sr: 44100\nn_seconds: 1\n",
    "channels: 0\nsr: 44100\nn_seconds: 1\n",
    "channels: 1\nsr: 44100\nn_seconds: 0\n",
    "",
], ids=["binary", "broken", "string", "list", "bad channels", "no channels", "zero channels",
        "no audio", "empty"])
def test_garbage_metadata_is_refused(datasets, db, fake_dataset, text):
    (fake_dataset / "metadata.yaml").write_text(text)
    with pytest.raises(ValueError) as info:
        datasets.register(fake_dataset)
    assert_sentence(str(info.value))
    assert count(db) == 0


def test_get_dataset_unknown_is_none(datasets):
    assert datasets.get_dataset(42) is None


def test_list_datasets_counts_users_newest_first(datasets, db, fake_dataset, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name in ("metadata.yaml", "data.mdb"):
        (other / name).write_bytes((fake_dataset / name).read_bytes())
    a = datasets.register(fake_dataset)
    b = datasets.register(other)
    add_experiment(db, a)
    add_experiment(db, a, "running")
    listed = datasets.list_datasets()
    assert [(d["id"], d["used_by"]) for d in listed] == [(b, 0), (a, 2)]
    assert listed[1]["name"] == "dataset" and listed[0]["name"] == "other"


def test_list_datasets_by_project(datasets, db, fake_dataset):
    project = db.execute("INSERT INTO projects (name) VALUES ('p')").lastrowid
    ds = datasets.register(fake_dataset, project_id=project)
    assert [d["id"] for d in datasets.list_datasets(project_id=project)] == [ds]
    assert datasets.list_datasets(project_id=project + 1) == []


def test_remove_dataset_refused_while_experiments_use_it(datasets, db, fake_dataset):
    ds = datasets.register(fake_dataset)
    exp = add_experiment(db, ds, "running")
    with pytest.raises(ValueError) as info:
        datasets.remove_dataset(ds, delete_files=True)
    assert "1 experiment" in str(info.value) and "running" in str(info.value)
    assert_sentence(str(info.value))
    assert datasets.get_dataset(ds) is not None
    assert (fake_dataset / "data.mdb").exists()  # files untouched too
    db.execute("UPDATE experiments SET status = 'completed' WHERE id = ?", (exp,))
    with pytest.raises(ValueError):  # finished experiments still use it
        datasets.remove_dataset(ds)
    db.execute("DELETE FROM experiments WHERE id = ?", (exp,))
    datasets.remove_dataset(ds)
    assert datasets.get_dataset(ds) is None
    assert (fake_dataset / "data.mdb").exists()  # forgetting keeps the files


def test_remove_dataset_with_files(datasets, fake_dataset):
    (fake_dataset / "keep.txt").write_text("mine")
    ds = datasets.register(fake_dataset)
    datasets.remove_dataset(ds, delete_files=True)
    assert datasets.get_dataset(ds) is None
    assert sorted(p.name for p in fake_dataset.iterdir()) == ["keep.txt"]


def test_remove_unknown_dataset_raises(datasets):
    with pytest.raises(ValueError):
        datasets.remove_dataset(99)


def test_registered_again_after_removal(datasets, fake_dataset):
    ds = datasets.register(fake_dataset, name="first")
    datasets.remove_dataset(ds)
    again = datasets.get_dataset(datasets.register(fake_dataset, name="second"))
    assert again["name"] == "second" and again["path"] == str(fake_dataset.resolve())
    assert len(datasets.list_datasets()) == 1
