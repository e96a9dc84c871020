# Two entry points a newcomer needs: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed

.PHONY: install tools test lint demo bench clean path

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build on this machine's disk; a bare `torch`
# requirement would otherwise pull a multi-GB CUDA build.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

tools:
	bash scripts/install-tools.sh

test: install tools
	$(VENV)/bin/pytest -q

# The import contracts of the layers (pyproject.toml [tool.importlinter]).
lint: install
	$(VENV)/bin/lint-imports

# The main job on the embedded default (the offline strategist), simulated:
# no API key, no root, nothing on the machine changes.
demo: install
	$(VENV)/bin/cli-ai optimize "optimize this system for database workload" --dry-run --yes --budget 20 --seed 1

# Put `cli-ai` on PATH for every shell and for sudo (whose PATH is
# /usr/local/bin and the system's): a link to this checkout's venv.
# Run it as root; `rm /usr/local/bin/cli-ai` undoes it.
BINDIR ?= /usr/local/bin
path: install
	ln -sfn $(abspath $(VENV))/bin/cli-ai $(BINDIR)/cli-ai
	@echo "cli-ai -> $(abspath $(VENV))/bin/cli-ai (in $(BINDIR))"

bench: install
	$(PY) bench/overhead.py
	$(PY) bench/strategist.py

clean:
	rm -rf $(VENV) runs .pytest_cache
