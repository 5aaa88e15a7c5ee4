# The two set-up commands of the README:
#   make lab    create .venv if there is none, install the course, open JupyterLab on it
#   make test   create .venv if there is none, install the course and run the whole test suite
# Everything else here is a helper for maintainers.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch first, pinned: this is the CPU build the course is tested with (an unpinned torch can
# pull several GB of CUDA packages on Linux). Override e.g. `make lab TORCH=torch` for a GPU build.
TORCH  ?= torch==2.13.0
PORT   ?= 8888
# extra arguments for JupyterLab, e.g. `make lab LAB_ARGS=--no-browser`; root (containers) needs
# --allow-root, added automatically
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: lab test install lint format strip exercises clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=. --port=$(PORT) $(LAB_ARGS) notebooks/00_welcome.ipynb

# The test command: unit tests, every notebook under nbval in fast mode, the exercise pipeline.
test: install
	COURSE_FAST=1 $(PY) -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env

lint: install
	$(VENV)/bin/ruff check course_lib tests benchmarks
	$(VENV)/bin/ruff format --check course_lib tests benchmarks notebooks
	$(VENV)/bin/nbqa ruff notebooks

format: install
	$(VENV)/bin/ruff format course_lib tests benchmarks notebooks
	$(VENV)/bin/ruff check --fix course_lib tests benchmarks

# Student versions of the exercises, generated from their sources with solutions
# (exercises/source/NN_name/ -> exercises/release/NN_name/, both committed; a test checks that
# they agree). Run it after every change to an exercise source.
EXERCISES := $(notdir $(wildcard exercises/source/[0-9]*))
exercises: install
	cd exercises && for a in $(EXERCISES); do \
	  $(abspath $(VENV))/bin/nbgrader generate_assignment $$a --no-db --force || exit 1; \
	done

# Notebooks are committed without outputs.
strip: install
	$(VENV)/bin/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
