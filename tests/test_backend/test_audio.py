"""Validation audio (rave_gui.backend.audio).

The reference is tensorboard's own ``EventAccumulator`` (``size_guidance={AUDIO: 0}``,
else it keeps 4 audio events) on the real event file of a RAVE 2.3.1 run
(fixtures/rave/smoke_run: three validations, the ``validation`` scalar 11 ms after
each audio event) and on files written with torch's ``SummaryWriter``, the writer
Lightning's TensorBoardLogger uses, including a resumed run whose two processes
both count their validations from 0.
"""
from __future__ import annotations

import io
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import AUDIO, EventAccumulator

from rave_gui.backend.audio import (
    Validation, ValidationAudioFollower, decode_wav, envelope, read_validation_audio, save_wav,
    spectrogram_db, split_pairs, to_pcm,
)
from rave_gui.backend.events import _HEADER

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "rave" / "smoke_run"
N = 2048          # a small n_signal keeps the generated files small
TOL = 1.0 / 32767


# -- helpers ----------------------------------------------------------------------------------

def accumulate(path: Path):
    ea = EventAccumulator(str(path), size_guidance={AUDIO: 0})
    ea.Reload()
    audio = ea.Audio("audio_val") if "audio_val" in ea.Tags()["audio"] else []
    scalars = ea.Scalars("validation") if "validation" in ea.Tags()["scalars"] else []
    return audio, scalars


def wav_samples(data: bytes) -> np.ndarray:
    """An independent decode: the int16 frames of a mono WAV, as float."""
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0


def rave_stream(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """What RAVE's validation_epoch_end writes: cat([x, y], -1)[:8].reshape(-1) on (batch, channels, n)."""
    return np.concatenate([originals, reconstructions], -1)[:8].reshape(-1).astype(np.float32)


def write_run(folder: Path, validations, examples=2, channels=1, n=N, sr=44100, audio_first=True,
              seed=0, scalar_delay=0.0):
    """A version folder written by torch's SummaryWriter as RAVE + Lightning write it:
    per validation, the audio event (step = the validation counter, from 0) and the
    ``validation`` scalar (step = the global step), plus training scalars around them.
    Returns the (originals, reconstructions) written, per validation."""
    from torch.utils.tensorboard import SummaryWriter
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(folder))
    written = []
    for counter, (step, loss, wall) in enumerate(validations):
        x = rng.uniform(-0.9, 0.9, (examples, channels, n)).astype(np.float32)
        y = rng.uniform(-0.9, 0.9, (examples, channels, n)).astype(np.float32)
        writer.add_scalar("multiband_spectral_distance", 2.0, step - 1, walltime=wall - 1)
        scalar = lambda: writer.add_scalar("validation", loss, step, walltime=wall + scalar_delay)  # noqa: E731
        if not audio_first:
            scalar()
        writer.add_audio("audio_val", rave_stream(x, y), counter, sr, walltime=wall)
        if audio_first:
            scalar()
        writer.add_scalar("fidelity_0.9", 3.0, step, walltime=wall + scalar_delay)
        written.append((x, y))
    writer.close()
    return written


def event_file(folder: Path) -> Path:
    return next(folder.glob("events.out.tfevents.*"))


def record_ends(data: bytes) -> list[int]:
    ends, pos = [], 0
    while pos + 12 <= len(data):
        pos += 16 + _HEADER.unpack_from(data, pos)[0]
        ends.append(pos)
    return ends


def assert_matches_accumulator(validations: list[Validation], path: Path):
    audio, scalars = accumulate(path)
    assert len(validations) == len(audio)
    for v, a in zip(validations, audio):
        assert v.counter == a.step and v.wall_time == pytest.approx(a.wall_time)
        assert v.sample_rate == int(a.sample_rate) and v.frames == a.length_frames
        assert v.wav_bytes() == a.encoded_audio_string
        expected = wav_samples(a.encoded_audio_string)
        np.testing.assert_allclose(v.samples(), expected, atol=1e-6)
        pairs = v.pairs
        stream = np.concatenate([np.concatenate([o, r]) for o, r in pairs])
        np.testing.assert_allclose(stream, expected, atol=1e-6)
    return audio, scalars


# -- the real RAVE run --------------------------------------------------------------------------

def test_real_rave_run_matches_event_accumulator():
    validations = read_validation_audio(FIXTURE_RUN, n_signal=131072)
    audio, scalars = assert_matches_accumulator(validations, next((FIXTURE_RUN / "version_0").glob("events.*")))
    assert len(validations) == 3
    # the global step comes from the validation scalar written right after each audio event
    assert [v.step for v in validations] == [s.step for s in scalars] == [1, 3, 5]
    assert [v.counter for v in validations] == [0, 1, 2]
    assert [v.val_loss for v in validations] == pytest.approx([s.value for s in scalars])
    for v in validations:
        assert (v.version, v.sample_rate, v.examples, v.channels_note) == (0, 44100, 1, "")
        (original, reconstruction), = v.pairs
        assert original.dtype == np.float32 and original.shape == reconstruction.shape == (131072,)
        assert np.abs(original).max() <= 1.0 and np.abs(original).max() > 0.01


# -- generated runs ------------------------------------------------------------------------------

def test_resumed_run_maps_each_counter_to_its_global_step(tmp_path):
    run = tmp_path / "run"
    first = write_run(run / "version_0", [(29, 3.0, 1000.0), (59, 2.5, 1100.0)], seed=1)
    second = write_run(run / "version_1", [(89, 2.0, 2000.0), (119, 1.5, 2100.0)], seed=2)
    validations = read_validation_audio(run, n_signal=N)
    assert [(v.version, v.counter, v.step) for v in validations] == [(0, 0, 29), (0, 1, 59), (1, 0, 89), (1, 1, 119)]
    assert [v.val_loss for v in validations] == pytest.approx([3.0, 2.5, 2.0, 1.5])
    assert_matches_accumulator(validations[:2], event_file(run / "version_0"))
    assert_matches_accumulator(validations[2:], event_file(run / "version_1"))
    for v, (x, y) in zip(validations, first + second):
        assert v.examples == 2 and v.sample_rate == 44100
        for i, (original, reconstruction) in enumerate(v.pairs):
            np.testing.assert_allclose(original, x[i, 0], atol=TOL)
            np.testing.assert_allclose(reconstruction, y[i, 0], atol=TOL)


@pytest.mark.parametrize("audio_first", [True, False])
def test_the_scalar_may_come_before_or_after_the_audio(tmp_path, audio_first):
    run = tmp_path / "run"
    write_run(run / "version_0", [(10, 1.0, 500.0), (20, 0.5, 600.0), (30, 0.25, 700.0)], audio_first=audio_first)
    assert [(v.counter, v.step) for v in read_validation_audio(run, N)] == [(0, 10), (1, 20), (2, 30)]


def test_multichannel_stream_is_split_into_channels(tmp_path):
    run = tmp_path / "run"
    (x, y), = write_run(run / "version_0", [(30, 1.0, 100.0)], examples=3, channels=2)
    v, = read_validation_audio(run, n_signal=N, channels=2)
    assert v.examples == 3 and "2 channels end to end" in v.channels_note
    for i, (original, reconstruction) in enumerate(v.pairs):
        assert original.shape == reconstruction.shape == (2, N)
        np.testing.assert_allclose(original, x[i], atol=TOL)
        np.testing.assert_allclose(reconstruction, y[i], atol=TOL)


def test_a_wrong_n_signal_gives_one_example_and_a_note(tmp_path):
    run = tmp_path / "run"
    write_run(run / "version_0", [(30, 1.0, 100.0)], examples=1, n=N)
    v, = read_validation_audio(run, n_signal=3000)
    assert v.examples == 1 and "n_signal" in v.channels_note
    (original, reconstruction), = v.pairs
    assert original.size == reconstruction.size == N


def test_split_pairs_is_rave_layout():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    y = -x
    pairs = split_pairs(rave_stream(x, y), 4, 3)
    assert len(pairs) == 2
    for i, (o, r) in enumerate(pairs):
        np.testing.assert_array_equal(o, x[i])
        np.testing.assert_array_equal(r, y[i])


# -- incremental reading --------------------------------------------------------------------------

def test_polling_returns_each_validation_once_and_waits_for_cut_records(tmp_path):
    source = tmp_path / "source"
    write_run(source, [(10, 1.0, 100.0), (20, 0.9, 200.0), (30, 0.8, 300.0)], scalar_delay=0.01)
    data = event_file(source).read_bytes()
    ends = record_ends(data)
    assert ends[-1] == len(data)
    audio, _ = accumulate(event_file(source))
    run = tmp_path / "run" / "version_0"
    run.mkdir(parents=True)
    target = run / event_file(source).name
    follower = ValidationAudioFollower(run.parent, n_signal=N)
    assert follower.poll() == []                        # no file yet
    got = []
    # grow the file a piece at a time, cutting every record in half on the way
    cuts = sorted({0, *ends} | {(a + b) // 2 for a, b in zip([0] + ends, ends)})
    for cut in cuts:
        target.write_bytes(data[:cut])
        new = follower.poll()
        for v in new:
            # an audio event is returned only once its validation scalar is in
            assert v.step is not None
        got += new
    assert [(v.counter, v.step) for v in got] == [(0, 10), (1, 20), (2, 30)]
    assert [v.wav_bytes() for v in got] == [a.encoded_audio_string for a in audio]
    assert follower.poll() == [] and follower.poll(final=True) == []


def test_a_live_writer_appending_between_polls(tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    folder = tmp_path / "run" / "version_0"
    writer = SummaryWriter(str(folder))
    follower = ValidationAudioFollower(folder.parent, n_signal=N)
    rng = np.random.default_rng(3)
    try:
        for counter, step in enumerate((50, 100, 150)):
            writer.add_audio("audio_val", rng.uniform(-0.5, 0.5, 2 * N).astype(np.float32), counter, 44100)
            writer.flush()
            assert follower.poll() == []                # audio in, its scalar not yet
            writer.add_scalar("validation", 1.0 / step, step)
            writer.flush()
            new = follower.poll()
            assert [(v.counter, v.step) for v in new] == [(counter, step)]
            assert new[0].val_loss == pytest.approx(1.0 / step)
    finally:
        writer.close()


def test_audio_without_its_scalar_is_returned_without_a_step(tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    run = tmp_path / "run"
    writer = SummaryWriter(str(run / "version_0"))
    stream = np.zeros(2 * N, np.float32)
    writer.add_audio("audio_val", stream, 0, 44100, walltime=10.0)     # killed before its scalar...
    writer.add_audio("audio_val", stream, 1, 44100, walltime=20.0)     # (or a second one came first)
    writer.add_scalar("validation", 0.5, 40, walltime=20.01)
    writer.add_audio("audio_val", stream, 2, 44100, walltime=30.0)     # the file ends here
    writer.close()
    follower = ValidationAudioFollower(run, n_signal=N)
    assert [(v.counter, v.step) for v in follower.poll()] == [(0, None), (1, 40)]
    assert [(v.counter, v.step) for v in follower.poll(final=True)] == [(2, None)]
    # a newer version means the older process ended: its last audio is returned too
    follower = ValidationAudioFollower(run, n_signal=N)
    write_run(run / "version_1", [(60, 0.4, 50.0)])
    assert [(v.version, v.counter, v.step) for v in follower.poll()] == [(0, 0, None), (0, 1, 40), (0, 2, None),
                                                                         (1, 0, 60)]


def test_missing_and_empty_runs(tmp_path):
    assert read_validation_audio(tmp_path / "nope") == []
    (tmp_path / "run" / "version_0").mkdir(parents=True)
    assert read_validation_audio(tmp_path / "run") == []
    assert ValidationAudioFollower(None).poll() == []


def test_a_copy_of_the_real_run_read_in_pieces(tmp_path):
    """The real file, grown in 100 kB steps, gives what one full read gives."""
    src = next((FIXTURE_RUN / "version_0").glob("events.*"))
    run = tmp_path / "run" / "version_0"
    run.mkdir(parents=True)
    shutil.copy(FIXTURE_RUN / "config.gin", run.parent)
    data = src.read_bytes()
    follower = ValidationAudioFollower(run.parent, n_signal=131072)
    got = []
    for cut in list(range(0, len(data), 100_000)) + [len(data)]:
        (run / src.name).write_bytes(data[:cut])
        got += follower.poll()
    assert [(v.counter, v.step, v.offset) for v in got] == \
        [(v.counter, v.step, v.offset) for v in read_validation_audio(FIXTURE_RUN, 131072)]


# -- WAV export ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4000,), (2, 4000)])
def test_save_wav_round_trip(tmp_path, shape):
    samples = np.random.default_rng(4).uniform(-1, 1, shape).astype(np.float32)
    samples.flat[0], samples.flat[1] = 1.0, -1.0
    path = save_wav(tmp_path / "out.wav", samples, 22050)
    assert path == tmp_path / "out.wav" and [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    with wave.open(str(path)) as w:
        channels = 1 if len(shape) == 1 else shape[0]
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (channels, 2, 22050)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels).T / 32767.0
    np.testing.assert_allclose(frames.reshape(shape), samples, atol=TOL)
    back, rate = decode_wav(path.read_bytes())
    assert rate == 22050
    np.testing.assert_allclose(back.reshape(shape), samples, atol=TOL)


def test_save_wav_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "keep.wav"
    save_wav(target, np.zeros(10), 44100)
    before = target.read_bytes()
    with pytest.raises(ValueError):
        save_wav(target, np.zeros((2, 2, 2)), 44100)
    with pytest.raises(Exception):
        save_wav(target, np.zeros(10), 0)       # wave refuses a zero frame rate
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


# -- display and playback helpers ---------------------------------------------------------------

def test_envelope_keeps_every_peak():
    x = np.zeros(10_001, np.float32)
    x[1234], x[9876] = 0.9, -0.7
    starts, lo, hi = envelope(x, 100)
    assert len(starts) == len(lo) == len(hi) <= 100
    assert hi.max() == pytest.approx(0.9) and lo.min() == pytest.approx(-0.7)


def test_spectrogram_finds_a_tone():
    sr, n_fft = 44100, 1024
    t = np.arange(131072) / sr
    spec = spectrogram_db(np.sin(2 * np.pi * 1000 * t).astype(np.float32), n_fft=n_fft, max_frames=400)
    assert spec.shape[0] == n_fft // 2 + 1 and spec.shape[1] <= 400
    peak_hz = spec.mean(axis=1).argmax() * sr / n_fft
    assert abs(peak_hz - 1000) < sr / n_fft
    assert spectrogram_db(np.zeros((2, 100), np.float32)).shape[0] == n_fft // 2 + 1   # short, 2 channels


def test_to_pcm_formats_rates_and_channels():
    x = np.array([0.0, 0.5, -1.0, 1.0], np.float32)
    assert np.frombuffer(to_pcm(x, 44100), "<i2").tolist() == [0, 16384, -32767, 32767]
    stereo = np.frombuffer(to_pcm(x, 44100, channels=2), "<i2").reshape(-1, 2)
    assert (stereo[:, 0] == stereo[:, 1]).all() and len(stereo) == 4
    two = np.stack([x, -x])
    assert np.frombuffer(to_pcm(two, 44100), "<i2").reshape(-1, 2)[:, 1].tolist() == [0, -16384, 32767, -32767]
    assert np.frombuffer(to_pcm(two, 44100, channels=1, sample_format="float"), "<f4").tolist() == [0, 0, 0, 0]
    up = np.frombuffer(to_pcm(np.linspace(-1, 1, 441, dtype=np.float32), 44100, 48000, sample_format="float"), "<f4")
    assert len(up) == 480 and up[0] == -1 and up[-1] == 1 and (np.diff(up) > 0).all()
    assert np.frombuffer(to_pcm(x, 44100, sample_format="uint8"), np.uint8).tolist() == [128, 192, 1, 255]
    assert np.frombuffer(to_pcm(x, 44100, sample_format="int32"), "<i4")[3] == 2147483647
