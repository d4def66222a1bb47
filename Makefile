# Two commands do all set-up on a fresh machine: `make verify` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: verify test test-thorough test-slow figures bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

verify: $(STAMP)
	$(PY) -m verify $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

# Long runs: many random configurations per property, and the slow marker; one pytest-xdist
# process per core (the properties are independent; Hypothesis's example database is safe to share).
test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -n auto -m "slow or not slow" $(ARGS)

figures: $(STAMP)
	MPLBACKEND=Agg $(PY) figures/make_figures.py --out figures/output $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
