# Set-up and everyday commands. Everything installs into .venv on first use.
#   make demo    run the demo study end to end (embedded default: SQLite + local workers)
#   make lint    ruff (rules, formatting), the room table's import contracts (lint-imports)
#                and the type check (mypy)
#   make test    lint + the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# torch first, as a CPU build where one is at hand: the project asks only torch>=2.3.
TORCH_SPEC ?= torch==2.13.0
# A benchmark peer (benchmarks/syne_peers.py), without its declared dependencies: 0.14.2
# is the last release with DEHB, Hyper-Tune and promotion-type ASHA; its metadata pins
# numpy<1.27 (it runs on ours), and later releases require xgboost, whose Linux wheel
# pulls CUDA's nvidia-nccl-cu12. What the peers import comes with the bench extra.
SYNE_TUNE_SPEC ?= syne-tune==0.14.2

.PHONY: install demo test lint format clean

# The demo's install: the service and workers only (no benchmark peers, no test tools).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" || $(BIN)/python -m pip install --quiet "torch>=2.3"
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

# Tests and lint: add the test tools, PostgreSQL's driver and the benchmark peers. The
# peers come in a step of their own: resolved together with the test tools, pip spent
# over ten minutes backtracking; beside what is installed, it takes seconds.
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[all,test,postgres]'
	$(BIN)/python -m pip install --quiet -e '.[all,bench]'
	$(BIN)/python -m pip install --quiet --no-deps "$(SYNE_TUNE_SPEC)"
	touch $(DEV_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hpo demo $(ARGS)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The contracts are pyproject.toml's [tool.importlinter] (DESIGN.md's room table).
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
