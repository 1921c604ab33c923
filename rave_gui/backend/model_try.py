"""Hear a model on your own sound: RAVE's reconstruction (timbre transfer) of a file.

Run in a subprocess with torch, never in the GUI process::

    python -m rave_gui.backend.model_try MODEL.ts IN_AUDIO OUT.wav
        [--scale 1,1.5] [--bias 0,-0.5] [--device auto|cpu|cuda] [--input-copy IN.wav]

The audio is decoded with soundfile (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1),
else with ffmpeg, resampled to the model's rate (torchaudio) and mixed or spread
to its channels; then ``encode`` -> latent controls -> ``decode``, block by block
(a streaming model keeps its state across blocks, as in nn~; a non-streaming one
gets the whole file in one go, up to a minute per block). ``--scale``/``--bias``
act on the first latent dimensions as the RAVE VST's controls do: ``z[i] * scale[i]
+ bias[i]``. The result (and with ``--input-copy`` the input as the model heard it,
same rate and length, for an A/B) is a 16-bit WAV written atomically, as long as
the input. ``--device auto`` takes the GPU when torch sees one.

Progress lines: ``progress: PERCENT what``; last, one line of JSON: ``{"ok", "message",
"output", "input_copy", "sample_rate", "channels", "frames", "seconds", "device",
"peak", "rms"}``. Exit status 0 on success. Imports nothing from rave_gui.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

STREAM_BLOCK = 1 << 15          # samples per block for a streaming model (~0.74 s at 44.1 kHz)
WHOLE_SECONDS = 60              # a non-streaming model gets up to this much at once


def progress(percent: int, what: str) -> None:
    print(f"progress: {percent} {what}", flush=True)


class Failed(Exception):
    """The sentence for the person."""


def parse_floats(text: str | None, what: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise Failed(f"--{what} takes numbers separated by commas, not {text!r}.") from None


def read_audio(path: str):
    """(numpy float32 array (channels, frames), sample rate)."""
    import numpy as np
    if not os.path.isfile(path):
        raise Failed(f"The audio file {path} does not exist.")
    try:
        import soundfile
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(rate)
    except Exception:  # noqa: BLE001 - no soundfile, or a format it does not read: try ffmpeg
        pass
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise Failed(f"{os.path.basename(path)} could not be read (not a WAV/FLAC/OGG file soundfile knows) "
                     "and ffmpeg is not installed to decode it. Convert it to WAV, or install ffmpeg.")
    rate, channels = _probe(path)
    result = subprocess.run([ffmpeg, "-v", "error", "-i", path, "-f", "f32le", "-ac", str(channels),
                             "-ar", str(rate), "-"], capture_output=True)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Failed(f"ffmpeg could not decode {os.path.basename(path)} "
                     f"({reason[-1] if reason else 'no audio in it'}). Is it an audio file?")
    data = np.frombuffer(result.stdout, dtype="<f4").copy()
    data = data[: data.size - data.size % channels]
    return np.ascontiguousarray(data.reshape(-1, channels).T), rate


def _probe(path: str) -> tuple[int, int]:
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        out = subprocess.run([ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
                              "stream=sample_rate,channels", "-of", "json", path], capture_output=True, text=True)
        try:
            stream = json.loads(out.stdout)["streams"][0]
            return int(stream["sample_rate"]), max(1, int(stream["channels"]))
        except (ValueError, KeyError, IndexError, TypeError):
            pass
    return 44100, 1


def fit_channels(audio, channels: int):
    import numpy as np
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    if have > channels:
        return audio[:channels]
    return np.concatenate([audio, np.repeat(audio[-1:], channels - have, axis=0)])


def write_wav(path: str, audio, rate: int) -> None:
    """16-bit PCM, atomically (a temp file beside ``path``, then ``os.replace``)."""
    import numpy as np
    ints = np.round(np.clip(np.nan_to_num(audio), -1.0, 1.0) * 32767.0).astype("<i2")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            with wave.open(fh, "wb") as out:
                out.setnchannels(ints.shape[0])
                out.setsampwidth(2)
                out.setframerate(int(rate))
                out.writeframes(np.ascontiguousarray(ints.T).tobytes())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def run(args) -> dict:
    scale, bias = parse_floats(args.scale, "scale"), parse_floats(args.bias, "bias")
    progress(2, "loading torch")
    import numpy as np
    import torch
    torch.set_grad_enabled(False)
    try:
        torch._C._set_graph_executor_optimize(False)   # see model_check.no_jit_optimization
    except AttributeError:
        pass
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise Failed("No GPU is available to torch here; choose the CPU.")
    progress(8, "loading the model")
    try:
        model = torch.jit.load(args.model, map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001
        raise Failed(f"The model could not be loaded ({_short(exc)}); check it on the Models page.") from None
    for method in ("encode", "decode"):
        if not hasattr(model, method):
            raise Failed(f"The model has no {method} method: is it a RAVE export?")
    rate = int(getattr(model, "sr", 0) or 44100)
    channels = int(getattr(model, "n_channels", 0) or 1)
    try:
        ratio = int(model.encode_params[3])
    except Exception:  # noqa: BLE001
        ratio = 2048
    names = [name for name, _ in model.named_buffers()]
    streaming = any(name.endswith("cache.pad") for name in names)
    model = model.to(device)
    progress(12, "reading the audio")
    audio, in_rate = read_audio(args.input)
    if audio.size == 0:
        raise Failed(f"{os.path.basename(args.input)} holds no audio.")
    audio = fit_channels(audio, channels)
    if in_rate != rate:
        import torchaudio
        audio = torchaudio.functional.resample(torch.from_numpy(audio), in_rate, rate).numpy()
    frames = audio.shape[1]
    padded = -(-frames // ratio) * ratio
    x = torch.zeros(1, channels, padded)
    x[0, :, :frames] = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    block = STREAM_BLOCK if streaming else WHOLE_SECONDS * rate
    block = max(ratio, block // ratio * ratio)
    pieces = []
    starts = list(range(0, padded, block))
    for number, start in enumerate(starts, start=1):
        chunk = x[..., start:start + block].to(device)
        try:
            z = model.encode(chunk)
            n = min(len(scale), z.shape[1])
            for i in range(n):
                z[:, i] = z[:, i] * scale[i]
            n = min(len(bias), z.shape[1])
            for i in range(n):
                z[:, i] = z[:, i] + bias[i]
            y = model.decode(z)
        except Exception as exc:  # noqa: BLE001
            raise Failed(f"The model failed on the audio at {start / rate:.1f} s ({_short(exc)}).") from None
        pieces.append(y[0].float().cpu())
        progress(15 + int(80 * number / len(starts)), f"block {number} of {len(starts)}")
    result = torch.cat(pieces, dim=-1)[:, :frames].numpy()
    if result.shape[1] < frames:
        result = np.pad(result, ((0, 0), (0, frames - result.shape[1])))
    progress(97, "writing the WAV")
    write_wav(args.output, result, rate)
    if args.input_copy:
        write_wav(args.input_copy, audio, rate)
    peak = float(np.abs(result).max()) if result.size else 0.0
    rms = float(np.sqrt(np.mean(np.square(result)))) if result.size else 0.0
    message = f"Done: {frames / rate:.2f} s at {rate:,} Hz on the {'GPU' if device != 'cpu' else 'CPU'}."
    if peak < 1e-4:
        message += " The result is (almost) silent: the model may not have learned enough yet."
    if not streaming:
        message += " (Not a streaming export: heard here in one piece; nn~ would click at each buffer.)"
    progress(100, "done")
    return {"ok": True, "message": message, "output": args.output, "input_copy": args.input_copy,
            "sample_rate": rate, "channels": int(result.shape[0]), "frames": int(frames),
            "seconds": frames / rate, "device": device, "streaming": streaming, "peak": peak, "rms": rms}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="RAVE reconstruction of an audio file")
    parser.add_argument("model")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--scale", default="")
    parser.add_argument("--bias", default="")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--input-copy", dest="input_copy", default=None)
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except Failed as failure:
        result = {"ok": False, "message": str(failure)}
    except KeyboardInterrupt:
        result = {"ok": False, "message": "Cancelled."}
    except Exception as exc:  # noqa: BLE001 - still a sentence, and the JSON line
        result = {"ok": False, "message": f"Trying the model failed ({_short(exc)})."}
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
