"""Follow the TensorBoard event files RAVE writes, incrementally.

An event file is a sequence of TFRecords: ``uint64 length``, ``uint32 crc``,
``length`` bytes of a serialized ``Event`` protobuf, ``uint32 crc``. The
writer appends records and flushes late and in bursts, so a reader can meet
half a record at the end of the file: it then stops before it and picks it
up on the next poll. Each file's offset is kept, so the cost of a poll is
proportional to what was appended since the last one, not to the file.

``RunEventsFollower`` watches every ``version_*`` folder of a run (each
resume adds one) and ``scalars_to_metrics`` turns RAVE's scalars into the
metrics the app shows: ``loss`` (the generator's loss: the sum of the
generator terms RAVE logged at that step), ``val_loss`` (``validation``),
``lr`` (the generator's learning rate logged by the launcher's
LearningRateMonitor) and every scalar under its own name.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

from tensorboard.compat.proto import event_pb2

_HEADER = struct.Struct("<QI")
_VERSION_RE = re.compile(r"version_(\d+)$")
GENERATOR_TERMS = {"regularization", "feature_matching", "adversarial"}
LR_TAGS = ("lr-Adam", "lr-Adam/pg1")


def is_generator_term(tag: str) -> bool:
    return tag in GENERATOR_TERMS or tag.endswith("_distance")


class EventFileReader:
    """Reads the scalars appended to one event file since the last call."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> list[tuple[int, str, float]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        points: list[tuple[int, str, float]] = []
        pos, size = 0, len(data)
        while pos + 12 <= size:
            length = _HEADER.unpack_from(data, pos)[0]
            end = pos + 12 + length + 4
            if end > size:
                break  # half-written record: wait for the rest
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            if event.HasField("summary"):
                for value in event.summary.value:
                    number = _scalar(value)
                    if number is not None:
                        points.append((event.step, value.tag, number))
            pos = end
        self.offset += pos
        return points


def _scalar(value) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        tensor = value.tensor
        if tensor.tensor_shape.dim:
            return None
        if tensor.float_val:
            return float(tensor.float_val[0])
        if tensor.double_val:
            return float(tensor.double_val[0])
        if tensor.tensor_content and tensor.dtype == 1 and len(tensor.tensor_content) == 4:
            return struct.unpack("<f", tensor.tensor_content)[0]
    return None


def version_dirs(run_dir: str | Path) -> list[Path]:
    """``version_*`` folders of a run, in version order."""
    found = []
    for path in Path(run_dir).glob("version_*"):
        match = _VERSION_RE.search(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found)]


class RunEventsFollower:
    """Follows every event file of a RAVE run folder (``NAME_<hash>``).

    ``poll()`` returns metric dicts (one per step, in step order) for the
    steps that are complete: the newest step is held back until a later step
    appears or ``poll(final=True)`` is called, because the writer may have
    flushed only part of it.
    """

    def __init__(self, run_dir: str | Path | None = None):
        self.run_dir = Path(run_dir) if run_dir else None
        self._readers: dict[Path, EventFileReader] = {}
        self._pending: dict[int, dict[str, float]] = {}

    def _files(self) -> list[Path]:
        if self.run_dir is None:
            return []
        files = []
        for version in version_dirs(self.run_dir):
            files += sorted(version.glob("events.out.tfevents.*"))
        return files

    def read_points(self) -> list[tuple[int, str, float]]:
        points = []
        for path in self._files():
            reader = self._readers.get(path)
            if reader is None:
                reader = self._readers[path] = EventFileReader(path)
            points += reader.read_new()
        return points

    def poll(self, final: bool = False) -> list[dict]:
        for step, tag, value in self.read_points():
            self._pending.setdefault(step, {})[tag] = value
        if not self._pending:
            return []
        ready = sorted(self._pending)
        if not final:
            ready = ready[:-1]
        return [scalars_to_metrics(step, self._pending.pop(step)) for step in ready]


def scalars_to_metrics(step: int, scalars: dict[str, float]) -> dict:
    """RAVE's scalars at one step -> the app's metrics for that step."""
    metrics: dict = {"step": int(step), **scalars}
    terms = [v for k, v in scalars.items() if is_generator_term(k)]
    if terms:
        metrics["loss"] = float(sum(terms))
    if "validation" in scalars:
        metrics["val_loss"] = scalars["validation"]
    for tag in LR_TAGS:
        if tag in scalars:
            metrics["lr"] = scalars[tag]
            break
    return metrics
