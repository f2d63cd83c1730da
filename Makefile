# Two entry points for a fresh machine: `make up` and `make test`.
# Each creates the virtual environment it needs (Python 3.11+), then runs: `make up` the
# runtime alone (LiteRT, no TensorFlow), `make test` adds the test tools and the train extra.
PYTHON ?= python3
VENV ?= .venv
ARGS ?=
BIN := $(VENV)/bin
# The type checker covers the package entry (its lazy API) and the pipeline packages, not training (see [tool.mypy] in pyproject.toml).
MYPY_PACKAGES := -m fakeblock -p fakeblock.capture -p fakeblock.detect -p fakeblock.classify -p fakeblock.display -p fakeblock.common -p fakeblock.control -p fakeblock.api

.PHONY: up lint test benchmark clean

up: $(VENV)/.installed
	$(BIN)/fakeblock up $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PACKAGES)

test: lint
	$(BIN)/python -m pytest $(ARGS)

# The quick subset for everyday work: lint and every test but the end-to-end (slow) and training ones,
# in two worker processes (pytest-xdist): most of these tests wait on sockets and timers, not the CPU.
.PHONY: check
check: lint
	$(BIN)/python -m pytest -m "not slow and not train" -n 2 $(ARGS)

benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline_vs_loop.py $(ARGS)

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,train]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
