# Thin wrappers. `make train` and `make test` set up .venv first when needed.
PYTHON ?= python3
VENV ?= .venv
# The torch build to install before the project (this machine has the 2.13.0 CPU wheel on disk).
# Override for your hardware, e.g. `make setup TORCH="torch --index-url https://download.pytorch.org/whl/cu124"`.
TORCH ?= torch==2.13.0
# The d2l book package for the parity test, without its pinned dependencies (see the d2l extra).
D2L ?= d2l==1.0.3
ARGS ?=

PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup train test test-all lint format bench tensorboard clean mutate docs screenshots

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH) || echo "could not install '$(TORCH)'; pip will pick a torch>=2.3 build itself"
	$(PY) -m pip install -e ".[dev,hpo,slurm,d2l]"
	$(PY) -m pip install --no-deps $(D2L)
	touch $(STAMP)

train: setup
	$(PY) scripts/train.py $(ARGS)

# Tests run on every core (pytest-xdist); one torch thread per worker suits their tiny models.
TEST_ENV := OMP_NUM_THREADS=1

test: setup
	$(TEST_ENV) $(PY) -m pytest -q -n auto $(ARGS)

test-all: setup
	$(TEST_ENV) $(PY) -m pytest -q -n auto -m "" $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) -m benchmarks $(ARGS) --docs

# Mutation testing of the learning core against its fast tests (mutation/mutate.py prints what
# survived; README: Development). mutmut comes with the `mutate` extra, installed here once.
MUTATE_STAMP := $(VENV)/.installed-mutate

$(MUTATE_STAMP): $(STAMP)
	$(PY) -m pip install -e ".[mutate]"
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	$(TEST_ENV) $(PY) mutation/mutate.py

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir outputs

# What the docs show, generated: each docs/derivations page's command outputs (between its
# <!-- output: ... --> markers), and the TensorBoard screenshots in docs/images/ (a short real
# run, a real tensorboard, Debian's chromium: apt-get install chromium).
docs: setup
	$(PY) scripts/derivation_outputs.py

screenshots: setup
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV)
