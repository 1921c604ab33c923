"""ExperimentsTableModel: Qt's model checks, columns, actions, targeted updates."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from fake_process import FakeProcess  # tests/ helper

from rave_gui.backend.run_state import TransitionError
from rave_gui.ui.models.experiments_model import (COL_ACTIONS, COL_NAME, COL_STATUS, COL_STEPS,
                                                  COLUMNS, ID_ROLE, ExperimentsTableModel)


def new_experiment(manager, dataset_id, name, status="running", max_steps=1000, error=None):
    """A run brought to ``status`` through the state machine's transitions."""
    config = {"name": name, "dataset_id": dataset_id, "max_steps": max_steps}
    if status == "queued":
        return manager.enqueue_training(config)
    exp_id = manager.start_training(config)  # starting
    if status == "starting":
        return exp_id
    manager.set_status(exp_id, "running")
    if status == "stopping":
        manager.set_status(exp_id, "stopping")
    elif status != "running":
        manager.update_experiment_status(exp_id, status, error)
    return exp_id


def cell(model, row, column):
    return model.index(row, COLUMNS.index(column)).data()


def row_of_name(model, name):
    for row in range(model.rowCount()):
        if cell(model, row, "Name") == name:
            return row
    raise AssertionError(f"no row named {name}")


def test_headers_are_the_five_columns(manager):
    model = ExperimentsTableModel(manager)
    assert model.columnCount() == 5
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["Name", "Status", "Started", "Steps", "Actions"]
    assert model.headerData(5, Qt.Orientation.Horizontal) is None


def test_qt_model_checks_with_no_experiment(qtmodeltester, manager):
    model = ExperimentsTableModel(manager)
    assert model.rowCount() == 0
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


def test_qt_model_checks_with_one_experiment(qtmodeltester, manager, dataset_id):
    new_experiment(manager, dataset_id, "solo")
    model = ExperimentsTableModel(manager)
    assert model.rowCount() == 1
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


def test_qt_model_checks_with_several_experiments_and_updates(qtmodeltester, manager, dataset_id):
    statuses = ("running", "stopped", "failed", "completed", "interrupted", "queued", "starting", "stopping")
    ids = [new_experiment(manager, dataset_id, f"run{i}", status=s) for i, s in enumerate(statuses)]
    model = ExperimentsTableModel(manager)
    assert model.rowCount() == 8
    qtmodeltester.check(model)
    # the tester stays connected: the updates below are checked as they happen
    model.set_step(ids[0], 12)
    model.update_experiment(ids[1])
    new_experiment(manager, dataset_id, "late")
    model.refresh()
    assert model.rowCount() == 9
    new_experiment(manager, dataset_id, "queued later", status="queued")
    manager.move_queued(ids[5], 1)
    model.refresh()  # the queue's order changed: a reset
    assert model.rowCount() == 10
    qtmodeltester.check(model, force_py=True)


def test_row_contents(manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "voice-v2", max_steps=20_000)
    manager.set_current_step(exp_id, 1234)
    model = ExperimentsTableModel(manager)
    started = manager.get_experiment(exp_id)["started_at"]
    assert cell(model, 0, "Name") == "voice-v2"
    assert cell(model, 0, "Status") == "running"
    assert cell(model, 0, "Started") == started[5:16].replace("T", " ")  # this year: month-day time
    assert cell(model, 0, "Steps") == "1,234 / 20k"
    assert model.index(0, COL_NAME).data(ID_ROLE) == exp_id
    assert model.experiment_at(0)["id"] == exp_id and model.experiment_at(1) is None
    assert model.row_of(exp_id) == 0 and model.row_of(exp_id + 99) == -1
    # an invalid index or a row past the end gives nothing
    assert model.data(QModelIndex()) is None
    assert model.data(model.createIndex(3, 0)) is None


def test_error_shows_as_status_tooltip(manager, dataset_id):
    new_experiment(manager, dataset_id, "broken", status="failed", error="CUDA out of memory.")
    new_experiment(manager, dataset_id, "fine", status="stopped")
    model = ExperimentsTableModel(manager)
    broken, fine = row_of_name(model, "broken"), row_of_name(model, "fine")
    assert model.index(broken, COL_STATUS).data(Qt.ItemDataRole.ToolTipRole) == "CUDA out of memory."
    assert model.index(fine, COL_STATUS).data(Qt.ItemDataRole.ToolTipRole) is None


def test_actions_follow_status_and_live_process(manager, dataset_id):
    live = new_experiment(manager, dataset_id, "live")
    orphan = new_experiment(manager, dataset_id, "orphan")  # 'running' but no process held
    launching = new_experiment(manager, dataset_id, "launching", status="starting")
    new_experiment(manager, dataset_id, "lost", status="starting")  # 'starting', no process
    new_experiment(manager, dataset_id, "waiting", status="queued")
    for status in ("stopped", "failed", "interrupted", "completed"):
        new_experiment(manager, dataset_id, status, status=status)
    process = FakeProcess()
    manager.register_process(live, process)
    manager.register_process(launching, FakeProcess())
    model = ExperimentsTableModel(manager)
    actions = {cell(model, r, "Name"): cell(model, r, "Actions") for r in range(model.rowCount())}
    assert actions == {"live": "Stop", "orphan": "", "launching": "Stop", "lost": "",
                       "waiting": "Start now", "stopped": "Resume", "failed": "Resume",
                       "interrupted": "Resume", "completed": "Resume"}
    # a process registered for a finished row does not turn it into Stop
    stopped = model.experiment_at(row_of_name(model, "stopped"))["id"]
    manager.register_process(stopped, FakeProcess())
    model.update_experiment(stopped)
    assert cell(model, row_of_name(model, "stopped"), "Actions") == "Resume"
    # registering the orphan's process gives it Stop
    manager.register_process(orphan, FakeProcess())
    model.update_experiment(orphan)
    assert cell(model, row_of_name(model, "orphan"), "Actions") == "Stop"
    # stopping the live one: it saves its stop checkpoint first (no action meanwhile)
    manager.set_current_step(live, 8)
    manager.stop_training(live)
    assert process.stop_calls == 1 and process.stop_requested
    model.update_experiment(live)
    assert cell(model, row_of_name(model, "live"), "Status") == "stopping…"
    assert cell(model, row_of_name(model, "live"), "Actions") == ""
    # its process ended (what the RunController does on finished): Resume
    manager.unregister_process(live, process)
    manager.set_status(live, "stopped")
    model.update_experiment(live)
    assert cell(model, row_of_name(model, "live"), "Status") == "stopped"
    assert cell(model, row_of_name(model, "live"), "Actions") == "Resume"


def test_queued_rows_come_first_in_queue_order_with_their_place(manager, dataset_id):
    running = new_experiment(manager, dataset_id, "running")
    first = new_experiment(manager, dataset_id, "first in line", status="queued")
    second = new_experiment(manager, dataset_id, "second in line", status="queued")
    third = new_experiment(manager, dataset_id, "third in line", status="queued")
    model = ExperimentsTableModel(manager)
    assert [model.experiment_at(r)["id"] for r in range(model.rowCount())] == [first, second, third, running]
    assert [cell(model, r, "Status") for r in range(3)] == ["queued #1", "queued #2", "queued #3"]
    assert cell(model, 0, "Started") == ""  # not started yet
    assert cell(model, 0, "Actions") == "Start now"
    manager.move_queued(third, -2)
    model.refresh()
    assert [model.experiment_at(r)["id"] for r in range(3)] == [third, first, second]
    assert cell(model, model.row_of(third), "Status") == "queued #1"
    assert cell(model, model.row_of(second), "Status") == "queued #3"
    # taken off the queue: stopped, and the others move up
    manager.stop_training(first)
    model.refresh()
    assert cell(model, model.row_of(first), "Status") == "stopped"
    assert cell(model, model.row_of(first), "Actions") == ""  # it never ran: nothing to resume
    assert cell(model, model.row_of(second), "Status") == "queued #2"


def test_status_column_follows_the_state_machine(manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "run", status="starting")
    model = ExperimentsTableModel(manager)
    assert cell(model, 0, "Status") == "starting"
    manager.set_status(exp_id, "running")
    manager.set_current_step(exp_id, 1500)
    manager.set_status(exp_id, "stopping")
    model.update_experiment(exp_id)
    assert cell(model, 0, "Status") == "stopping…"
    assert model.index(0, 1).data(Qt.ItemDataRole.ToolTipRole) == "stopping (saving step 1,500)"
    manager.set_status(exp_id, "stopped")
    model.update_experiment(exp_id)
    assert cell(model, 0, "Status") == "stopped"
    # a transition the state machine does not have is refused; the row stays as it was
    with pytest.raises(TransitionError):
        manager.update_experiment_status(exp_id, "running")
    model.update_experiment(exp_id)
    assert cell(model, 0, "Status") == "stopped" and cell(model, 0, "Actions") == "Resume"


class Recorder:
    def __init__(self, signal):
        self.calls = []
        signal.connect(lambda *args: self.calls.append(args))


def test_set_step_emits_data_changed_for_the_steps_cell_only(qtbot, manager, dataset_id):
    first = new_experiment(manager, dataset_id, "first", max_steps=60)
    second = new_experiment(manager, dataset_id, "second", max_steps=60)
    model = ExperimentsTableModel(manager)
    row = model.row_of(first)
    with qtbot.waitSignal(model.dataChanged, timeout=1000) as blocker:
        model.set_step(first, 30)
    top_left, bottom_right = blocker.args[:2]
    assert (top_left.row(), top_left.column()) == (row, COL_STEPS)
    assert (bottom_right.row(), bottom_right.column()) == (row, COL_STEPS)
    assert model.index(row, COL_STEPS).data() == "30 / 60"
    assert model.index(model.row_of(second), COL_STEPS).data() == "0 / 60"
    # an unknown experiment changes nothing and emits nothing
    recorder = Recorder(model.dataChanged)
    model.set_step(second + 100, 5)
    assert recorder.calls == []


def test_update_experiment_emits_data_changed_for_the_whole_row(qtbot, manager, dataset_id):
    first = new_experiment(manager, dataset_id, "first")
    second = new_experiment(manager, dataset_id, "second")
    model = ExperimentsTableModel(manager)
    row = model.row_of(second)
    manager.update_experiment_status(second, "failed", "boom")
    recorder = Recorder(model.dataChanged)
    resets = Recorder(model.modelReset)
    model.update_experiment(second)
    assert len(recorder.calls) == 1 and resets.calls == []
    top_left, bottom_right = recorder.calls[0][:2]
    assert (top_left.row(), top_left.column()) == (row, 0)
    assert (bottom_right.row(), bottom_right.column()) == (row, COL_ACTIONS)
    assert model.index(row, COL_STATUS).data() == "failed"
    assert model.index(row, COL_ACTIONS).data() == "Resume"
    assert model.index(model.row_of(first), COL_STATUS).data() == "running"


def test_update_of_an_unknown_row_reloads_the_table(qtbot, manager, dataset_id):
    new_experiment(manager, dataset_id, "first")
    model = ExperimentsTableModel(manager)
    added = new_experiment(manager, dataset_id, "added", status="stopped")  # a live run cannot be deleted
    with qtbot.waitSignal(model.rowsInserted, timeout=1000):
        model.update_experiment(added)
    assert model.rowCount() == 2 and model.row_of(added) >= 0
    manager.delete_experiment(added)
    with qtbot.waitSignal(model.rowsRemoved, timeout=1000):
        model.update_experiment(added)
    assert model.rowCount() == 1 and model.row_of(added) == -1


def test_refresh_inserts_and_removes_rows_without_a_reset(qtmodeltester, manager, dataset_id):
    """A view keeps its selection: persistent indexes follow their experiment."""
    first = new_experiment(manager, dataset_id, "first")
    second = new_experiment(manager, dataset_id, "second", status="stopped")  # to be deleted
    last = new_experiment(manager, dataset_id, "last")  # so that SQLite reuses no id
    model = ExperimentsTableModel(manager)
    qtmodeltester.check(model)
    kept = QPersistentModelIndex(model.index(model.row_of(first), COL_NAME))
    gone = QPersistentModelIndex(model.index(model.row_of(second), COL_STATUS))
    resets, inserted, removed = Recorder(model.modelReset), Recorder(model.rowsInserted), Recorder(
        model.rowsRemoved)
    manager.delete_experiment(second)
    third = new_experiment(manager, dataset_id, "third")
    fourth = new_experiment(manager, dataset_id, "fourth")
    manager.update_experiment_status(first, "stopped")
    model.refresh()
    assert resets.calls == [] and len(removed.calls) == 1 and len(inserted.calls) == 2
    assert [cell(model, r, "Name") for r in range(model.rowCount())] == [
        manager.get_experiment(e)["name"] for e in (fourth, third, last, first)]  # newest first
    assert kept.isValid() and kept.row() == model.row_of(first) and kept.data() == "first"
    assert not gone.isValid()
    assert cell(model, model.row_of(first), "Status") == "stopped"  # kept rows are re-read too


def test_refresh_with_a_new_order_resets(manager, dataset_id, db):
    first = new_experiment(manager, dataset_id, "first")
    second = new_experiment(manager, dataset_id, "second")
    model = ExperimentsTableModel(manager)
    assert model.row_of(second) < model.row_of(first)
    db.execute("UPDATE experiments SET started_at = '2999-01-01T00:00:00' WHERE id = ?", (first,))
    resets = Recorder(model.modelReset)
    model.refresh()
    assert len(resets.calls) == 1 and model.row_of(first) < model.row_of(second)


def test_compact_counts_and_times():
    from rave_gui.ui.models.experiments_model import count, short_time
    assert [count(n) for n in (0, 9_999, 12_500, 20_000, 123_456, 1_000_000, 1_500_000)] == [
        "0", "9,999", "12.5k", "20k", "123k", "1M", "1.5M"]
    assert short_time("2001-02-03T04:05:06") == "2001-02-03" and short_time(None) == ""


# ---- a long table: read a page at a time -----------------------------------------------------

def many_experiments(manager, dataset_id, n):
    """``n`` finished runs, newest last (the table shows them newest first)."""
    ids = [new_experiment(manager, dataset_id, f"run {i}", status="completed") for i in range(n)]
    for i, exp_id in enumerate(ids):  # distinct start times: a stable order
        manager.db.execute("UPDATE experiments SET started_at = ? WHERE id = ?",
                           (f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}", exp_id))
    return ids


def test_a_long_table_shows_and_reads_a_page_at_a_time(qtmodeltester, manager, dataset_id, monkeypatch):
    from rave_gui.ui.models import experiments_model
    ids = many_experiments(manager, dataset_id, 2 * experiments_model.PAGE + 5)
    reads = []
    real = experiments_model.experiments_by_id
    monkeypatch.setattr(experiments_model, "experiments_by_id",
                        lambda m, wanted: reads.append(len(wanted)) or real(m, wanted))
    model = ExperimentsTableModel(manager)
    assert model.rowCount() == experiments_model.PAGE and model.canFetchMore(QModelIndex())
    assert reads == [experiments_model.PAGE]  # one page read, not every record
    assert cell(model, 0, "Name") == f"run {len(ids) - 1}"  # newest first
    inserted = Recorder(model.rowsInserted)
    model.fetchMore(QModelIndex())  # what a view does when scrolled to the end
    assert model.rowCount() == 2 * experiments_model.PAGE and len(inserted.calls) == 1
    assert model.row_of(ids[0]) == len(ids) - 1  # selecting a run shows it (and those before it)
    assert model.rowCount() == len(ids) and not model.canFetchMore(QModelIndex())
    assert [e["id"] for e in model.experiments()] == [e["id"] for e in manager.list_experiments()]
    qtmodeltester.check(model, force_py=True)


def test_a_long_table_updates_rows_not_yet_shown_quietly(manager, dataset_id):
    ids = many_experiments(manager, dataset_id, 150)
    model = ExperimentsTableModel(manager)
    oldest = ids[0]  # the last row: not shown yet
    changed = Recorder(model.dataChanged)
    model.set_step(oldest, 99)
    model.update_experiment(oldest)
    assert changed.calls == [] and model.rowCount() == 100
    assert model.experiment_at(model.row_of(oldest))["id"] == oldest
    newest = new_experiment(manager, dataset_id, "newest", status="completed")
    manager.db.execute("UPDATE experiments SET started_at = '2999-01-01T00:00:00' WHERE id = ?", (newest,))
    inserted = Recorder(model.rowsInserted)
    model.refresh()
    assert model.row_of(newest) == 0 and len(inserted.calls) == 1
    assert [model.experiment_at(r)["id"] for r in range(model.rowCount())] == \
        [e["id"] for e in manager.list_experiments()]


def test_refresh_signals_only_the_rows_that_changed(manager, dataset_id):
    ids = [new_experiment(manager, dataset_id, f"run{i}", status="completed") for i in range(5)]
    model = ExperimentsTableModel(manager)
    changed = Recorder(model.dataChanged)
    model.refresh()
    assert changed.calls == []  # nothing changed: no view recomputes anything
    manager.db.execute("UPDATE experiments SET name = 'renamed' WHERE id = ?", (ids[2],))
    model.refresh()
    assert len(changed.calls) == 1
    top_left, bottom_right = changed.calls[0][:2]
    assert top_left.row() == bottom_right.row() == model.row_of(ids[2])
    assert cell(model, model.row_of(ids[2]), "Name") == "renamed"
    model.alerts[ids[4]] = {"nan": "The loss is NaN."}  # a health alert is a change too
    model.refresh()
    assert len(changed.calls) == 2 and cell(model, model.row_of(ids[4]), "Status").startswith("⚠")


def test_ids_follow_list_experiments_order(manager, dataset_id, db):
    from rave_gui.backend.experiment_list import experiment_ids, experiments_by_id
    statuses = ("running", "queued", "stopped", "queued", "completed", "starting")
    made = [new_experiment(manager, dataset_id, f"r{i}", status=s) for i, s in enumerate(statuses)]
    db.execute("UPDATE experiments SET started_at = '2001-01-01T00:00:00' WHERE id = ?", (made[0],))
    manager.move_queued(made[3], -1)
    expected = manager.list_experiments()
    assert experiment_ids(manager) == [e["id"] for e in expected]
    assert list(experiments_by_id(manager, [e["id"] for e in expected]).values()) != []
    assert experiments_by_id(manager, [made[2], 10_000]) == {made[2]: manager.get_experiment(made[2])}
