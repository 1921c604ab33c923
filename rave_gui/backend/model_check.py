"""Check an exported RAVE model the way nn~ and the RAVE VST will use it.

Run in a subprocess with torch, never in the GUI process::

    python -m rave_gui.backend.model_check MODEL.ts
    python path/to/model_check.py MODEL.ts      # the same, in any Python with torch

It prints progress lines (``progress: PERCENT what``) and, last, one line of JSON:
``{"ok": bool, "message": sentence, "sample_rate", "channels", "latent_size",
"full_latent_size", "streaming", "encode_ratio", "methods", "checks": [...],
"torch": version, ...}``. The exit status is 0 when the model passed, 1 when not.

What it checks: ``torch.jit.load`` opens it; it has ``forward``, ``encode`` and
``decode`` (what nn~ calls); a buffer of silence and a second of noise go through
``forward`` and ``encode`` -> ``decode`` with the right shapes and finite values;
a streaming model takes consecutive buffers. The numbers come from what RAVE's
``ScriptedRAVE`` (an ``nn_tilde.Module``) stores: the attributes ``sr``,
``n_channels``, ``target_channels``, ``latent_size``, ``full_latent_size``, and the
buffers ``encode_params`` / ``decode_params`` (``[in channels, in ratio, out
channels, out ratio]``); streaming exports hold cached convolutions (buffers named
``*.cache.pad``), non-streaming ones none.

This file imports nothing from rave_gui: it runs with the interpreter that runs
``rave``, which may not have the app installed.
"""
from __future__ import annotations

import json
import os
import sys

BUFFER = 2048          # nn~'s default buffer size
STREAM_BUFFERS = 4


def progress(percent: int, what: str) -> None:
    print(f"progress: {percent} {what}", flush=True)


class Failed(Exception):
    """A check failed; the message is the sentence for the person."""


def _attr(model, name):
    try:
        value = getattr(model, name)
    except Exception:  # noqa: BLE001 - a ScriptModule raises RuntimeError for a missing attribute
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value


def _int(value):
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def describe(model) -> dict:
    """The model's numbers, from its attributes and nn~ method buffers."""
    encode_params = _attr(model, "encode_params")
    decode_params = _attr(model, "decode_params")
    info = {
        "sample_rate": _int(_attr(model, "sr")),
        "channels": _int(_attr(model, "n_channels")),
        "output_channels": _int(_attr(model, "target_channels")),
        "latent_size": _int(_attr(model, "latent_size")),
        "full_latent_size": _int(_attr(model, "full_latent_size")),
        "encode_ratio": None,
    }
    if isinstance(encode_params, list) and len(encode_params) == 4:
        info["channels"] = info["channels"] or _int(encode_params[0])
        info["latent_size"] = info["latent_size"] or _int(encode_params[2])
        info["encode_ratio"] = _int(encode_params[3])
    if isinstance(decode_params, list) and len(decode_params) == 4:
        info["output_channels"] = info["output_channels"] or _int(decode_params[2])
    info["output_channels"] = info["output_channels"] or info["channels"]
    try:
        names = [name for name, _ in model.named_buffers()]
    except Exception:  # noqa: BLE001
        names = []
    info["streaming"] = any(name.endswith("cache.pad") for name in names)
    fidelity = _attr(model, "fidelity")
    if isinstance(fidelity, list) and info["latent_size"] and 0 < info["latent_size"] <= len(fidelity):
        info["variance_kept"] = float(fidelity[info["latent_size"] - 1])
    return info


def no_jit_optimization(torch) -> None:
    """Turn TorchScript's graph optimizer off (what ``torch.jit.optimized_execution(False)``
    does): a few calls with new shapes then take ~0.2 s instead of ~3 s each (measured on
    a 2-core CPU), and a check or a try makes only a few."""
    try:
        torch._C._set_graph_executor_optimize(False)
    except AttributeError:  # a torch without it: slower, not wrong
        pass


def _methods(model) -> list[str]:
    try:
        return list(model._c._method_names())
    except Exception:  # noqa: BLE001
        return [m for m in ("forward", "encode", "decode") if hasattr(model, m)]


def _check_output(torch, y, channels: int, length: int, what: str) -> None:
    if not isinstance(y, torch.Tensor):
        raise Failed(f"{what} returned {type(y).__name__}, not audio.")
    if y.dim() != 3 or y.shape[0] != 1 or y.shape[1] != channels or y.shape[2] != length:
        raise Failed(f"{what} returned a tensor of shape {tuple(y.shape)}, not (1, {channels}, {length}): "
                     "nn~ would play it wrong.")
    if not bool(torch.isfinite(y).all()):
        raise Failed(f"{what} returned NaN or infinite values: the model would output silence or a "
                     "burst of noise. Export an earlier checkpoint, or retrain.")


def check(path: str) -> dict:
    result = {"ok": False, "path": path, "checks": []}

    def passed(name: str, detail: str = "") -> None:
        result["checks"].append({"name": name, "ok": True, "detail": detail})

    try:
        if not os.path.isfile(path):
            raise Failed(f"The file {path} does not exist (moved or deleted?).")
        result["size_bytes"] = os.path.getsize(path)
        if result["size_bytes"] == 0:
            raise Failed("The file is empty (0 bytes): an export or copy that did not finish. Export it again.")
        progress(5, "loading torch")
        import torch
        torch.set_grad_enabled(False)
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        result["torch"] = torch.__version__
        no_jit_optimization(torch)
        progress(15, "loading the model")
        try:
            model = torch.jit.load(path, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - every way a load fails is a broken model
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Failed("torch.jit.load could not open it, so nn~ and the VST cannot either "
                         f"({first[:300]}). The file may be cut short (an interrupted export or copy), "
                         f"not a TorchScript model, or made with a newer torch than {torch.__version__}: "
                         "export it again.") from None
        model.eval()
        passed("load", f"torch {torch.__version__}")
        methods = _methods(model)
        result["methods"] = sorted(set(methods))
        missing = [m for m in ("forward", "encode", "decode") if m not in methods]
        if missing:
            raise Failed(f"The model has no {', '.join(missing)} method: nn~ and the RAVE VST call forward, "
                         "encode and decode. Is it a RAVE export (`rave export`)?")
        passed("methods", ", ".join(("forward", "encode", "decode")))
        info = describe(model)
        result.update(info)
        channels, out_channels = info["channels"] or 1, info["output_channels"] or info["channels"] or 1
        ratio = info["encode_ratio"] or 1
        buffer = max(BUFFER, ratio) // ratio * ratio
        progress(30, "silence")
        try:
            y = model.forward(torch.zeros(1, channels, buffer))
        except Exception as exc:  # noqa: BLE001
            raise Failed(f"forward failed on a buffer of {buffer} samples of silence ({_short(exc)}).") from None
        _check_output(torch, y, out_channels, buffer, "forward on silence")
        passed("silence", f"{buffer} samples")
        progress(50, "one second of noise")
        sr = info["sample_rate"] or 44100
        length = max(ratio, (sr // ratio) * ratio)
        noise = (torch.rand(1, channels, length, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.5
        try:
            z = model.encode(noise)
        except Exception as exc:  # noqa: BLE001
            raise Failed(f"encode failed on one second of noise ({_short(exc)}).") from None
        if z.dim() != 3 or (info["latent_size"] and z.shape[1] != info["latent_size"]):
            raise Failed(f"encode returned a latent of shape {tuple(z.shape)}, not (1, {info['latent_size']}, "
                         "frames): the model contradicts its own description.")
        if not bool(torch.isfinite(z).all()):
            raise Failed("encode returned NaN or infinite values on noise: the encoder is broken "
                         "(a training that diverged?). Export an earlier checkpoint.")
        info_latent = int(z.shape[1])
        result["latent_size"] = result["latent_size"] or info_latent
        result["latent_frames"] = int(z.shape[-1])
        try:
            y = model.decode(z)
        except Exception as exc:  # noqa: BLE001
            raise Failed(f"decode failed on the latent of one second of noise ({_short(exc)}).") from None
        _check_output(torch, y, out_channels, length, "decode")
        try:
            y = model.forward(noise)
        except Exception as exc:  # noqa: BLE001
            raise Failed(f"forward failed on one second of noise ({_short(exc)}).") from None
        _check_output(torch, y, out_channels, length, "forward on noise")
        passed("noise", f"{length} samples at {sr} Hz")
        progress(75, "consecutive buffers")
        chunk = torch.randn(1, channels, buffer * STREAM_BUFFERS, generator=torch.Generator().manual_seed(1)) * 0.3
        for i in range(STREAM_BUFFERS):
            try:
                y = model.forward(chunk[..., i * buffer:(i + 1) * buffer])
            except Exception as exc:  # noqa: BLE001
                raise Failed(f"forward failed on consecutive buffer {i + 1} of {STREAM_BUFFERS} "
                             f"({_short(exc)}): nn~ would stop there.") from None
            _check_output(torch, y, out_channels, buffer, f"forward on consecutive buffer {i + 1}")
        passed("consecutive buffers", f"{STREAM_BUFFERS} \u00d7 {buffer} samples")
        progress(100, "done")
    except Failed as failure:
        result["message"] = str(failure)
        return result
    except Exception as exc:  # noqa: BLE001 - an unexpected error is still a sentence
        result["message"] = f"The check itself failed ({_short(exc)}); the model is treated as broken."
        return result
    result["ok"] = True
    kept = result.get("variance_kept")
    parts = [f"{result['latent_size']} latent dimension{'s' if result['latent_size'] != 1 else ''}"
             f" (of {result['full_latent_size']})" if result.get("full_latent_size") else
             f"{result['latent_size']} latent dimensions",
             f"{result['sample_rate']:,} Hz" if result.get("sample_rate") else "",
             f"{result['channels']} channel{'s' if result['channels'] != 1 else ''}" if result.get("channels") else ""]
    text = "Works: " + ", ".join(p for p in parts if p)
    if kept is not None:
        text += f", {100 * kept:.1f}% of the latent variance kept"
    text += "."
    if not result.get("streaming"):
        text += (" It is not a streaming export: in nn~ and the VST it will click at every buffer "
                 "(export with streaming for real-time use).")
    result["message"] = text
    return result


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m rave_gui.backend.model_check MODEL.ts", file=sys.stderr)
        return 2
    result = check(argv[0])
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
