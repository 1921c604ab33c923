"""Generated configs against TrainingManager: either a sentence (ValueError) and
nothing written, or a valid record that validates again unchanged."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.training import DEFAULTS, TrainingManager

KEYS = sorted(set(DEFAULTS) | {"name", "dataset_id", "project_id"})
ANY = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.lists(st.text(max_size=30), max_size=4), st.sampled_from(["cpu", "auto", "gpu:0", "gpu:1", "cpu\n"]),
    st.sampled_from(["v2", "v2_small", "v2_nopqmf_small", "v3", "causal", "snake", "PHASE_1_DURATION=10"]),
    st.lists(st.sampled_from(["causal", "snake", "noise", "x\x00", "PHASE_1_DURATION=5", "A=1\nB=2"]),
             max_size=3),
)
CONFIGS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), ANY, max_size=12)


def count(db) -> tuple[int, int]:
    return (db.query_one("SELECT count(*) FROM experiments")[0],
            db.query_one("SELECT count(*) FROM experiment_events")[0])


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=CONFIGS, dataset=st.booleans(), queue=st.booleans(), valid_base=st.booleans())
def test_generated_configs_are_refused_with_a_sentence_or_recorded_valid(db, fake_dataset, tmp_path,
                                                                        config, dataset, queue, valid_base):
    manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=["GPU"])
    if valid_base:  # a few keys changed on a valid config: most of these are recorded
        config = {"name": "fuzz", "max_steps": 100, **config}
    if dataset:
        ds = (db.query_one("SELECT id FROM datasets") or [None])[0] or DatasetManager(db).register(fake_dataset)
        config = {**config, "dataset_id": ds}
    before = count(db)
    try:
        exp_id = (manager.enqueue_training if queue else manager.start_training)(config)
    except ValueError as exc:
        event("refused")
        assert len(str(exc).strip()) > 10  # a sentence, not a bare value
        assert count(db) == before  # nothing written
        return
    event("recorded")
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == ("queued" if queue else "starting")
    stored = exp["config"]
    assert manager.validate_config(stored) == stored  # a stored config is valid as it is
    assert json.loads(json.dumps(stored)) == stored
    assert all("\x00" not in o and "\n" not in o for o in stored["overrides"])
    assert stored["device"] in ("auto", "cpu", "gpu:0")
