#!/usr/bin/env bash
# Take the README's screenshots in a real X window (Xvfb), during a real CPU run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshots.py
