# The commands the README promises: `make ui`, `make demo`, `make check` and `make test`.
# Each sets up first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/drchrono-assets

.PHONY: setup demo ui ruff check test lint

$(VENV)/.installed: pyproject.toml setup.cfg
	@echo "Setting up $(VENV) with the package and its test tools (the first time: about a minute)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@
	@echo "$(VENV) is ready."

setup: $(VENV)/.installed

# Materialize a week of every asset against the bundled sandbox API (no credentials needed).
demo: setup
	@$(CLI) demo

# The UI on a live sandbox practice: a week of data, every sensor running, until Ctrl-C.
ui: setup
	@$(CLI) ui

# Ruff's lint and format checks (`make lint` fixes what they can).
ruff: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Ruff and the unit tests: in the test process, no services or system packages, under two
# minutes.
check: ruff
	$(PY) -m pytest drchrono_assets_tests/unit

# Ruff and every test, unit and integration (PostgreSQL, Chromium, S3, child processes, the
# long simulations): what CI runs (.ci/run). Two workers: the long simulations side by side.
test: ruff
	bash .ci/system-deps
	$(PY) -m pytest -n 2 --maxschedchunk 1

lint: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
