# `make demo` sets up and runs the demo; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ../shared/data/omniglot

.PHONY: setup demo test train benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

# Serves the committed bundle static/models/omniglot-5w (the Dockerfile runs the same command).
HOST ?= 127.0.0.1
PORT ?= 8000
demo: setup
	$(PY) -m server serve --host $(HOST) --port $(PORT)

test: setup
	OMNIGLOT_DATA_DIR=$(DATA_DIR) $(PY) -m pytest -q

# The shipped default model's training run (about 1.5 h on 2 CPU cores); resumable.
train: setup
	$(PY) -m training train --preset omniglot-5w5s --data-dir $(DATA_DIR) --out runs/omniglot-5w5s --eval-interval 5000 --resume

benchmark: setup
	$(PY) benchmarks/meta_train_throughput.py --data-dir $(DATA_DIR)

clean:
	rm -rf $(VENV) .pytest_cache
