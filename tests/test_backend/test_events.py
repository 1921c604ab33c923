"""Following RAVE's TensorBoard event files (rave_gui.backend.events).

The reference for every value is tensorboard's own ``EventAccumulator`` (or a
plain protobuf decode of every record) on the real event file a RAVE run
wrote (fixtures/rave/smoke_run) and on files written with torch's
``SummaryWriter``, the writer Lightning's TensorBoardLogger uses.
"""
from __future__ import annotations

import random
import shutil
import struct
from collections import defaultdict
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2

from rave_gui.backend.events import (
    EventFileReader, RunEventsFollower, is_generator_term, scalars_to_metrics, version_dirs,
)

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "rave" / "smoke_run"
FIXTURE_FILE = next((FIXTURE_RUN / "version_0").glob("events.out.tfevents.*"))
TRAIN_TAGS = ("multiband_spectral_distance", "fullband_spectral_distance", "regularization", "beta_factor")
DERIVED = {"step", "loss", "val_loss", "lr"}


# -- helpers ----------------------------------------------------------------------------------
def accumulator_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def by_tag(points) -> dict[str, list[tuple[int, float]]]:
    out = defaultdict(list)
    for step, tag, value in points:
        out[tag].append((step, value))
    return dict(out)


def records(data: bytes) -> list[bytes]:
    """The payload of every whole TFRecord in ``data``."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        if pos + 16 + length > len(data):
            break
        out.append(data[pos + 12:pos + 12 + length])
        pos += 16 + length
    return out


def reference_points(path: Path) -> list[tuple[int, str, float]]:
    """Every scalar of a file, decoded the slow, obvious way."""
    points = []
    for payload in records(path.read_bytes()):
        event = event_pb2.Event.FromString(payload)
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                points.append((event.step, value.tag, value.simple_value))
            elif kind == "tensor" and not value.tensor.tensor_shape.dim and value.tensor.float_val:
                points.append((event.step, value.tag, value.tensor.float_val[0]))
    return points


def metrics_as_points(batch: list[dict]) -> list[tuple[int, str, float]]:
    return [(m["step"], k, v) for m in batch for k, v in m.items() if k not in DERIVED]


@pytest.fixture(scope="module")
def summary_writer():
    return pytest.importorskip("torch.utils.tensorboard").SummaryWriter


def write_scalars(writer_cls, folder: Path, rows: list[tuple[int, dict[str, float]]]) -> Path:
    """Write ``rows`` (step, {tag: value}) with torch's SummaryWriter, as
    Lightning does (``add_scalar``, one event a scalar); returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = writer_cls(log_dir=str(folder))
    for step, scalars in rows:
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
    writer.close()
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def training_rows(steps, seed: int = 0, extra: dict | None = None) -> list[tuple[int, dict[str, float]]]:
    """RAVE-like scalars: the four training tags at each step, ``validation``
    every fourth step, values exactly representable in float32."""
    rng = random.Random(seed)
    rows = []
    for i, step in enumerate(steps):
        scalars = {tag: rng.randrange(1, 4000) / 64 for tag in TRAIN_TAGS}
        if i % 4 == 3:
            scalars["validation"] = rng.randrange(1, 4000) / 32
        scalars.update(extra or {})
        rows.append((step, scalars))
    return rows


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


# -- the real file RAVE wrote ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_reference():
    return accumulator_scalars(FIXTURE_RUN / "version_0")


def test_reader_reads_what_event_accumulator_reads_on_the_real_file(fixture_reference):
    points = EventFileReader(FIXTURE_FILE).read_new()
    assert fixture_reference  # the real run logged validation, fidelity_* and epoch
    assert set(fixture_reference) == {"validation", "fidelity_0.8", "fidelity_0.9", "fidelity_0.95",
                                      "fidelity_0.99", "epoch"}
    assert by_tag(points) == fixture_reference
    assert points == reference_points(FIXTURE_FILE)


def test_follower_returns_every_scalar_of_the_real_run_once(fixture_reference):
    batch = RunEventsFollower(FIXTURE_RUN).poll(final=True)
    assert [m["step"] for m in batch] == [1, 3, 5]
    assert by_tag(metrics_as_points(batch)) == fixture_reference
    for m in batch:
        assert m["val_loss"] == m["validation"]
        assert "loss" not in m and "lr" not in m  # no generator term, no lr-Adam in this run


def test_poll_holds_back_the_newest_step_until_final():
    follower = RunEventsFollower(FIXTURE_RUN)
    assert [m["step"] for m in follower.poll()] == [1, 3]
    assert follower.poll() == []
    last = follower.poll(final=True)
    assert [m["step"] for m in last] == [5]
    assert last[0]["validation"] == pytest.approx(27.928932)
    assert follower.poll(final=True) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reading_the_real_file_while_it_grows_in_random_chunks(tmp_path, seed):
    data = FIXTURE_FILE.read_bytes()
    run = tmp_path / "run"
    target = run / "version_0" / FIXTURE_FILE.name
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    rng = random.Random(seed)
    reader, follower = EventFileReader(target), RunEventsFollower(run)
    read, polled, pos, cut_records = [], [], 0, 0
    boundaries = set()
    acc = 0
    for payload in records(data):
        acc += len(payload) + 16
        boundaries.add(acc)
    while pos < len(data):
        # mostly small appends so scalar records get cut, sometimes a big one
        size = rng.choice([rng.randint(1, 40), rng.randint(1, 400), rng.randint(1, 200_000)])
        with open(target, "ab") as fh:
            fh.write(data[pos:pos + size])
        pos = min(len(data), pos + size)
        cut_records += pos not in boundaries
        read += reader.read_new()
        assert reader.offset in boundaries | {0}
        polled += follower.poll()
    polled += follower.poll(final=True)
    assert cut_records > 10  # the test did cut records in half
    full = EventFileReader(FIXTURE_FILE).read_new()
    assert read == full
    steps = [m["step"] for m in polled]
    assert steps == sorted(set(steps))  # in order, no duplicates
    assert polled == RunEventsFollower(FIXTURE_RUN).poll(final=True)


def test_half_written_record_is_left_for_the_next_read(tmp_path):
    data = FIXTURE_FILE.read_bytes()
    lengths = [len(p) + 16 for p in records(data)]
    # stop 3 bytes into the CRC after the first validation record: that record is not whole
    end_of_first_scalar = next(sum(lengths[:i + 1]) for i, p in enumerate(records(data))
                               if event_pb2.Event.FromString(p).summary.value
                               and event_pb2.Event.FromString(p).summary.value[0].tag == "validation")
    path = tmp_path / FIXTURE_FILE.name
    path.write_bytes(data[:end_of_first_scalar - 1])
    reader = EventFileReader(path)
    assert reader.read_new() == []
    offset = reader.offset
    assert 0 < offset < end_of_first_scalar
    with open(path, "ab") as fh:
        fh.write(data[end_of_first_scalar - 1:end_of_first_scalar])
    assert reader.read_new() == [(1, "validation", pytest.approx(29.811069))]
    assert reader.offset == end_of_first_scalar
    assert reader.read_new() == []


def test_missing_file_and_missing_run_read_nothing(tmp_path):
    assert EventFileReader(tmp_path / "nope").read_new() == []
    assert RunEventsFollower(None).poll(final=True) == []
    assert RunEventsFollower(tmp_path / "no_run").poll(final=True) == []


def test_version_dirs_in_numeric_order(tmp_path):
    for name in ("version_10", "version_2", "version_0", "version_x", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "version_3").write_text("a file, not a version")
    assert [p.name for p in version_dirs(tmp_path)] == ["version_0", "version_2", "version_10"]


# -- files written by SummaryWriter ---------------------------------------------------------------
def test_summary_writer_file_matches_event_accumulator(tmp_path, summary_writer):
    rows = training_rows(range(49, 5000, 50), extra={"lr-Adam": 1e-3, "epoch": 2.0})
    path = write_scalars(summary_writer, tmp_path / "version_0", rows)
    expected = accumulator_scalars(path.parent)
    points = EventFileReader(path).read_new()
    assert by_tag(points) == expected
    assert len(points) == sum(len(s) for _, s in rows)
    assert points == reference_points(path)


def test_unusual_steps_tags_and_tensor_scalars(tmp_path, summary_writer):
    folder = tmp_path / "version_0"
    writer = summary_writer(log_dir=str(folder))
    long_tag = "a/" + "x" * 200          # longer than 127 bytes: a two-byte length
    writer.add_scalar("early", 1.5, 0)
    writer.add_scalar("big_step", 2.25, 5_000_000_000)
    writer.add_scalar(long_tag, 3.5, 7)
    writer.add_scalar("accentué", -4.75, 8)
    writer.add_scalar("new_style", 6.5, 9, new_style=True)  # a tensor, not a simple_value
    writer.add_text("config", "not a number", 10)
    writer.close()
    (path,) = folder.glob("events.out.tfevents.*")
    points = EventFileReader(path).read_new()
    assert points == [(0, "early", 1.5), (5_000_000_000, "big_step", 2.25), (7, long_tag, 3.5),
                      (8, "accentué", -4.75), (9, "new_style", 6.5)]
    assert points == reference_points(path)


def test_loss_is_the_sum_of_the_generator_terms(tmp_path, summary_writer):
    rows = training_rows(range(49, 500, 50), seed=3)
    write_scalars(summary_writer, tmp_path / "run" / "version_0", rows)
    batch = RunEventsFollower(tmp_path / "run").poll(final=True)
    assert [m["step"] for m in batch] == [step for step, _ in rows]
    for m, (step, scalars) in zip(batch, rows):
        expected = sum(f32(scalars[t]) for t in ("multiband_spectral_distance", "fullband_spectral_distance",
                                                 "regularization"))
        assert m["loss"] == pytest.approx(expected, rel=1e-12)
        assert m["loss"] != pytest.approx(expected + f32(scalars["beta_factor"]))
        assert m["beta_factor"] == f32(scalars["beta_factor"])
        assert ("val_loss" in m) == ("validation" in scalars)


@pytest.mark.parametrize("seed", [0, 1])
def test_incremental_reading_of_a_training_file_cut_anywhere(tmp_path, summary_writer, seed):
    rows = training_rows(range(49, 20_000, 50), seed=seed, extra={"lr-Adam": 5e-4})
    source = write_scalars(summary_writer, tmp_path / "source" / "version_0", rows)
    data = source.read_bytes()
    run = tmp_path / "run"
    target = run / "version_0" / source.name
    target.parent.mkdir(parents=True)
    rng = random.Random(seed)
    follower = RunEventsFollower(run)
    polled, pos, polls = [], 0, 0
    while pos < len(data):
        size = rng.randint(1, 3000)
        with open(target, "ab") as fh:
            fh.write(data[pos:pos + size])
        pos += size
        batch = follower.poll()
        polls += 1
        if batch:
            written = {p[0] for p in EventFileReader(target).read_new()}
            assert batch[-1]["step"] < max(written)  # the newest step written is held back
        polled += batch
    polled += follower.poll(final=True)
    assert polls > 50
    steps = [m["step"] for m in polled]
    assert steps == [step for step, _ in rows]  # every step once, in order
    assert polled == RunEventsFollower(source.parents[1]).poll(final=True)
    for m, (_, scalars) in zip(polled, rows):
        assert m["lr"] == f32(5e-4)
        assert m["loss"] == pytest.approx(sum(f32(v) for k, v in scalars.items() if is_generator_term(k)))


# -- resumed runs: version_0, version_1 -----------------------------------------------------------
V0_STEPS = list(range(49, 1000, 50))       # 49 .. 999: the first run, last checkpoint at 800
V1_STEPS = list(range(849, 1500, 50))      # the resumed run re-logs from 849 on


def test_versions_are_stitched_in_step_order_newer_version_wins(tmp_path, summary_writer):
    # version_0 also logged a term version_1 does not: mixing the two would show in the loss
    v0 = training_rows(V0_STEPS, seed=10, extra={"adversarial": 5.0})
    v1 = training_rows(V1_STEPS, seed=11)
    write_scalars(summary_writer, tmp_path / "run" / "version_0", v0)
    write_scalars(summary_writer, tmp_path / "run" / "version_1", v1)
    batch = RunEventsFollower(tmp_path / "run").poll(final=True)
    expected = [(s, sc) for s, sc in v0 if s < V1_STEPS[0]] + v1
    assert [m["step"] for m in batch] == [s for s, _ in expected]
    for m, (_, scalars) in zip(batch, expected):
        assert {k: v for k, v in m.items() if k not in DERIVED} == {k: f32(v) for k, v in scalars.items()}
        assert m["loss"] == pytest.approx(sum(f32(v) for k, v in scalars.items() if is_generator_term(k)))


def test_version_1_appearing_after_version_0_was_read(tmp_path, summary_writer):
    run = tmp_path / "run"
    write_scalars(summary_writer, run / "version_0", training_rows(V0_STEPS, seed=10))
    follower = RunEventsFollower(run)
    first = follower.poll()
    assert [m["step"] for m in first] == V0_STEPS[:-1]  # 999 held back: version_0 may still be writing
    v1 = training_rows(V1_STEPS, seed=11)
    write_scalars(summary_writer, run / "version_1", v1)
    later = follower.poll(final=True)
    # steps already returned are not returned again; from there on version_1's values
    assert [m["step"] for m in later] == [s for s in V1_STEPS if s > V0_STEPS[-2]]
    for m, (step, scalars) in zip(later, [r for r in v1 if r[0] > V0_STEPS[-2]]):
        assert m["multiband_spectral_distance"] == f32(scalars["multiband_spectral_distance"])
    assert follower.dropped > 0


def test_partly_flushed_step_of_a_resumed_run_is_held_back(tmp_path, summary_writer):
    """The newest step of the version being written is incomplete until the writer flushes
    the rest, even when an older version logged larger steps."""
    run = tmp_path / "run"
    write_scalars(summary_writer, run / "version_0", training_rows(V0_STEPS, seed=10))
    v1 = training_rows(V1_STEPS, seed=11)
    source = write_scalars(summary_writer, tmp_path / "v1_source" / "version_1", v1)
    data = source.read_bytes()
    # the first 3 steps of version_1 and only the first two tags of its 4th step (949)
    payloads = records(data)
    keep, seen = 0, []
    for payload in payloads:
        event = event_pb2.Event.FromString(payload)
        if event.summary.value:
            seen.append((event.step, event.summary.value[0].tag))
        if len([s for s in seen if s[0] == 949]) == 2:
            keep += len(payload) + 16
            break
        keep += len(payload) + 16
    (run / "version_1").mkdir()
    target = run / "version_1" / source.name
    target.write_bytes(data[:keep])
    follower = RunEventsFollower(run)
    batch = follower.poll()
    assert [m["step"] for m in batch] == [s for s in V0_STEPS if s < 849] + [849, 899]
    target.write_bytes(data)
    batch = follower.poll(final=True)
    assert [m["step"] for m in batch] == [s for s in V1_STEPS if s >= 949]
    step_949 = dict(v1)[949]
    m = batch[0]
    assert set(TRAIN_TAGS) <= set(m)
    assert m["loss"] == pytest.approx(sum(f32(step_949[t]) for t in TRAIN_TAGS if t != "beta_factor"))


def test_copy_of_the_real_run_as_a_second_version(tmp_path, fixture_reference):
    """The real file copied as version_1 of a run whose version_0 is empty: same values."""
    run = tmp_path / "run"
    (run / "version_0").mkdir(parents=True)
    (run / "version_1").mkdir()
    shutil.copy(FIXTURE_FILE, run / "version_1" / FIXTURE_FILE.name)
    batch = RunEventsFollower(run).poll(final=True)
    assert by_tag(metrics_as_points(batch)) == fixture_reference


# -- scalars_to_metrics ---------------------------------------------------------------------------
def test_scalars_to_metrics_sums_only_generator_terms():
    scalars = {
        "multiband_spectral_distance": 1.0, "fullband_spectral_distance": 2.0, "regularization": 0.5,
        "feature_matching": 10.0, "adversarial": 3.0, "some_new_distance": 0.25,
        "beta_factor": 100.0, "loss_dis": 50.0, "pred_real": 7.0, "pred_fake": 8.0, "epoch": 4.0,
        "validation": 9.0, "fidelity_0.8": 3.0, "fidelity_0.99": 12.0, "lr-Adam": 1e-3, "lr-Adam-1": 1e-4,
    }
    m = scalars_to_metrics(149, scalars)
    assert m["step"] == 149 and isinstance(m["step"], int)
    assert m["loss"] == 16.75
    assert m["val_loss"] == 9.0
    assert m["lr"] == 1e-3
    assert {k: v for k, v in m.items() if k not in DERIVED} == scalars


@pytest.mark.parametrize("tag, is_term", [
    ("multiband_spectral_distance", True), ("fullband_spectral_distance", True), ("regularization", True),
    ("feature_matching", True), ("adversarial", True), ("beta_factor", False), ("loss_dis", False),
    ("pred_real", False), ("pred_fake", False), ("epoch", False), ("validation", False),
    ("fidelity_0.95", False), ("lr-Adam", False), ("distance", False),
])
def test_generator_terms(tag, is_term):
    assert is_generator_term(tag) is is_term


def test_scalars_to_metrics_without_terms_has_no_loss():
    assert scalars_to_metrics(5.0, {"validation": 2.0}) == {"step": 5, "validation": 2.0, "val_loss": 2.0}
    assert scalars_to_metrics(7, {"lr-Adam/pg1": 2e-4, "beta_factor": 1.0}) == {
        "step": 7, "lr-Adam/pg1": 2e-4, "beta_factor": 1.0, "lr": 2e-4}
    assert scalars_to_metrics(8, {"regularization": 0.0})["loss"] == 0.0


def test_a_step_the_launcher_says_is_complete_is_not_held_back():
    """The newest step waits for a later one (its scalars may still be coming) unless the
    launcher's step lines say the writer is past it."""
    follower = RunEventsFollower(FIXTURE_RUN)
    assert [m["step"] for m in follower.poll(complete_through=4)] == [1, 3]  # 5 is not known complete
    assert [m["step"] for m in follower.poll(complete_through=5)] == [5]
    assert follower.poll(complete_through=9) == []


def test_a_resumed_process_drops_the_abandoned_branch_before_its_own_version_appears(tmp_path, summary_writer):
    """Killed at 999, resumed from the checkpoint at 800: the new process's follower
    must not return version_0's 849..999, even before version_1 has a file."""
    run = tmp_path / "run"
    write_scalars(summary_writer, run / "version_0", training_rows(V0_STEPS, seed=10))
    follower = RunEventsFollower(run, resume_from=800)
    assert [m["step"] for m in follower.poll(final=True)] == [s for s in V0_STEPS if s <= 800]
    v1 = training_rows(V1_STEPS, seed=11)
    write_scalars(summary_writer, run / "version_1", v1)
    assert [m["step"] for m in follower.poll(final=True)] == V1_STEPS


def test_a_validation_written_after_the_next_step_is_returned_late(tmp_path, summary_writer):
    """RAVE can write step N's validation after step N+1's losses: the follower has
    returned N by then; the late points come back in a dict for N with all its tags."""
    run = tmp_path / "run"
    writer = summary_writer(log_dir=str(run / "version_0"))
    writer.add_scalar("regularization", 1.0, 10)
    writer.add_scalar("regularization", 2.0, 11)
    writer.flush()
    follower = RunEventsFollower(run)
    assert [m["step"] for m in follower.poll()] == [10]
    writer.add_scalar("validation", 7.0, 10)
    writer.add_scalar("regularization", 3.0, 12)
    writer.close()
    again = follower.poll()
    by_step = {m["step"]: m for m in again}
    assert by_step[10]["val_loss"] == 7.0 and by_step[10]["regularization"] == 1.0
    assert by_step[10]["loss"] == 1.0  # the loss of step 10 is still its whole sum
    assert 11 in by_step and follower.late == 1
    assert follower.late_only == {10: {"step": 10, "validation": 7.0, "val_loss": 7.0}}
