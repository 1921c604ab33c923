"""Synthetic audio for end-to-end tests: a few seconds of tones and noise."""
from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np


def write_tone_wav(path: Path, seconds: float = 4.0, sr: int = 44100, channels: int = 1,
                   freq: float = 220.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    base = 0.4 * np.sin(2 * math.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * math.pi * 0.5 * t))
    frames = []
    for ch in range(channels):
        sig = base * (1.0 if ch == 0 else 0.7) + 0.05 * rng.standard_normal(t.size)
        frames.append(np.clip(sig, -1, 1))
    data = (np.stack(frames, axis=1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sr)
        wav.writeframes(data.tobytes())
    return path


def make_audio_folder(folder: Path, files: int = 3, seconds: float = 4.0, channels: int = 1) -> Path:
    for i in range(files):
        write_tone_wav(folder / f"tone_{i}.wav", seconds, channels=channels, freq=110.0 * (i + 2), seed=i)
    return folder
