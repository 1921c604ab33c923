"""Machine records (plain Python, no network): add, edit, remove, the device rule,
the schema, the remote run record."""
from __future__ import annotations

import json
import sqlite3

import pytest

from rave_gui.backend.checkpoints import REMOTE_LISTING, delete_checkpoint, list_checkpoints
from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import (MachineManager, check_machine_device, remote_pid, remote_run,
                                      save_remote_run)
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import MIGRATIONS, Database


@pytest.fixture
def machines(db):
    return MachineManager(db)


def test_add_list_get(machines, tmp_path):
    cfg = tmp_path / "ssh config"
    cfg.write_text("Host x\n")
    a = machines.add("lab GPU", "me@gpu.example.org:2222", python="~/venv/bin/python", work_dir="~/rave")
    b = machines.add("alias box", "box", ssh_config=str(cfg))
    got = machines.get(a)
    assert (got["host"], got["user"], got["port"], got["python"], got["work_dir"], got["kind"]) == \
        ("gpu.example.org", "me", 2222, "~/venv/bin/python", "~/rave", "ssh")
    assert machines.get(b)["python"] == "python3" and machines.get(b)["ssh_config"] == str(cfg)
    assert [m["name"] for m in machines.list()] == ["alias box", "lab GPU"]
    assert "password" not in " ".join(machines.get(a))  # no column for one


@pytest.mark.parametrize("fields, words", [
    (dict(name="", host="box"), "Give the machine a name"),
    (dict(name="a/b", host="box"), "cannot contain"),
    (dict(name="x", host=""), "Give the host"),
    (dict(name="x", host="-oProxyCommand=sh"), "cannot start with a dash"),
    (dict(name="x", host="box", port=70000), "not a port"),
    (dict(name="x", host="box", python="py\nthon"), "control characters"),
    (dict(name="x", host="box", work_dir="   "), "remote work folder"),
    (dict(name="x", host="box", ssh_config="/no/such/config"), "does not exist"),
    (dict(name="This computer", host="box"), "name of this computer"),
])
def test_add_refuses_with_a_sentence_and_writes_nothing(machines, db, fields, words):
    with pytest.raises(ValueError, match=words):
        machines.add(**fields)
    assert machines.list() == []


def test_names_are_unique(machines):
    machines.add("box", "box")
    with pytest.raises(ValueError, match="exists already"):
        machines.add("box", "other")


def test_update(machines):
    mid = machines.add("box", "box")
    machines.update(mid, host="me@box2:2200", python="/opt/py/bin/python")
    got = machines.get(mid)
    assert (got["host"], got["user"], got["port"], got["python"]) == ("box2", "me", 2200, "/opt/py/bin/python")
    with pytest.raises(ValueError, match="Unknown machine field"):
        machines.update(mid, password="x")


def test_device_rule(machines, db):
    mid = machines.add("box", "box")
    assert check_machine_device(db, mid, "auto") == mid and check_machine_device(db, mid, "cpu") == mid
    assert check_machine_device(db, mid, "gpu:3") == mid  # not tested yet: what it has is unknown
    db.execute("UPDATE machines SET gpus = ? WHERE id = ?", (json.dumps(["H200"]), mid))
    assert check_machine_device(db, mid, "gpu:0") == mid
    with pytest.raises(ValueError, match="There is no GPU 1: box has 1 NVIDIA GPU"):
        check_machine_device(db, mid, "gpu:1")
    for bad in (999, "1", True, None, 2**70):
        with pytest.raises(ValueError, match="does not exist"):
            check_machine_device(db, bad, "cpu")
    with pytest.raises(ValueError, match="Device must be"):
        check_machine_device(db, mid, "tpu")


def test_validate_config_uses_the_machine(machines, db, fake_dataset):
    mid = machines.add("box", "box")
    db.execute("UPDATE machines SET gpus = '[]' WHERE id = ?", (mid,))
    ds = DatasetManager(db).register(fake_dataset)
    manager = TrainingManager(db, gpus=[])
    cfg = manager.validate_config(dict(name="r", dataset_id=ds, device="cpu", machine_id=mid))
    assert cfg["machine_id"] == mid
    with pytest.raises(ValueError, match="no NVIDIA GPU"):
        manager.validate_config(dict(name="r", dataset_id=ds, device="gpu:0", machine_id=mid))


def test_removal_is_refused_while_a_run_uses_it(machines, db, fake_dataset):
    mid = machines.add("box", "box")
    ds = DatasetManager(db).register(fake_dataset)
    manager = TrainingManager(db, gpus=[])
    exp = manager.enqueue_training(dict(name="r", dataset_id=ds, device="cpu", machine_id=mid))
    with pytest.raises(ValueError, match="1 queued"):
        machines.remove(mid)
    manager.set_status(exp, "starting")
    with pytest.raises(ValueError, match="1 run\\(s\\) train there"):
        machines.remove(mid)
    with pytest.raises(ValueError, match="Change the host"):
        machines.update(mid, host="elsewhere")
    machines.update(mid, name="renamed")  # a new name is fine
    manager.set_status(exp, "failed")
    save_remote_run(db, exp, machine_id=mid, out_dir="/w/runs/1-x")
    machines.remove(mid)
    assert machines.get(mid) is None
    assert remote_run(db, exp)["machine_id"] is None  # the run's record stays


def test_remote_run_record(db, fake_dataset):
    ds = DatasetManager(db).register(fake_dataset)
    exp = TrainingManager(db, gpus=[]).start_training(dict(name="r", dataset_id=ds, device="cpu"))
    assert remote_run(db, exp) is None and remote_pid(db, exp) is None
    with pytest.raises(ValueError):
        save_remote_run(db, exp, pid=5)  # the folder comes first
    save_remote_run(db, exp, out_dir="/w/runs/x", token="t")
    save_remote_run(db, exp, pid=42, pgid=40, pid_start="boot:123")
    assert remote_pid(db, exp) == 42 and remote_run(db, exp)["out_dir"] == "/w/runs/x"
    db.execute("DELETE FROM experiments WHERE id = ?", (exp,))
    assert remote_run(db, exp) is None  # cascades


def test_upgrade_from_schema_4_keeps_everything(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("INSERT INTO datasets (name, path) VALUES ('d', '/d')")
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.schema_version == len(MIGRATIONS)
    assert db.query_one("SELECT machine_id FROM datasets")[0] is None
    assert db.query("SELECT * FROM machines") == []
    db.close()


def test_checkpoints_of_a_remote_run_are_listed_from_the_index(tmp_path):
    """The mirror has the index and the host's listing, not the .ckpt files; local
    files are listed as before."""
    folder = tmp_path / "run" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "rave-gui-index.jsonl").write_text(
        json.dumps({"file": "epoch-epoch=0009.ckpt", "step": 10, "validation": 1.5, "time": 1}) + "\n"
        + json.dumps({"file": "stopped-step=14.ckpt", "step": 14, "validation": None, "time": 2}) + "\n")
    (folder / REMOTE_LISTING).write_text(json.dumps({"epoch-epoch=0009.ckpt": [1000, 100.0],
                                                     "stopped-step=14.ckpt": [2000, 200.0],
                                                     "../evil.ckpt": [1, 1.0], "bad.ckpt": ["x", 1]}))
    ckpts = list_checkpoints(tmp_path / "run")
    assert [(c["file"], c["step"], c["size"], c["remote"], c["resume"]) for c in ckpts] == [
        ("epoch-epoch=0009.ckpt", 10, 1000, True, False), ("stopped-step=14.ckpt", 14, 2000, True, True)]
    with pytest.raises(ValueError, match="on the machine this run trained on"):
        delete_checkpoint(tmp_path / "run", ckpts[0]["path"])
    (folder / "local.ckpt").write_bytes(b"x" * 5)  # a local file is listed as always
    local = [c for c in list_checkpoints(tmp_path / "run") if c["file"] == "local.ckpt"]
    assert local and "remote" not in local[0] and local[0]["resume"]
