# Two commands: `make run` sets up and launches the app; `make test` sets up and runs every test.
PY := .venv/bin/python

.PHONY: setup run test test-fast bench screenshots

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m rave_gui

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -ra

test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -ra -m "not e2e"

bench: setup
	$(PY) benchmarks/run_all.py

screenshots: setup
	bash scripts/screenshots.sh
