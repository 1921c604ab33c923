"""The columnar history cache (backend/history_cache): what get_metric_history
returns always equals the history table, whatever was appended, changed, trimmed
or deleted since the cache was built."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rave_gui.backend import history_cache
from rave_gui.backend.history_cache import CHUNK, MIN_CACHED, HistorySeries
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database

N = 3 * CHUNK + 123  # several chunks and a short last one


@pytest.fixture
def manager(db, tmp_path) -> TrainingManager:
    return TrainingManager(db, runs_root=tmp_path / "runs")


def new_run(db, name="run") -> int:
    return int(db.execute("INSERT INTO experiments (name, status, config) VALUES (?, 'completed', '{}')",
                          (name,)).lastrowid)


def store(manager, exp_id, steps, keys=("loss", "val_loss"), seed=0):
    rng = np.random.default_rng(seed)
    manager.update_training_metrics(exp_id, [{"step": int(s), **{k: float(rng.random()) for k in keys}}
                                             for s in steps])


def table(db, exp_id) -> dict[str, list]:
    """The truth, read the old way."""
    out: dict[str, list] = {}
    for key, step, value in db.query("SELECT key, step, value FROM metric_points WHERE experiment_id = ?"
                                     " ORDER BY key, step", (exp_id,)):
        out.setdefault(key, []).append((step, value))
    return out


def chunks(db, exp_id) -> list:
    return db.query("SELECT key, first_step, last_step, n, steps, vals FROM metric_chunks"
                    " WHERE experiment_id = ? ORDER BY key, first_step", (exp_id,))


def assert_chunks_exact(db, exp_id):
    """Every chunk holds exactly the table's points of its key in its step range."""
    truth = table(db, exp_id)
    for key, first, last, n, steps, vals in chunks(db, exp_id):
        expected = [(s, v) for s, v in truth[key] if first <= s <= last]
        got = list(zip(np.frombuffer(steps, "<i8", n).tolist(), np.frombuffer(vals, "<f8", n).tolist()))
        assert got == expected, (key, first, last)


def test_first_read_builds_chunks_and_every_read_equals_the_table(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(0, 50 * N, 50))
    assert manager.get_metric_history(exp_id) == table(db, exp_id)  # from the table, packed meanwhile
    built = chunks(db, exp_id)
    assert len(built) == 2 * 4 and sum(c[3] for c in built) == 2 * N  # 3 full chunks + 1 each
    history = manager.get_metric_history(exp_id)  # from the chunks
    assert history == table(db, exp_id)
    assert all(isinstance(v, HistorySeries) for v in history.values())
    assert history["loss"].steps.dtype == np.int64 and history["loss"].values.dtype == np.float64
    assert_chunks_exact(db, exp_id)


def test_new_points_after_the_chunks_are_read_from_the_table(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(N))
    manager.get_metric_history(exp_id)
    store(manager, exp_id, range(N, N + 500), seed=1)  # appended: no chunk covers them
    assert len(chunks(db, exp_id)) == 2 * 4  # appends leave every chunk valid
    history = manager.get_metric_history(exp_id)
    assert history == table(db, exp_id)
    assert history["loss"][-1][0] == N + 499
    assert_chunks_exact(db, exp_id)  # the short last chunk took the new points in


def test_a_changed_value_inside_a_chunk_is_never_served_stale(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(N))
    manager.get_metric_history(exp_id)
    step = CHUNK + 7  # in the second chunk
    manager.update_training_metrics(exp_id, {"step": step, "loss": -5.0})  # a re-logged value
    history = manager.get_metric_history(exp_id)
    assert dict(history["loss"])[step] == -5.0
    assert history == table(db, exp_id)
    assert_chunks_exact(db, exp_id)


def test_a_point_inserted_between_others_is_never_missed(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(0, 10 * N, 10))
    manager.get_metric_history(exp_id)
    manager.update_training_metrics(exp_id, {"step": 10 * CHUNK + 5, "loss": 42.0})  # between two steps
    history = manager.get_metric_history(exp_id)
    assert (10 * CHUNK + 5, 42.0) in list(history["loss"])
    assert history == table(db, exp_id)


def test_resume_trim_drops_the_cached_branch(manager, db, dataset_id):
    exp_id = manager.start_training({"name": "long", "dataset_id": dataset_id, "max_steps": 10 * N})
    store(manager, exp_id, range(1, N))
    manager.update_experiment_status(exp_id, "interrupted")
    manager.get_metric_history(exp_id)
    checkpoint = 2 * CHUNK + 10
    fake_checkpoint(manager, exp_id, checkpoint)
    manager.resume_training(exp_id)  # drops the history after the checkpoint
    history = manager.get_metric_history(exp_id)
    assert history["loss"][-1][0] == checkpoint
    assert history == table(db, exp_id)
    assert_chunks_exact(db, exp_id)
    store(manager, exp_id, range(checkpoint + 1, checkpoint + 3000), seed=7)  # the new branch
    assert manager.get_metric_history(exp_id) == table(db, exp_id)
    assert_chunks_exact(db, exp_id)


def fake_checkpoint(manager, exp_id, step):
    """A run folder with one checkpoint noted in the launcher's index (no torch)."""
    run_dir = Path(manager.get_experiment(exp_id)["out_dir"]) / "run_x"
    ckpts = run_dir / "version_0" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / f"stopped-step={step}.ckpt").write_bytes(b"x")
    (ckpts / "rave-gui-index.jsonl").write_text(json.dumps({"file": f"stopped-step={step}.ckpt", "step": step}))
    manager.set_run_dir(exp_id, run_dir)


@pytest.fixture
def dataset_id(db, fake_dataset) -> int:
    from rave_gui.backend.datasets import DatasetManager
    return DatasetManager(db).register(fake_dataset, name="ds")


def test_deleting_a_run_deletes_its_chunks_and_a_new_run_never_sees_them(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(N))
    manager.get_metric_history(exp_id)
    manager.delete_experiment(exp_id)
    assert db.query_one("SELECT count(*) FROM metric_chunks")[0] == 0
    again = new_run(db)  # SQLite may give the same id again
    store(manager, again, range(100), seed=3)
    assert manager.get_metric_history(again) == table(db, again)


def test_short_histories_are_not_packed(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(MIN_CACHED - 1))
    assert manager.get_metric_history(exp_id) == table(db, exp_id)
    assert chunks(db, exp_id) == []


def test_keys_filter_and_unknown_runs(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(N), keys=("a", "b", "c"))
    manager.get_metric_history(exp_id)
    assert list(manager.get_metric_history(exp_id, keys=["c", "a"])) == ["a", "c"]
    assert manager.get_metric_history(exp_id, keys=["b"])["b"] == table(db, exp_id)["b"]
    assert manager.get_metric_history(exp_id, keys=[]) == {}
    assert manager.get_metric_history(exp_id, keys=["missing"]) == {}
    assert manager.get_metric_history(999) == {}


def test_huge_steps_stay_exact(manager, db):
    exp_id = new_run(db)
    base = 2 ** 60
    store(manager, exp_id, [base + i for i in range(MIN_CACHED + 5)])
    for _ in range(2):  # from the table, then from the chunks
        history = manager.get_metric_history(exp_id)
        assert history["loss"][0][0] == base and history["loss"][-1][0] == base + MIN_CACHED + 4
        assert history == table(db, exp_id)


def test_a_dropped_or_damaged_cache_is_rebuilt(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(N))
    manager.get_metric_history(exp_id)
    db.execute("DROP TRIGGER metric_chunks_stale_on_update")  # a part missing: start again
    db._history_chunks_ready = False
    assert manager.get_metric_history(exp_id) == table(db, exp_id)
    history_cache.drop_chunks(db, exp_id)
    assert manager.get_metric_history(exp_id) == table(db, exp_id)
    assert_chunks_exact(db, exp_id)


def test_read_only_database_reads_the_table(manager, db, tmp_path):
    exp_id = new_run(db)
    store(manager, exp_id, range(N))
    expected = table(db, exp_id)
    db.close()
    ro = Database(tmp_path / "test.sqlite3", read_only=True)
    try:
        assert TrainingManager(ro, runs_root=tmp_path / "runs").get_metric_history(exp_id) == expected
    finally:
        ro.close()


def test_pack_tails_keeps_a_live_run_warm(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(MIN_CACHED - 10))
    assert history_cache.pack_tails(db, exp_id, force=True) == 0  # too few yet
    store(manager, exp_id, range(MIN_CACHED - 10, 3 * MIN_CACHED), seed=1)
    assert history_cache.pack_tails(db, exp_id, force=True) == 2 * 3 * MIN_CACHED
    assert history_cache.pack_tails(db, exp_id) == 0  # rate-limited
    store(manager, exp_id, range(3 * MIN_CACHED, 5 * MIN_CACHED), seed=2)
    assert history_cache.pack_tails(db, exp_id, force=True) == 2 * 2 * MIN_CACHED
    assert_chunks_exact(db, exp_id)
    assert manager.get_metric_history(exp_id) == table(db, exp_id)


def test_history_series_reads_like_the_list_it_replaces():
    series = HistorySeries(np.array([1, 2, 3], dtype=np.int64), np.array([0.5, 0.25, 0.125]))
    assert series == [(1, 0.5), (2, 0.25), (3, 0.125)] and series != [(1, 0.5)]
    assert len(series) == 3 and series[-1] == (3, 0.125) and series[:2] == [(1, 0.5), (2, 0.25)]
    assert dict(series) == {1: 0.5, 2: 0.25, 3: 0.125}
    assert [s for s, _ in series] == [1, 2, 3]
    assert all(type(s) is int and type(v) is float for s, v in series)
    assert "3 points" in repr(series)


operations = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(1, 2 * CHUNK)),
    st.tuples(st.just("change"), st.integers(0, 10 ** 6)),
    st.tuples(st.just("trim"), st.integers(0, 10 ** 6)),
    st.tuples(st.just("read"), st.just(0))), min_size=1, max_size=8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_of_writes_and_reads_matches_the_table(tmp_path_factory, ops):
    db = Database(tmp_path_factory.mktemp("h") / "h.sqlite3")
    try:
        manager = TrainingManager(db, runs_root=db.path.parent / "runs")
        exp_id, last = new_run(db), 0
        for i, (op, arg) in enumerate(ops):
            if op == "append":
                store(manager, exp_id, range(last, last + arg), keys=("loss",), seed=i)
                last += arg
            elif op == "change" and last:
                manager.update_training_metrics(exp_id, {"step": arg % last, "loss": float(-i)})
            elif op == "trim":  # what resume_training does to the history
                db.execute("DELETE FROM metric_points WHERE experiment_id = ? AND step > ?",
                           (exp_id, arg % (last + 1)))
                last = min(last, arg % (last + 1) + 1)
            assert manager.get_metric_history(exp_id) == table(db, exp_id)
            assert_chunks_exact(db, exp_id)
    finally:
        db.close()


# -- reading rows without a Python object each; runs not cached yet --------------------------------
def cold_run(manager, db, steps, keys=("loss", "val_loss"), seed=0) -> int:
    """A run whose history was recorded before the cache existed: rows, no chunk."""
    exp_id = new_run(db)
    store(manager, exp_id, steps, keys=keys, seed=seed)
    history_cache.drop_chunks(db, exp_id)
    return exp_id


def store_values(db, exp_id, key, values, first_step=0):
    db.executemany("INSERT INTO metric_points (experiment_id, key, step, value) VALUES (?, ?, ?, ?)",
                   [(exp_id, key, first_step + i, float(v)) for i, v in enumerate(values)])


def test_values_of_every_magnitude_are_read_exactly(manager, db):
    exp_id = new_run(db)
    rng = np.random.default_rng(5)
    n = 3 * history_cache.FEW_ROWS
    narrow = rng.uniform(1.0, 3.0, n)  # one power of two for all: the fast path
    wide = np.concatenate([[0.0, 5e-324, 2.2250738585072014e-308, 1e-300, -1e-300, 1e300, -1.7976931348623157e308,
                            1e-3, 1e-4, 0.1, 1 / 3, -2.5, 2.0 ** 52, 2.0 ** -1074 * 3],
                           rng.normal(0, 1, n) * 10.0 ** rng.integers(-30, 30, n)])
    zeros = np.zeros(n)
    lr = 1e-3 * 0.5 ** np.linspace(0, 12, n)  # a learning rate over decades
    for key, values in (("narrow", narrow), ("wide", wide), ("zeros", zeros), ("lr", lr)):
        store_values(db, exp_id, key, values)
    truth = table(db, exp_id)
    for _ in range(2):  # from the table (packing it), then from the chunks
        history = history_cache.read_history(db, exp_id)
        assert history == truth
        for key in truth:  # bit for bit, not only ==
            expected = np.array([v for _, v in truth[key]])
            assert history[key].values.tobytes() == expected.tobytes(), key


def test_a_sqlite_without_math_functions_reads_tuples(db, manager):
    exp_id = new_run(db)
    store_values(db, exp_id, "lr", 1e-3 * 0.5 ** np.linspace(0, 30, 1000))  # needs a power per value

    class NoMath:  # what SQLite says when built without its math functions
        def execute(self, sql, params=()):
            if "log2" in sql:
                raise sqlite3.OperationalError("no such function: log2")
            return history_cache._Queries(db).execute(sql, params)

    steps, values = history_cache._points(NoMath(), exp_id, "lr", None, None)
    assert list(zip(steps.tolist(), values.tolist())) == table(db, exp_id)["lr"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64),
                       min_size=history_cache.FEW_ROWS, max_size=3 * history_cache.FEW_ROWS))
def test_any_finite_values_are_read_exactly(tmp_path_factory, values):
    db = Database(tmp_path_factory.mktemp("v") / "v.sqlite3")
    try:
        exp_id = new_run(db)
        store_values(db, exp_id, "x", values)
        steps, got = history_cache._points(history_cache._Queries(db), exp_id, "x", None, None)
        assert steps.tolist() == list(range(len(values)))
        assert got.tolist() == [v for _, v in table(db, exp_id)["x"]]  # -0.0 as SQLite keeps it
    finally:
        db.close()


def test_a_limit_reads_the_first_points_of_a_range(manager, db):
    exp_id = cold_run(manager, db, range(0, 10_000, 2), keys=("loss",))
    steps, values = history_cache._points(history_cache._Queries(db), exp_id, "loss", 100, 5000, limit=300)
    expected = [p for p in table(db, exp_id)["loss"] if 100 < p[0] < 5000][:300]
    assert list(zip(steps.tolist(), values.tolist())) == expected


def test_read_history_with_a_budget_refuses_a_run_not_cached_yet(manager, db):
    exp_id = cold_run(manager, db, range(3 * MIN_CACHED))  # 2 keys x 3 * MIN_CACHED points
    assert history_cache.read_history(db, exp_id, max_table_rows=5 * MIN_CACHED) is None
    assert chunks(db, exp_id) == []  # nothing packed by the refused read
    assert history_cache.read_history(db, exp_id, max_table_rows=6 * MIN_CACHED) == table(db, exp_id)
    # packed by that read: the next costs no table rows
    assert history_cache.read_history(db, exp_id, max_table_rows=0) == table(db, exp_id)


def test_read_history_with_a_budget_on_a_read_only_database(manager, db, tmp_path):
    exp_id = cold_run(manager, db, range(2 * MIN_CACHED))
    expected = table(db, exp_id)
    db.close()
    ro = Database(tmp_path / "test.sqlite3", read_only=True)
    try:
        assert history_cache.read_history(ro, exp_id, max_table_rows=10) is None
        assert history_cache.read_history(ro, exp_id, max_table_rows=4 * MIN_CACHED) == expected
    finally:
        ro.close()


def test_the_overview_is_points_of_the_run_spread_over_it(manager, db):
    exp_id = cold_run(manager, db, range(0, 50 * 20_000, 50), keys=("loss", "lr"))
    store_values(db, exp_id, "val_loss", [0.5, 0.4, 0.3], first_step=1000)  # a short key: whole
    truth = table(db, exp_id)
    overview = history_cache.read_overview(db, exp_id, points=500)
    assert list(overview) == sorted(truth)
    assert overview["val_loss"] == truth["val_loss"]
    for key in ("loss", "lr"):
        got, all_points = list(overview[key]), truth[key]
        assert set(got) <= set(all_points)  # real points, exact
        assert got == sorted(got) and got[0] == all_points[0] and got[-1] == all_points[-1]
        assert 500 <= len(got) <= 502
        gaps = np.diff([s for s, _ in got])
        assert gaps.max() <= 2 * (all_points[-1][0] - all_points[0][0]) / 500  # spread, not bunched
    assert chunks(db, exp_id) == []  # it writes nothing
    assert history_cache.read_overview(db, 999) == {}


def test_the_overview_of_steps_with_a_hole(manager, db):
    exp_id = new_run(db)
    store_values(db, exp_id, "loss", np.arange(2000.0), first_step=0)
    store_values(db, exp_id, "loss", np.arange(2000.0), first_step=10 ** 6)  # nothing in between
    got = list(history_cache.read_overview(db, exp_id, points=100)["loss"])
    assert len(set(s for s, _ in got)) == len(got)  # each point once
    assert set(got) <= set(table(db, exp_id)["loss"]) and got[-1] == (10 ** 6 + 1999, 1999.0)


def assert_chunks_disjoint(db, exp_id):
    by_key: dict = {}
    for key, first, last, n, _, _ in chunks(db, exp_id):
        by_key.setdefault(key, []).append((first, last))
    for spans in by_key.values():
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))


def test_warm_packs_a_cold_run_a_chunk_at_a_time(manager, db):
    exp_id = cold_run(manager, db, range(N), keys=("loss", "val_loss", "lr"))
    store_values(db, exp_id, "short", range(MIN_CACHED - 1))  # stays in the table
    packed = history_cache.warm(db, exp_id)
    assert packed == 3 * 3 * CHUNK  # each key's last 123 points (under MIN_CACHED) stay in the table
    assert {c[0] for c in chunks(db, exp_id)} == {"loss", "val_loss", "lr"}
    assert all(c[3] <= CHUNK for c in chunks(db, exp_id))
    assert_chunks_exact(db, exp_id)
    assert_chunks_disjoint(db, exp_id)
    left = 3 * 123 + MIN_CACHED - 1  # the tails and the short key: what the table still holds alone
    assert history_cache.read_history(db, exp_id, max_table_rows=left) == table(db, exp_id)
    assert history_cache.warm(db, exp_id) == 0  # nothing left


def test_warm_fills_the_gaps_a_changed_value_left(manager, db):
    exp_id = new_run(db)
    store(manager, exp_id, range(N), keys=("loss",))
    manager.get_metric_history(exp_id)  # packed
    manager.update_training_metrics(exp_id, {"step": CHUNK + 7, "loss": -5.0})  # drops the second chunk
    assert len(chunks(db, exp_id)) == 3
    assert history_cache.warm(db, exp_id) == CHUNK
    assert len(chunks(db, exp_id)) == 4
    assert_chunks_exact(db, exp_id)
    assert_chunks_disjoint(db, exp_id)
    assert history_cache.read_history(db, exp_id) == table(db, exp_id)


def test_warm_stops_when_cancelled(manager, db):
    exp_id = cold_run(manager, db, range(N))
    cancel = threading.Event()
    cancel.set()
    assert history_cache.warm(db, exp_id, cancel) == 0
    assert chunks(db, exp_id) == []


def load(db, exp_id, timeout=60.0):
    """BackgroundLoad, waited for: (history, error, the thread done was called on)."""
    got, finished = {}, threading.Event()

    def done(history, error):
        got.update(history=history, error=error, thread=threading.current_thread())
        finished.set()

    history_cache.BackgroundLoad(db, exp_id, done)
    assert finished.wait(timeout)
    return got["history"], got["error"], got["thread"]


def test_background_load_reads_and_caches_a_cold_run_on_its_own_thread(manager, db):
    exp_id = cold_run(manager, db, range(N))
    history, error, thread = load(db, exp_id)
    assert error is None and thread is not threading.current_thread()
    assert history == table(db, exp_id)
    assert_chunks_exact(db, exp_id)
    assert history_cache.read_history(db, exp_id, max_table_rows=2 * MIN_CACHED) == history  # warm now


def test_background_load_leaves_the_callers_connection_free(manager, db):
    exp_id = cold_run(manager, db, range(N))
    with db._lock:  # the caller's connection busy all along (its lock held): the load still runs
        history, error, _ = load(db, exp_id)
    assert error is None and history == table(db, exp_id)


def test_background_load_of_a_read_only_database(manager, db, tmp_path):
    exp_id = cold_run(manager, db, range(N))
    expected = table(db, exp_id)
    db.close()
    ro = Database(tmp_path / "test.sqlite3", read_only=True)
    try:
        history, error, _ = load(ro, exp_id)
        assert error is None and history == expected
        assert ro.query_one("SELECT count(*) FROM metric_chunks")[0] == 0
    finally:
        ro.close()


def test_background_load_reports_errors_and_unknown_runs(manager, db, tmp_path):
    assert load(db, 999)[:2] == ({}, None)

    class Elsewhere:  # a file that is not a database
        path, read_only = tmp_path / "not-a-database", False

    Elsewhere.path.write_bytes(b"x" * 4096)
    history, error, _ = load(Elsewhere, 1)
    assert history is None and isinstance(error, sqlite3.Error)


def test_a_cancelled_background_load_calls_nobody(manager, db):
    exp_id = cold_run(manager, db, range(N))
    calls = []
    job = history_cache.BackgroundLoad(db, exp_id, lambda *a: calls.append(a))
    job.cancel()
    job.thread.join(60)
    assert calls == [] and not job.thread.is_alive()
