# copier-mlops: `make demo` shows the template at work, `make test` proves it.
.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast test-slow bench bench-spark lint format example docs docs-serve clean

# uv comes from PATH, or is installed once into a private virtual environment (.uv/): a
# system-wide or `--user` pip install is refused on current Debian and Ubuntu (PEP 668).
UV_HOME := $(CURDIR)/.uv
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_HOME)/bin/uv)
RUN := $(UV) run --frozen

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(UV_HOME)/bin/uv:
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet uv

install: $(UV)  ## the template's development environment (.venv, from uv.lock)
	$(UV) sync --frozen

demo: install  ## render the defaults, train, serve, send one prediction, stop
	$(RUN) python tests/harness.py demo

# The suite spreads over JOBS processes (the machine's cores: the tests mostly wait on
# installs, servers and other programs), then runs the `serial` tests alone, as they time
# services under load. The slowest tests are listed: the suite is kept under 20 minutes.
JOBS ?= 2
test: install lint  ## everything: lint, render every answer set, run renderings' own tests
	$(RUN) pytest -m "not serial" --numprocesses $(JOBS) --dist loadgroup --no-loadscope-reorder --durations 15
	$(RUN) pytest -m serial --durations 5

test-fast: install  ## render-level checks only (no installs, no outside validators), under a minute
	$(RUN) pytest -m "not slow and not tools"

test-slow: install  ## only the tier that installs renderings and runs their tests
	$(RUN) pytest -m slow

bench: install  ## serving benchmark: ours vs mlflow models serve, DataFrame and bare endpoints
	$(RUN) python benchmarks/serving.py

bench-spark: install  ## batch scoring of a few million rows: one process vs Spark (local mode)
	$(RUN) python benchmarks/spark_batch.py

lint: install  ## ruff on the template's own code
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: install
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

example: install  ## regenerate example_project/ from the default answers
	$(RUN) python tests/harness.py example

docs: install  ## build the documentation site (strict) into site/
	NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs build --strict

docs-serve: install  ## preview the documentation site on http://127.0.0.1:8000
	NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs serve

clean:
	rm -rf .venv .uv .pytest_cache .ruff_cache site
