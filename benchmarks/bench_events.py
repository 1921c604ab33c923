"""Benchmark following TensorBoard event files (rave_gui.backend.events).

    .venv/bin/python benchmarks/bench_events.py [--points 1000000] [--ea-points N]

Writes a run folder whose ``version_0`` holds one event file with
``--points`` scalars (a quarter as many steps, four training tags each, as
RAVE logs them every 50 steps), then measures:

* the first read of the whole file by ``RunEventsFollower`` (seconds, points/s);
* the cost of one poll after 100 more steps are appended, on that big file and
  on a small one (it must follow the new data, not the file size), and of a
  poll that finds nothing new;
* tensorboard's own ``EventAccumulator`` full reload of the same file
  (``--ea-points`` limits it to a prefix when the full file would take too long;
  the ratio is then taken on that prefix).

Prints a markdown table and writes benchmarks/results/events.json.

The file is written here, not with ``SummaryWriter``: tensorboard's record
writer computes CRC-32C in pure Python (~10 µs a record). The events are
serialized with tensorboard's ``event_pb2`` and framed as TFRecords
(``uint64 length | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)``)
with the CRCs computed by numpy over all records of one length at once;
``EventAccumulator`` checks both CRCs when it reads the file back.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rave_gui.backend.events import EventFileReader, RunEventsFollower  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "events.json"
TAGS = ("multiband_spectral_distance", "fullband_spectral_distance", "regularization", "beta_factor")
EVERY = 50          # Lightning's log_every_n_steps: RAVE's scalars land at steps 49, 99, ...
APPEND_STEPS = 100
POLL_REPEATS = 20


# -- writing event files fast, with correct CRCs --------------------------------------------
def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_TABLE = _crc_table()


def masked_crc32c_rows(rows: np.ndarray) -> np.ndarray:
    """TFRecord's masked CRC-32C of every row of an (n, length) uint8 array."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for j in range(rows.shape[1]):
        crc = _TABLE[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return (((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)).astype(np.uint32)


def frame_records(payloads: list[bytes]) -> bytes:
    n = len(payloads)
    lengths = np.fromiter((len(p) for p in payloads), dtype=np.uint64, count=n)
    headers = lengths.astype("<u8").view(np.uint8).reshape(n, 8)
    header_crcs = masked_crc32c_rows(headers).astype("<u4").tobytes()
    data_crcs = np.empty(n, dtype=np.uint32)
    for length in np.unique(lengths):
        index = np.nonzero(lengths == length)[0]
        rows = np.frombuffer(b"".join([payloads[i] for i in index]), dtype=np.uint8)
        data_crcs[index] = masked_crc32c_rows(rows.reshape(len(index), int(length)))
    data_crcs = data_crcs.astype("<u4").tobytes()
    hb = headers.tobytes()
    parts = []
    for i, payload in enumerate(payloads):
        parts += (hb[8 * i:8 * i + 8], header_crcs[4 * i:4 * i + 4], payload, data_crcs[4 * i:4 * i + 4])
    return b"".join(parts)


def scalar_events(steps, seed: int) -> list[bytes]:
    """One event per (step, tag), as ``SummaryWriter.add_scalar`` writes it."""
    rng = np.random.default_rng(seed)
    values = rng.random((len(steps), len(TAGS))).astype(np.float32).tolist()
    event = event_pb2.Event()
    value = event.summary.value.add()
    out = []
    for i, step in enumerate(steps):
        event.step = step
        event.wall_time = 1.7e9 + step
        for j, tag in enumerate(TAGS):
            value.tag = tag
            value.simple_value = values[i][j]
            out.append(event.SerializeToString())
    return out


def write_steps(path: Path, first: int, count: int, *, header: bool, seed: int = 0) -> int:
    """Write (or append) ``count`` logging steps; returns the points written."""
    steps = [EVERY * (first + i) + EVERY - 1 for i in range(count)]
    payloads = scalar_events(steps, seed)
    if header:
        payloads.insert(0, event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())
    with open(path, "ab" if not header else "wb") as fh:
        fh.write(frame_records(payloads))
    return len(steps) * len(TAGS)


def check_crc() -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    for sample in (b"a", b"123456789", bytes(range(256)), b"\0" * 37):
        rows = np.frombuffer(sample, dtype=np.uint8).reshape(1, -1)
        assert int(masked_crc32c_rows(rows)[0]) == masked_crc32c(sample), sample


# -- measurements -------------------------------------------------------------------------------
def make_run(root: Path, name: str, steps: int) -> tuple[Path, Path]:
    version = root / name / "version_0"
    version.mkdir(parents=True)
    path = version / "events.out.tfevents.1700000000.bench.1.0"
    write_steps(path, 0, steps, header=True)
    return root / name, path


def poll_costs(run: Path, path: Path, steps_so_far: int) -> dict:
    follower = RunEventsFollower(run)
    first_steps = len(follower.poll())
    append_ms, idle_ms, returned = [], [], 0
    for i in range(POLL_REPEATS):
        write_steps(path, steps_so_far + i * APPEND_STEPS, APPEND_STEPS, header=False, seed=i + 1)
        t0 = time.perf_counter()
        batch = follower.poll()
        append_ms.append(1000 * (time.perf_counter() - t0))
        returned += len(batch)
        t0 = time.perf_counter()
        assert follower.poll() == []
        idle_ms.append(1000 * (time.perf_counter() - t0))
    assert returned == POLL_REPEATS * APPEND_STEPS, returned   # each poll returns exactly the new steps
    return {"first_steps": first_steps, "append_poll_ms_median": statistics.median(append_ms),
            "append_poll_ms_max": max(append_ms), "idle_poll_ms_median": statistics.median(idle_ms),
            "file_mb": path.stat().st_size / 1e6}


def event_accumulator_reload(folder: Path) -> tuple[float, int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    t0 = time.perf_counter()
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    seconds = time.perf_counter() - t0
    return seconds, sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--ea-points", type=int, default=None,
                        help="give EventAccumulator only a file of this many points (default: the full file)")
    args = parser.parse_args()
    check_crc()
    steps = args.points // len(TAGS)
    points = steps * len(TAGS)
    root = Path(tempfile.mkdtemp(prefix="bench_events_"))
    try:
        t0 = time.perf_counter()
        run, path = make_run(root, "big", steps)
        write_s = time.perf_counter() - t0

        # first read: the raw reader, then the follower (which also builds the metric dicts)
        t0 = time.perf_counter()
        raw = EventFileReader(path).read_new()
        reader_s = time.perf_counter() - t0
        assert len(raw) == points, len(raw)
        del raw
        follower = RunEventsFollower(run)
        t0 = time.perf_counter()
        first = follower.poll()
        follower_s = time.perf_counter() - t0
        assert len(first) == steps - 1 and all(m["step"] == EVERY * i + EVERY - 1 for i, m in enumerate(first))
        final = follower.poll(final=True)
        assert len(final) == 1 and final[0]["step"] == EVERY * steps - 1
        sample = first[len(first) // 2]
        assert abs(sample["loss"] - (sample["multiband_spectral_distance"] + sample["fullband_spectral_distance"]
                                     + sample["regularization"])) < 1e-9
        del first, final, follower

        big = poll_costs(run, path, steps)
        small_run, small_path = make_run(root, "small", 2_500)
        small = poll_costs(small_run, small_path, 2_500)

        ea_points = min(points, args.ea_points or points)
        # the polls appended to the big file: compare on a fresh file of the asked size
        shutil.rmtree(run)
        ea_run, ea_path = make_run(root, "ea", ea_points // len(TAGS))
        ea_s, ea_read = event_accumulator_reload(ea_path.parent)
        assert ea_read == ea_points, (ea_read, ea_points)
        follower = RunEventsFollower(ea_run)
        t0 = time.perf_counter()
        n = len(follower.poll(final=True))
        ours_same_s = time.perf_counter() - t0
        assert n == ea_points // len(TAGS)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    results = {
        "points": points, "steps": steps, "tags": list(TAGS), "file_mb": big["file_mb"],
        "write_s": write_s,
        "reader_first_read_s": reader_s, "reader_points_per_s": points / reader_s,
        "follower_first_read_s": follower_s, "follower_points_per_s": points / follower_s,
        "append_points": APPEND_STEPS * len(TAGS),
        "big_file": big, "small_file": small,
        "event_accumulator_points": ea_points, "event_accumulator_reload_s": ea_s,
        "follower_same_points_s": ours_same_s, "event_accumulator_ratio": ea_s / ours_same_s,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print("| measure | value |\n|---|---|")
    print(f"| event file | {points:,} points ({steps:,} steps x {len(TAGS)} tags), {big['file_mb']:.1f} MB (after appends) |")
    print(f"| EventFileReader first read | {reader_s:.2f} s ({points / reader_s:,.0f} points/s) |")
    print(f"| RunEventsFollower first poll | {follower_s:.2f} s ({points / follower_s:,.0f} points/s) |")
    print(f"| poll after +{APPEND_STEPS} steps, {points:,}-point file | {big['append_poll_ms_median']:.2f} ms median "
          f"({big['append_poll_ms_max']:.2f} max) |")
    print(f"| poll after +{APPEND_STEPS} steps, 10,000-point file | {small['append_poll_ms_median']:.2f} ms median "
          f"({small['append_poll_ms_max']:.2f} max) |")
    print(f"| poll with nothing new | {big['idle_poll_ms_median']:.3f} ms (big), {small['idle_poll_ms_median']:.3f} ms (small) |")
    print(f"| EventAccumulator full reload, {ea_points:,} points | {ea_s:.1f} s |")
    print(f"| RunEventsFollower, same file | {ours_same_s:.2f} s (EventAccumulator / follower = {ea_s / ours_same_s:.1f}x) |")
    print(f"\nwrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
