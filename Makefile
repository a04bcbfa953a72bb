# `make demo` sets up and runs the demo; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ../shared/data/omniglot

.PHONY: setup chromium demo lint test train benchmark clean

setup: $(VENV)/.installed web/node_modules/.installed

# The browser runtime, onnxruntime-web, and the JS linter, as web/package-lock.json pins them; the
# server serves onnxruntime-web's wasm build from web/node_modules (the Dockerfile installs only it).
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

# The browser tests drive Debian's Chromium where apt works (Playwright cannot download its own
# here); elsewhere Playwright's own download. Without either, the browser tests are skipped.
chromium: $(VENV)/.installed
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser tests will be skipped" >&2; \
	  else $(PY) -m playwright install chromium \
	      || echo "could not get a Chromium: the browser tests will be skipped" >&2; fi; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

# Serves the committed bundle static/models/omniglot-20w (the Dockerfile runs the same command).
HOST ?= 127.0.0.1
PORT ?= 8000
demo: setup
	$(PY) -m server serve --host $(HOST) --port $(PORT)

# ruff (lint and format), the import contracts in .importlinter, biome for the browser code.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	cd web && node_modules/.bin/biome lint js docs sw.js ../tests/js

test: lint chromium
	OMNIGLOT_DATA_DIR=$(DATA_DIR) $(PY) -m pytest -q

# The default model's meta-training (the paper's first-version 20-way 1-shot preset, 200,000
# meta-iterations: 6-8 h on 2 CPU cores and ~25 min on one H100 at the rates measured,
# docs/results.md); resumes runs/omniglot-20w1s.
train: setup
	$(PY) -m training train --preset omniglot-20w1s-v1 --data-dir $(DATA_DIR) --out runs/omniglot-20w1s --eval-interval 10000 --resume

benchmark: setup
	$(PY) -m benchmarks.meta_train_throughput --data-dir $(DATA_DIR)

# learn2learn, for the side-by-side rows of benchmarks/algorithm_cost.py only: pinned in
# benchmarks/requirements-peer.txt, installed into $(VENV)/bench-peer, which only that benchmark's
# learn2learn processes import from (never the product's dependencies, nor make test's install).
.PHONY: bench-extra
bench-extra: $(VENV)/.installed
	bash tools/install_learn2learn.sh $(PY) $(VENV)/bench-peer

clean:
	rm -rf $(VENV) .pytest_cache
