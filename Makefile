# symgrad developer tasks. GNU make; every tool runs from .venv by path (no activation needed).
# `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The interpreter used to create .venv: python3.11 when present, else python3.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-k tanh -x'`.
PYTEST_ARGS ?=

define run-lint
$(PY) -m ruff check .
$(PY) -m ruff format --check .
endef

define run-typecheck
$(PY) -m mypy
$(VENV)/bin/lint-imports
endef

define run-pytest
$(PY) -m pytest --cov=symgrad --cov-report=term $(PYTEST_ARGS)
endef

define run-packaging-check
bash scripts/check_wheel.sh
endef

.PHONY: help venv .venv install-test install-demo install-bench lint typecheck pytest test \
	packaging-check fmt demo bench clean distclean

help: ## list the targets
	@echo "symgrad make targets:"
	@grep -hE '^[a-zA-Z_.-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'
	@echo "variables: PYTHON=$(PYTHON)  PYTEST_ARGS=$(PYTEST_ARGS)"

# --- environment -------------------------------------------------------------------------------

# .venv/bin/python is the stamp for the virtual environment itself.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

.venv: $(PY) ## create the virtual environment (.venv)
venv: $(PY)

$(VENV)/.installed-test: pyproject.toml $(PY)
	$(PIP) install --quiet -e '.[test]'
	@touch $@

$(VENV)/.installed-demo: pyproject.toml $(PY)
	$(PIP) install --quiet -e '.[examples]'
	@touch $@

$(VENV)/.installed-bench: pyproject.toml $(PY)
	$(PIP) install --quiet -e '.[bench]'
	@touch $@

install-test: $(VENV)/.installed-test ## editable install with the test tools (.[test])
install-demo: $(VENV)/.installed-demo ## editable install with the example deps (.[examples])
install-bench: $(VENV)/.installed-bench ## editable install with the benchmark deps (.[bench])

# --- checks ------------------------------------------------------------------------------------

lint: install-test ## ruff check + ruff format --check
	$(run-lint)

typecheck: install-test ## mypy (strict) and the import-layer contracts (lint-imports); see pyproject.toml
	$(run-typecheck)

pytest: install-test ## the test suite with coverage only
	$(run-pytest)

packaging-check: install-test ## build the wheel, install it in a fresh venv, smoke-test it
	$(run-packaging-check)

# The packaging check runs before pytest so that pytest's summary closes the output.
test: install-test ## everything CI runs: lint, typecheck, packaging check, pytest+coverage
	$(run-lint)
	$(run-typecheck)
	$(run-packaging-check)
	$(run-pytest)

fmt: install-test ## reformat and autofix (ruff format + ruff check --fix)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# --- running things ----------------------------------------------------------------------------

# Every example at its default sizes (each under a minute); pictures go to examples/out/.
demo: install-demo ## run every example (examples/showcase.py): lecture, moons, makemore, GPT, ops
	$(PY) examples/showcase.py

bench: install-bench ## run every benchmarks/*.py (files starting with _ are helpers)
	@found=0; for f in benchmarks/*.py; do \
		[ -e "$$f" ] || continue; \
		case "$$(basename "$$f")" in _*) continue;; esac; \
		found=1; echo "== $$f"; \
		$(PY) "$$f"; \
	done; \
	if [ "$$found" = 0 ]; then echo "no benchmarks/*.py scripts found"; fi

# --- cleaning ----------------------------------------------------------------------------------

clean: ## remove build, cache and coverage files (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis htmlcov \
		.coverage .coverage.* coverage.xml *.egg-info
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o \
		-type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
