"""Run every benchmarks/bench_*.py in turn, with this interpreter.

    .venv/bin/python benchmarks/run_all.py [--quick] [NAME ...]

Each script prints its own markdown table (shown as it runs) and writes its
JSON under benchmarks/results/. ``--quick`` is passed to the scripts that
accept it (their source mentions ``--quick``); the others run as they are.
NAMEs pick scripts by a part of their file name (``events``, ``train``).
Exits non-zero when a script fails, after running the rest.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to the scripts that accept it")
    parser.add_argument("names", nargs="*", help="run only scripts whose file name contains one of these")
    args = parser.parse_args()

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if any(n in s.name for n in args.names)]
    if not scripts:
        print("no benchmark script matches", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")

    summary = []
    for script in scripts:
        argv = [sys.executable, str(script)]
        if args.quick and "--quick" in script.read_text(errors="replace"):
            argv.append("--quick")
        print(f"\n## {script.name}{' --quick' if argv[-1] == '--quick' else ''}\n", flush=True)
        t0 = time.monotonic()
        code = subprocess.run(argv, cwd=HERE.parent, env=env).returncode
        summary.append((script.name, code, time.monotonic() - t0))

    print("\n| benchmark | result | seconds |\n|---|---|---:|")
    for name, code, seconds in summary:
        print(f"| {name} | {'ok' if code == 0 else f'FAILED (exit {code})'} | {seconds:.0f} |")
    return 1 if any(code != 0 for _, code, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
