# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint format rules-check bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The package `redress` is installed (editable); the engine beside it (workflows/, activities/, worker.py) is
# not a library and is not installed: this venv sees it from the checkout, through one .pth line, so that
# `.venv/bin/redress worker` and `redress rules check` work from anywhere (the image sets PYTHONPATH instead).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[engine,test]'
	$(BIN)/python -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "redress-engine.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
	touch $(STAMP)

install: $(STAMP)

## run: embedded Temporal dev server (UI on http://localhost:8233) + the worker on task queue `redress`
run: install
	$(BIN)/redress worker

## test: lint, format, types, the rule files and their tests, then the whole suite against a real Temporal dev server
## (two pytest processes, each with its own dev server; a file's tests stay in one process, in order)
test: install lint
	$(BIN)/redress rules check rules
	$(BIN)/redress rules test rules
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## lint: ruff (lint and format check) and mypy, as configured in pyproject.toml; `make format` rewrites
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

rules-check: install
	$(BIN)/redress rules check rules

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

## soak: the fault and fuzz tests with a large budget (minutes; not part of `make test`)
soak: install
	REDRESS_FAULT_CASES=300 REDRESS_FAULT_KILLS=6 REDRESS_FUZZ_EXAMPLES=2000 \
		$(BIN)/python -m pytest -q tests/test_faults.py tests/test_fuzz.py

## bench: every benchmark (bench/), writing bench/RESULTS.md with the machine facts (not part of `make test`)
bench: install
	$(BIN)/python bench/run_all.py
