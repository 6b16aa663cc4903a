# Cactus Desk developer commands. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench screenshots dist deb clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/cactus-desk --sandbox

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks $(ARGS)

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m cactus_desk.ui.screenshots docs/screenshots
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m cactus_desk.ui.screenshots_clerk docs/screenshots

# PyInstaller is a build tool only, so it is installed here rather than in the dev extra.
dist: $(STAMP)
	$(BIN)/python -m pip install --quiet pyinstaller
	$(BIN)/python -m PyInstaller --noconfirm --distpath dist --workpath build \
		packaging/cactus-desk.spec

deb: dist
	PYTHON=$(BIN)/python packaging/linux/build-deb.sh

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .mypy_cache
