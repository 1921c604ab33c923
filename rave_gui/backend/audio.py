"""The validation audio of a RAVE run: read it, follow it, save it as WAV.

At every validation RAVE 2.3.1 writes one ``audio_val`` audio event: a 16-bit
mono WAV holding up to 8 validation examples, each the original followed by its
reconstruction (``2 * n_signal`` samples per channel). A multichannel run lays
the channels end to end in the same mono stream: per example, channel 0's
original and reconstruction, then channel 1's, ... (``model.py``:
``torch.cat([x, y], -1)`` on ``(batch, channels, n)``, then ``reshape(-1)``).

The event's step is RAVE's own validation counter (0, 1, 2, ... and 0 again in
every resumed process), so the global step comes from the ``validation`` scalar
Lightning logs right after it in the same file (a few milliseconds later in a
real run; a writer that gives both the same wall time may write it first). An
audio event is paired with the unused ``validation`` scalar nearest in wall time
that lies between the previous and the next audio event of its file.

Only where each audio event lies is kept (file, byte offset): ``Validation.pairs``
reads and decodes it when asked, so a run with hundreds of validations costs
little memory. ``ValidationAudioFollower.poll()`` reads what was appended since
the last poll; a record cut by a flush in progress waits for the next one.
"""
from __future__ import annotations

import io
import os
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from rave_gui.backend.events import _HEADER, _scalar, version_dirs
from rave_gui.backend.rave_catalogue import N_SIGNAL

AUDIO_TAG = "audio_val"
VALIDATION_TAG = "validation"
_AUDIO_B, _VALIDATION_B = AUDIO_TAG.encode(), VALIDATION_TAG.encode()
_TAG_WINDOW = 256        # a summary value's tag comes in the first bytes of its event
_CHUNK = 1 << 22
_INT16_MAX = 32767.0


@dataclass(frozen=True)
class Validation:
    """One validation's audio. ``step`` is the global step (None when the
    ``validation`` scalar never reached the file, e.g. a process killed between
    the two); ``counter`` is RAVE's own validation number in its process."""
    step: int | None
    counter: int
    version: int
    wall_time: float
    sample_rate: int
    val_loss: float | None
    frames: int
    n_signal: int
    channels: int
    path: Path = field(repr=False)
    offset: int = field(repr=False)

    @property
    def fits(self) -> bool:
        """Whether the audio is a whole number of ``n_signal`` examples."""
        block = 2 * self.n_signal * self.channels
        return self.n_signal > 0 and self.frames >= block and self.frames % block == 0

    @property
    def examples(self) -> int:
        return self.frames // (2 * self.n_signal * self.channels) if self.fits else 1

    @property
    def channels_note(self) -> str:
        notes = []
        if not self.fits:
            notes.append(f"The audio ({self.frames:,} samples) is not a whole number of examples of "
                         f"n_signal = {self.n_signal:,} samples x {self.channels} channel(s): check the run's "
                         "--n_signal and channel count. It is shown as one example, cut in half.")
        if self.channels > 1:
            notes.append(f"RAVE wrote the {self.channels} channels end to end in one mono stream; "
                         f"they are split back into {self.channels} channels here.")
        return " ".join(notes)

    def wav_bytes(self) -> bytes:
        """The WAV as RAVE wrote it (read from the event file now)."""
        return _read_audio_record(self.path, self.offset)

    def samples(self) -> np.ndarray:
        """The whole decoded stream, float32 in [-1, 1] (mono, as written)."""
        stream = decode_wav(self.wav_bytes())[0]
        return stream[0] if stream.shape[0] == 1 else stream.T.reshape(-1)

    @property
    def pairs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(original, reconstruction)`` per example, read from disk at each call
        (keep the result rather than asking twice). Mono: arrays of shape (n,);
        multichannel: (channels, n)."""
        return split_pairs(self.samples(), self.n_signal, self.channels)


def split_pairs(stream: np.ndarray, n_signal: int, channels: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """RAVE's validation stream -> ``(original, reconstruction)`` per example."""
    channels = max(1, int(channels))
    block = 2 * n_signal * channels
    if n_signal <= 0 or stream.size < block or stream.size % block:
        n = stream.size // (2 * channels)           # not whole examples: one, cut in half
        blocks = stream[: 2 * channels * n].reshape(1, channels, 2, n)
    else:
        blocks = stream.reshape(-1, channels, 2, n_signal)
    if channels == 1:
        return [(b[0, 0], b[0, 1]) for b in blocks]
    return [(np.ascontiguousarray(b[:, 0]), np.ascontiguousarray(b[:, 1])) for b in blocks]


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV -> (float32 array of shape (channels, frames) in [-1, 1], sample rate)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit PCM audio, got {8 * wav.getsampwidth()}-bit")
        channels, rate = wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    ints = np.frombuffer(raw, dtype="<i2")
    ints = ints[: ints.size - ints.size % channels]
    out = ints.astype(np.float32) / np.float32(_INT16_MAX)
    np.clip(out, -1.0, 1.0, out=out)
    return out.reshape(-1, channels).T, rate


def save_wav(path: str | Path, samples, sample_rate: int) -> Path:
    """Write ``samples`` (shape (n,) or (channels, n), floats in [-1, 1]) as a
    16-bit PCM WAV, atomically: a temp file beside ``path``, then ``os.replace``."""
    path = Path(path)
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[0] < 1:
        raise ValueError("samples must have shape (n,) or (channels, n)")
    ints = np.round(np.clip(np.nan_to_num(data), -1.0, 1.0) * _INT16_MAX).astype("<i2")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with wave.open(fh, "wb") as wav:
                wav.setnchannels(ints.shape[0])
                wav.setsampwidth(2)
                wav.setframerate(int(sample_rate))
                wav.writeframes(np.ascontiguousarray(ints.T).tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_validation_audio(run_dir: str | Path, n_signal: int = N_SIGNAL, channels: int = 1) -> list[Validation]:
    """Every validation of a run folder (all ``version_*``), oldest first."""
    return ValidationAudioFollower(run_dir, n_signal, channels).poll(final=True)


# -- following the event files -----------------------------------------------------------------

@dataclass
class _Audio:
    index: int          # record number in its file
    offset: int         # byte offset of the record
    wall_time: float
    counter: int
    sample_rate: int
    frames: int


@dataclass
class _Scalar:
    index: int
    wall_time: float
    step: int
    value: float
    used: bool = False


@dataclass
class _FileState:
    path: Path
    version: int
    offset: int = 0
    records: int = 0
    last_audio: int = -1                     # record number of the last audio event returned
    pending: list[_Audio] = field(default_factory=list)
    scalars: list[_Scalar] = field(default_factory=list)


class ValidationAudioFollower:
    """Reads a run's validation audio incrementally: ``poll()`` returns the
    validations that became complete since the last poll, each once, oldest first.

    An audio event waits for its ``validation`` scalar; it is returned without a
    step (``step=None``) when the next audio event of its file comes first, when
    a newer event file exists (its process ended), or on ``poll(final=True)``."""

    def __init__(self, run_dir: str | Path | None, n_signal: int = N_SIGNAL, channels: int = 1):
        self.run_dir = Path(run_dir) if run_dir else None
        self.n_signal = int(n_signal)
        self.channels = max(1, int(channels))
        self.skipped = 0                     # records that could not be decoded
        self._files: dict[Path, _FileState] = {}

    def _event_files(self) -> list[tuple[int, Path]]:
        if self.run_dir is None:
            return []
        found = []
        for folder in version_dirs(self.run_dir):
            version = int(folder.name.rsplit("_", 1)[1])
            found += [(version, p) for p in sorted(folder.glob("events.out.tfevents.*")) if p.is_file()]
        return found

    def poll(self, final: bool = False) -> list[Validation]:
        files = self._event_files()
        out: list[Validation] = []
        for rank, (version, path) in enumerate(files):
            state = self._files.get(path)
            if state is None:
                state = self._files[path] = _FileState(path, version)
            self._scan(state)
            out += self._resolve(state, final or rank < len(files) - 1)
        return out

    # reading ------------------------------------------------------------------------------

    def _scan(self, state: _FileState) -> None:
        try:
            fh = open(state.path, "rb")
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return
        with fh:
            fh.seek(state.offset)
            buf, base, pos = b"", state.offset, 0
            while True:
                need = 12 if len(buf) - pos < 12 else 16 + _HEADER.unpack_from(buf, pos)[0]
                if len(buf) - pos < need:
                    more = fh.read(max(_CHUNK, need - (len(buf) - pos)))
                    if not more:
                        break                # a half-written record: wait for the rest
                    buf, base, pos = buf[pos:] + more, base + pos, 0
                    continue
                start, end = pos + 12, pos + need - 4
                self._record(state, buf, start, end, base + pos)
                pos += need
                state.offset = base + pos
                state.records += 1

    def _record(self, state: _FileState, buf: bytes, start: int, end: int, offset: int) -> None:
        window = min(end, start + _TAG_WINDOW)
        is_audio = buf.find(_AUDIO_B, start, window) != -1
        if not is_audio and buf.find(_VALIDATION_B, start, window) == -1:
            return
        try:
            event = event_pb2.Event.FromString(memoryview(buf)[start:end])
        except DecodeError:
            self.skipped += 1
            return
        for value in event.summary.value:
            if value.tag == AUDIO_TAG and value.WhichOneof("value") == "audio":
                audio = value.audio
                frames = (int(audio.length_frames) * max(1, int(audio.num_channels))
                          or _wav_frames(audio.encoded_audio_string))
                state.pending.append(_Audio(state.records, offset, float(event.wall_time), int(event.step),
                                            int(round(audio.sample_rate)) or _wav_rate(audio.encoded_audio_string),
                                            frames))
                return
            if value.tag == VALIDATION_TAG:
                number = _scalar(value)
                if number is not None:
                    state.scalars.append(_Scalar(state.records, float(event.wall_time), int(event.step), number))
                return

    # pairing ------------------------------------------------------------------------------

    def _resolve(self, state: _FileState, final: bool) -> list[Validation]:
        out = []
        pending = state.pending
        while pending:
            audio = pending[0]
            following = pending[1].index if len(pending) > 1 else None
            candidates = [s for s in state.scalars if not s.used and s.index > state.last_audio
                          and (following is None or s.index < following)]
            ready = final or following is not None or any(
                s.index > audio.index or s.wall_time == audio.wall_time for s in candidates)
            if not ready:
                break                        # its scalar is still on its way
            best = min(candidates, key=lambda s: (abs(s.wall_time - audio.wall_time), s.index), default=None)
            if best is not None:
                best.used = True
            out.append(Validation(
                step=best.step if best else None, counter=audio.counter, version=state.version,
                wall_time=audio.wall_time, sample_rate=audio.sample_rate,
                val_loss=best.value if best else None, frames=audio.frames, n_signal=self.n_signal,
                channels=self.channels, path=state.path, offset=audio.offset))
            pending.pop(0)
            state.last_audio = audio.index
            state.scalars = [s for s in state.scalars if s.index > audio.index]
        return out


def _read_audio_record(path: Path, offset: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        header = fh.read(12)
        if len(header) < 12:
            raise ValueError(f"{path.name}: the audio event at byte {offset} is missing")
        length = _HEADER.unpack(header)[0]
        data = fh.read(length)
    if len(data) < length:
        raise ValueError(f"{path.name}: the audio event at byte {offset} is cut short")
    event = event_pb2.Event.FromString(data)
    for value in event.summary.value:
        if value.tag == AUDIO_TAG and value.WhichOneof("value") == "audio":
            return value.audio.encoded_audio_string
    raise ValueError(f"{path.name}: no {AUDIO_TAG} audio at byte {offset}")


def _wav_frames(data: bytes) -> int:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() * wav.getnchannels()
    except (wave.Error, EOFError):
        return 0


def _wav_rate(data: bytes) -> int:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getframerate()
    except (wave.Error, EOFError):
        return 0


# -- for display and playback (numpy only) ------------------------------------------------------

def envelope(samples: np.ndarray, buckets: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min and max of ``samples`` (shape (n,)) over ``buckets`` equal runs: ``(first
    sample index of each run, mins, maxs)``, so a waveform of any length draws in
    ``2 * buckets`` points with every peak kept."""
    x = np.asarray(samples, dtype=np.float32).ravel()
    if x.size == 0:
        return np.zeros(0), np.zeros(0, np.float32), np.zeros(0, np.float32)
    size = max(1, -(-x.size // max(1, buckets)))
    pad = (-x.size) % size
    padded = np.concatenate([x, np.full(pad, x[-1], np.float32)]) if pad else x
    runs = padded.reshape(-1, size)
    return np.arange(runs.shape[0]) * size, runs.min(axis=1), runs.max(axis=1)


def spectrogram_db(samples: np.ndarray, n_fft: int = 1024, max_frames: int = 400) -> np.ndarray:
    """Magnitude spectrogram in dB (shape (n_fft // 2 + 1, frames), at most
    ``max_frames`` frames: the hop grows with the length). Multichannel input
    (channels, n) is mixed down first."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim > 1:
        x = x.mean(axis=0)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    hop = max(n_fft // 4, -(-(x.size - n_fft) // max(1, max_frames - 1)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1))
    return (20.0 * np.log10(spectrum + 1e-6)).T.astype(np.float32)


def to_pcm(samples: np.ndarray, sample_rate: int, rate: int | None = None, channels: int | None = None,
           sample_format: str = "int16") -> bytes:
    """Interleaved PCM bytes for an audio output: ``samples`` (shape (n,) or
    (channels, n), floats in [-1, 1]) resampled to ``rate`` (linear
    interpolation: a preview, not a master) and spread or mixed to ``channels``.
    ``sample_format``: "int16", "int32", "float" or "uint8"."""
    x = np.asarray(samples, dtype=np.float32)
    x = x[None, :] if x.ndim == 1 else x
    channels = channels or x.shape[0]
    if channels != x.shape[0]:
        if x.shape[0] == 1:
            x = np.repeat(x, channels, axis=0)
        elif channels < x.shape[0]:
            x = np.repeat(x.mean(axis=0, keepdims=True), channels, axis=0)
        else:
            x = np.concatenate([x, np.zeros((channels - x.shape[0], x.shape[1]), np.float32)])
    if rate and rate != sample_rate and x.shape[1] > 1:
        n = max(1, int(round(x.shape[1] * rate / sample_rate)))
        where = np.linspace(0, x.shape[1] - 1, n)
        x = np.stack([np.interp(where, np.arange(x.shape[1]), row) for row in x]).astype(np.float32)
    x = np.clip(np.nan_to_num(x), -1.0, 1.0).T          # frames x channels: interleaved
    if sample_format == "float":
        return np.ascontiguousarray(x, "<f4").tobytes()
    if sample_format == "int32":
        return np.round(x.astype(np.float64) * 2147483647).astype("<i4").tobytes()
    if sample_format == "uint8":
        return np.round(x * 127 + 128).astype(np.uint8).tobytes()
    return np.round(x * _INT16_MAX).astype("<i2").tobytes()
