# Two commands set everything up on a fresh machine:
#   make demo   - the main job end to end on SQLite with a generated demo dataset
#   make test   - the test suite on SQLite and PostgreSQL
# Both create (or reuse) the virtual environment in .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# test files spread over this many processes (pytest-xdist; 0: one process)
PYTEST_WORKERS ?= 2

.PHONY: install demo annotate-demo test bench clean

install: $(STAMP)

# torch is installed first and pinned: on the lab machines pip takes the CPU build of 2.13.0
# from local disk; an open range would pull a multi-GB CUDA build instead.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q "torch>=2.4,<2.14"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

# the annotation studio on a generated store, with two annotators and an admin (see docs/annotate.md)
annotate-demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/annotate-demo.sh

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# gan_augment.py after gan_quality.py: it uses the GAN that gan_quality.py trains
bench: $(STAMP)
	for b in $(filter-out benchmarks/__init__.py benchmarks/gan_quality.py benchmarks/gan_augment.py,$(sort $(wildcard benchmarks/*.py))) \
	         benchmarks/gan_quality.py benchmarks/gan_augment.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo annotate-demo test-artifacts .pytest_cache .hypothesis
