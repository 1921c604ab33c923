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
_FLOAT = struct.Struct("<f")
_VERSION_RE = re.compile(r"version_(\d+)$")
GENERATOR_TERMS = {"regularization", "feature_matching", "adversarial"}
LR_TAGS = ("lr-Adam", "lr-Adam/pg1")

# The bytes of an event as ``SummaryWriter.add_scalar`` writes it (every scalar
# RAVE and Lightning log): Event{wall_time (1, double), step (2, varint),
# summary (5){value (1){tag (1), simple_value (2, float)}}}, with one-byte
# lengths. Matching this with one regex call and decoding three fields by hand
# is about three times faster than building the protobuf objects; any other
# event (text, audio, the file header, long tags) goes through ``event_pb2``.
_SCALAR_EVENT_RE = re.compile(
    rb"\x09.{8}\x10([\x80-\xff]{0,9}[\x00-\x7f])\x2a([\x00-\x7f])\x0a([\x00-\x7f])\x0a([\x00-\x7f])"
    rb"(.*)\x15(.{4})", re.DOTALL)


def is_generator_term(tag: str) -> bool:
    return tag in GENERATOR_TERMS or tag.endswith("_distance")


def _varint(raw: bytes) -> int:
    value = 0
    for shift, byte in enumerate(raw):
        value |= (byte & 0x7F) << (7 * shift)
    return value - (1 << 64) if value >= 1 << 63 else value  # int64


class EventFileReader:
    """Reads the scalars appended to one event file since the last call.

    ``offset`` is the end of the last whole record read: a record cut in half
    by a flush still in progress is left for the next call. CRCs are not
    checked (the writer is a live local process, not a network)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> list[tuple[int, str, float]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except (FileNotFoundError, IsADirectoryError):
            return []
        points: list[tuple[int, str, float]] = []
        append = points.append
        header, fullmatch, unpack_float = _HEADER.unpack_from, _SCALAR_EVENT_RE.fullmatch, _FLOAT.unpack_from
        tags: dict[bytes, str] = {}
        last_raw, last_step = b"", 0
        view = memoryview(data)
        pos, size = 0, len(data)
        while pos + 12 <= size:
            length = header(data, pos)[0]
            start = pos + 12
            end = start + length
            if end + 4 > size:
                break  # half-written record: wait for the rest
            match = fullmatch(data, start, end)
            if match is not None:
                raw_step, summary_len, value_len, tag_len, raw_tag, raw_value = match.groups()
                n = tag_len[0]
                if len(raw_tag) == n and value_len[0] == n + 7 and summary_len[0] == n + 9:
                    if raw_step != last_raw:
                        last_raw, last_step = raw_step, raw_step[0] if len(raw_step) == 1 else _varint(raw_step)
                    tag = tags.get(raw_tag)
                    if tag is None:
                        tag = tags[raw_tag] = raw_tag.decode("utf-8", "replace")
                    append((last_step, tag, unpack_float(raw_value)[0]))
                    pos = end + 4
                    continue
            event = event_pb2.Event.FromString(view[start:end])
            if event.HasField("summary"):
                for value in event.summary.value:
                    number = _scalar(value)
                    if number is not None:
                        append((event.step, value.tag, number))
            pos = end + 4
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

    ``poll()`` returns metric dicts (one per step, in increasing step order,
    each step once) for the steps that are complete. The writer flushes in
    bursts, so the newest step of the file being written (the last file of
    the newest ``version_N``) is held back until that file logs a later step,
    or until ``poll(final=True)``.

    Versions are stitched as TensorBoard does when a run restarts: a resumed
    run (``version_N+1``) re-logs the steps after its checkpoint, and its
    points replace the older versions' points from its first step on; where the
    older version stopped at that very step (a stop checkpoint), both are merged
    there, the newer winning per tag (the older version's validation at the
    checkpoint's step belongs to the branch that survives). ``resume_from``
    (the step a resumed process starts from) drops the older versions' points
    after it at once: that branch was abandoned. A point that arrives for a step
    already returned (RAVE writes a validation after the next step's losses) is
    returned again in a dict of that step with every tag known for it (``late``);
    any other point for a step already returned is dropped (``dropped``).
    """

    #: how many returned steps are remembered for late points
    LATE_WINDOW = 256

    def __init__(self, run_dir: str | Path | None = None, resume_from: int | None = None):
        self.run_dir = Path(run_dir) if run_dir else None
        self.resume_from = resume_from
        #: the versions written before this (resumed) process: after ``resume_from`` they are abandoned
        self._older = set(version_dirs(self.run_dir)) if resume_from is not None and self.run_dir else set()
        self.dropped = 0
        self._readers: dict[Path, EventFileReader] = {}
        self._pending: dict[int, dict[str, float]] = {}
        self._source: dict[int, int] = {}      # step -> rank of the file its pending scalars came from
        self._first: dict[Path, int] = {}      # the first step each file logged
        self._newest: dict[Path, int] = {}     # the largest step each file logged
        self._emitted: int | None = None       # the last step returned
        self._recent: dict[int, tuple[int, dict[str, float]]] = {}  # returned step -> (rank, scalars)
        self.late = 0                          # points returned again for a step already returned
        self.late_only: dict[int, dict] = {}

    def _files(self) -> list[Path]:
        if self.run_dir is None:
            return []
        files = []
        for version in version_dirs(self.run_dir):
            files += sorted(version.glob("events.out.tfevents.*"))
        return files

    def _read(self, path: Path) -> list[tuple[int, str, float]]:
        reader = self._readers.get(path)
        if reader is None:
            reader = self._readers[path] = EventFileReader(path)
        points = reader.read_new()
        if points:
            steps = [p[0] for p in points]
            self._first.setdefault(path, min(steps))
            self._newest[path] = max(self._newest.get(path, steps[0]), max(steps))
        return points

    def read_points(self) -> list[tuple[int, str, float]]:
        """Every scalar appended since the last read, file by file, unstitched."""
        return [point for path in self._files() for point in self._read(path)]

    def poll(self, final: bool = False, complete_through: int | None = None) -> list[dict]:
        """``complete_through``: the writer has finished every step up to this one (the
        launcher's step lines say so), so those are returned without waiting for a
        later step to be logged."""
        files = self._files()
        pending, source, emitted = self._pending, self._source, self._emitted
        floor = emitted if emitted is not None else float("-inf")
        recent, late = self._recent, {}
        for rank, path in enumerate(files):
            last_step, scalars = None, None
            first = None
            for step, tag, value in self._read(path):
                if step == last_step:              # the tags of one step come one after another
                    scalars[tag] = value
                    continue
                last_step, scalars = None, None
                if step <= floor:
                    seen = recent.get(step)
                    if seen is None or rank != seen[0]:
                        self.dropped += 1
                        continue
                    scalars = late.setdefault(step, {})  # a late point of a step already returned
                    scalars[tag] = value
                    last_step = step
                    continue
                if self._older and step > self.resume_from and path.parent in self._older:
                    # the abandoned branch of a version written before this resumed process
                    self.dropped += 1
                    continue
                src = source.get(step)
                if first is None:
                    first = self._first.get(path)
                if src == rank:
                    scalars = pending[step]
                elif src is None or src < rank:    # a newer version replaces an older one...
                    # ...merged where the older one stopped at the newer one's first step
                    keep = src is not None and step == first and self._newest.get(files[src], step + 1) <= step
                    scalars = pending[step] = dict(pending[step]) if keep else {}
                    source[step] = rank
                else:                              # an older version, superseded
                    self.dropped += 1
                    continue
                scalars[tag] = value
                last_step = step
        # a version's first step supersedes the older versions from that step on
        cut, lowest = [None] * len(files), None
        for rank in range(len(files) - 1, -1, -1):
            cut[rank] = lowest
            first = self._first.get(files[rank])
            if first is not None and (lowest is None or first < lowest):
                lowest = first
        for step in [s for s, r in source.items() if r < len(cut) and cut[r] is not None and s >= cut[r]]:
            del pending[step], source[step]
            self.dropped += 1
        again = []
        #: this poll's late points alone, per step (what a plot that has the step already lacks)
        self.late_only: dict[int, dict] = {}
        for step, scalars in late.items():
            rank, known = recent[step]
            known = {**known, **scalars}
            recent[step] = (rank, known)
            self.late += len(scalars)
            again.append(scalars_to_metrics(step, known))
            only = scalars_to_metrics(step, scalars)
            if any(is_generator_term(tag) for tag in scalars):
                only["loss"] = again[-1]["loss"]
            self.late_only[step] = only
        if not pending:
            return again
        steps = sorted(pending)
        count = len(steps)
        if not final:
            active = len(files) - 1
            started = files[-1] in self._first if files else False
            newest = self._newest.get(files[-1]) if files else None
            count = 0
            for step in steps:
                if source[step] < active:
                    if not started:    # the running version may still replace it
                        break
                elif (newest is None or step >= newest) and not (
                        complete_through is not None and started and step <= complete_through):
                    break
                count += 1
        if count:
            self._emitted = steps[count - 1]
        out = again + [scalars_to_metrics(step, pending[step]) for step in steps[:count]]
        for step in steps[:count]:
            recent[step] = (source[step], pending[step])
        if len(recent) > self.LATE_WINDOW:
            for step in sorted(recent)[:len(recent) - self.LATE_WINDOW]:
                del recent[step]
        # new dicts rather than deletions: a dict emptied after a large first read keeps its
        # capacity, and every later poll would pay for iterating it
        self._pending = {step: pending[step] for step in steps[count:]}
        self._source = {step: source[step] for step in steps[count:]}
        return out


_TERM_CACHE: dict[str, bool] = {}


def scalars_to_metrics(step: int, scalars: dict[str, float]) -> dict:
    """RAVE's scalars at one step -> the app's metrics for that step."""
    metrics: dict = {"step": int(step), **scalars}
    cache = _TERM_CACHE
    terms = []
    for key, value in scalars.items():
        term = cache.get(key)
        if term is None:
            term = is_generator_term(key)
            if len(cache) < 10_000:
                cache[key] = term
        if term:
            terms.append(value)
    if terms:
        metrics["loss"] = float(sum(terms))
    if "validation" in scalars:
        metrics["val_loss"] = scalars["validation"]
    for tag in LR_TAGS:
        if tag in scalars:
            metrics["lr"] = scalars[tag]
            break
    return metrics
