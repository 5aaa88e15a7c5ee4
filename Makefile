# The two set-up commands of the README:
#   make lab    create .venv if there is none, install the course, open JupyterLab on it
#   make test   create .venv if there is none, install the course and run the whole test suite
# Everything else here is a helper for maintainers.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch first, pinned: the version the course is tested with (an unpinned torch could pull a
# newer release and its CUDA packages). Override e.g. `make lab TORCH=torch` for the latest.
TORCH  ?= torch==2.13.0
# PyPI's Linux build of torch includes CUDA (several GB); the CPU-only build comes from PyTorch's
# own index: make lab TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
PORT   ?= 8888
# extra arguments for JupyterLab, e.g. `make lab LAB_ARGS=--no-browser`; root (containers) needs
# --allow-root, added automatically
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: lab test install lint format strip exercises site clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=. --port=$(PORT) $(LAB_ARGS) notebooks/00_welcome.ipynb

# Each of the two test processes (and the notebook kernel it runs) gets half of the cores for
# torch's threads: two processes that each spin a thread per core oversubscribe a small machine
# (on 2 cores the whole suite took 881 s with torch's default, 487 s with one thread each).
TEST_THREADS ?= $(shell n=$$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2); \
                  echo $$(( n / 2 > 1 ? n / 2 : 1 )))

# The test command: unit tests, every notebook under nbval in fast mode, the exercise pipeline,
# the browser tests (JupyterLab's widgets and the built site, in Chromium; they skip without it).
test: install
	OMP_NUM_THREADS=$(TEST_THREADS) COURSE_FAST=1 $(PY) -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env

lint: install
	$(VENV)/bin/ruff check conftest.py course_lib tests benchmarks exercises
	$(VENV)/bin/ruff format --check conftest.py course_lib tests benchmarks notebooks exercises
	$(VENV)/bin/nbqa ruff notebooks exercises/source

format: install
	$(VENV)/bin/ruff format conftest.py course_lib tests benchmarks notebooks exercises
	$(VENV)/bin/ruff check --fix conftest.py course_lib tests benchmarks exercises
	@echo "exercise sources changed? regenerate the student versions: make exercises"

# Student versions of the exercises, generated from their sources with solutions
# (exercises/source/NN_name/ -> exercises/release/NN_name/, both committed; a test checks that
# they agree). Run it after every change to an exercise source.
EXERCISES := $(notdir $(wildcard exercises/source/[0-9]*))
exercises: install
	cd exercises && for a in $(EXERCISES); do \
	  $(abspath $(VENV))/bin/nbgrader generate_assignment $$a --no-db --force || exit 1; \
	done

# The static site: every notebook executed in fast mode (on copies in build/executed/), one page
# per chapter and a landing page, in build/site/ (open build/site/index.html). No network needed.
site: install
	$(PY) -m course_lib.site

# Notebooks are committed without outputs.
strip: install
	$(VENV)/bin/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
