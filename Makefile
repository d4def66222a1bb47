# Two commands do all set-up on a fresh machine: `make verify` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: verify verify-scale test test-thorough test-scale test-slow figures bench bench-jax lint format mutation mutants clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

verify: $(STAMP)
	$(PY) -m verify $(ARGS)

# The scale tier: widths 2-1024, n up to 1e5, the full 8x8 digits, one flow at m = 512 (measured:
# 183 s on 2 cores while another job used one; docs/scale.md).
verify-scale: $(STAMP)
	$(PY) -m verify --scale $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

# Long runs: many random configurations per property, and the slow marker; one pytest-xdist
# process per core (the properties are independent; Hypothesis's example database is safe to share).
test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -n auto -m "slow or not slow" $(ARGS)

# The scale properties at the scale tier's widths and data sizes.
test-scale: $(STAMP)
	HYPOTHESIS_PROFILE=scale $(PY) -m pytest -q -m "slow or not slow" property_tests/campaign/test_scale.py $(ARGS)

figures: $(STAMP)
	MPLBACKEND=Agg $(PY) figures/make_figures.py --out figures/output $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench.py $(ARGS)

# The optional peer: JAX jit autodiff against the project (skipped without JAX: pip install 'jax[cpu]').
bench-jax: $(STAMP)
	$(PY) benchmarks/jax_peer.py $(ARGS)

# ruff (pyproject.toml [tool.ruff]): pyflakes, pycodestyle, import order, pyupgrade; and the format
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# rewrite the tree in the house format (what make lint checks)
format: $(STAMP)
	$(VENV)/bin/ruff format .

# Mutation testing of the formula modules, judged by the campaign alone (long: hours on one core).
mutation: $(STAMP)
	$(PY) -m pip install -q -e ".[mutation]"
	$(PY) mutation/run_mutmut.py $(ARGS)

# The hand-written one-line mutants of the issue tracker, each against the full quick campaign.
mutants: $(STAMP)
	$(PY) mutation/hand_mutants.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info .mutation
