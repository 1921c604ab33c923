"""Benchmark the log parsers (rave_gui.backend.log_parsing).

    .venv/bin/python benchmarks/bench_parsing.py

``parse_metrics`` and ``parse_progress_line`` run on every line RAVE prints
(TrainingProcess reads stdout and stderr line by line). Measured over:

* every line of the real logs in tests/fixtures/rave (split on \\r and \\n,
  as a terminal shows them: tqdm bars, warnings, tracebacks, the profiler table);
* a synthetic mix of metric lines (``step=N loss=... lr=...`` and the other
  forms parse_metrics reads), where every line carries numbers.

Prints a markdown table and writes benchmarks/results/parsing.json.
"""
from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rave_gui.backend.log_parsing import parse_metrics, parse_progress_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "rave"
RESULTS = Path(__file__).resolve().parent / "results" / "parsing.json"
TARGET_S = 1.0       # time per measurement (repeat the corpus until it lasts that long)
REPEATS = 5


def fixture_lines() -> list[str]:
    lines = []
    for path in sorted(FIXTURES.glob("*.log")):
        lines += re.split(r"[\r\n]", path.read_text(encoding="utf-8"))
    return lines


def synthetic_lines(n: int = 20_000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    forms = [
        lambda s: f"step={s} loss={rng.uniform(0, 10):.6f} lr={rng.uniform(1e-5, 1e-3):.3e}",
        lambda s: f"[rave-gui] step={s}/500000",
        lambda s: f"Epoch {s // 300}: step {s}/500000 loss: {rng.uniform(0, 10):.4f} val_loss: {rng.uniform(0, 10):.4f}",
        lambda s: f"global_step={s} learning_rate={rng.uniform(1e-5, 1e-3):.2e} validation loss {rng.random():.3f}",
        lambda s: f"Epoch {s // 300}:  45%|████▌     | {s % 300}/300 [00:12<00:14, 10.1it/s, v_num=0]",
    ]
    return [forms[i % len(forms)](i * 7) for i in range(n)]


def lines_per_second(func, lines: list[str]) -> tuple[float, int]:
    """Median lines/s of ``func`` over the corpus, repeated to last about TARGET_S."""
    t0 = time.perf_counter()
    for line in lines:
        func(line)
    once = max(time.perf_counter() - t0, 1e-6)
    rounds = max(1, int(TARGET_S / once))
    rates = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for line in lines:
                func(line)
        rates.append(rounds * len(lines) / (time.perf_counter() - t0))
    return statistics.median(rates), rounds * len(lines)


def main() -> None:
    real = fixture_lines()
    synthetic = synthetic_lines()
    found_real = sum(bool(parse_metrics(line)) for line in real)
    found_synthetic = sum(bool(parse_metrics(line)) for line in synthetic)
    assert found_synthetic == len(synthetic), "every synthetic line carries a metric"
    rows = []
    for corpus_name, lines in (("real fixture logs", real), ("synthetic metric lines", synthetic)):
        for func in (parse_metrics, parse_progress_line):
            rate, measured = lines_per_second(func, lines)
            rows.append({"corpus": corpus_name, "function": func.__name__, "lines": len(lines),
                         "lines_per_s": rate, "us_per_line": 1e6 / rate, "lines_measured": measured})
    results = {
        "real_lines": len(real), "real_lines_with_metrics": found_real,
        "real_chars": sum(map(len, real)), "synthetic_lines": len(synthetic), "rows": rows,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print("| corpus | function | lines | lines/s | µs/line |\n|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['corpus']} | {r['function']} | {r['lines']:,} | {r['lines_per_s']:,.0f} | {r['us_per_line']:.2f} |")
    print(f"\n{found_real} of {len(real):,} real lines carry a metric (the epoch of a Lightning bar); "
          f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
