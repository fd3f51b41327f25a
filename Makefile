# `make bench` and `make test` set themselves up on a machine with only python3 and make:
# without PYTHON they create .venv, install torch==$(TORCH) and then the project into it.
# PYTHON=/path/to/python uses that interpreter as it is (a GPU machine's own torch, or one
# virtual environment per torch version) and installs nothing.
VENV   ?= .venv
# A torch version (`make bench-versions` takes a list). PIP_TORCH_ARGS chooses the build,
# e.g. PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH  ?= 2.13.0
PIP_TORCH_ARGS ?=
BOOTSTRAP_PYTHON ?= python3

ifdef PYTHON
PY    := $(PYTHON)
SETUP :=
else
PY    := $(VENV)/bin/python
SETUP := $(VENV)/.installed
endif

.PHONY: bench test test-all coverage verify gpu-check perf-check mutation-check bench-pytest bench-pytest-compare bench-versions clean-venv

# Every run `make bench` makes goes into the history store too (HISTORY= leaves it out);
# BENCH_HISTORY=postgresql://... points it at a team's database.
HISTORY ?= $(or $(BENCH_HISTORY),results/history.duckdb)

# Measured by as many fresh worker processes as the spread between them asks for (two to
# four), so that the run carries that spread and a comparison of two runs can see it;
# WORKERS=1 measures in one process.
WORKERS ?= 0
# Its recipe is not echoed: the store's URL may hold a password (the run names its store,
# masked, once it is added).
bench: $(SETUP)                  ## the default sweep on this machine's default devices
	@$(PY) -m bench run --workers $(WORKERS) $(if $(HISTORY),--history "$(HISTORY)") $(ARGS)

# Two tiers (tests/conftest.py says which markers make the long one). `make test` is the quick
# tier, every module and every command once, in minutes; `make test-all` adds the fuzzing,
# signals, real servers and browsers and the longer sweeps, as CI runs it.
# Both tiers run on TEST_PROCESSES processes (pytest-xdist): the tests hold with another
# process on each core, and two halve the time on two cores. Each process starts its own
# PostgreSQL server and browser on free ports; the Slurm tests share one cluster, so they
# go to one process together (tests/conftest.py marks them one xdist group).
TEST_PROCESSES ?= 2
test: $(SETUP)                   ## the quick tier (GPU tests skip without CUDA)
	$(PY) -m pytest --quick -n $(TEST_PROCESSES) $(ARGS)

test-all: $(SETUP)               ## both tiers
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(ARGS)

# Line and branch coverage of bench/ and multinet/ over both tiers, the tests' subprocesses
# included (pyproject.toml's [tool.coverage]); `ARGS=--quick` for the quick tier's alone.
coverage: $(SETUP)               ## coverage of both tiers: a table, and htmlcov/index.html
	rm -f .coverage .coverage.*
	COVERAGE_ROOT="$(CURDIR)" $(PY) -m coverage run -m pytest -p no:cacheprovider $(ARGS); \
	status=$$?; \
	COVERAGE_ROOT="$(CURDIR)" $(PY) -m coverage combine -q; \
	COVERAGE_ROOT="$(CURDIR)" $(PY) -m coverage report --skip-covered --sort=cover; \
	COVERAGE_ROOT="$(CURDIR)" $(PY) -m coverage html -q; \
	exit $$status

verify: $(SETUP)                 ## gradient flow, setup equivalence, the reference loops
	$(PY) -m bench verify $(ARGS)

gpu-check: $(SETUP)              ## one command for a GPU machine, a few minutes on one GPU
	status=0; \
	$(PY) -m pytest -m gpu -p no:cacheprovider || status=1; \
	$(PY) -m bench gpu-check $(ARGS) || status=1; \
	exit $$status

perf-check: $(SETUP)             ## the timer's own accuracy figures on this machine
	$(PY) -m bench perf-check $(ARGS)

mutation-check: $(SETUP)         ## plant known defects one at a time; each must fail a test
	$(PY) -m bench mutation-check $(ARGS)

# The pytest-benchmark suite (bench/suite): saved per machine, device kind and torch version.
SUITE          = $(PY) -m pytest bench/suite -p no:cacheprovider --benchmark-enable --benchmark-only \
                 --benchmark-disable-gc
SUITE_STORAGE  = --benchmark-storage="$$($(PY) -m bench.suite.storage)"
# min, not median: other work on a shared machine only ever adds time, so the minimum
# moves least between runs; a real slowdown moves it all the same.
COMPARE_FAIL  ?= min:15%

bench-pytest: $(SETUP)           ## run the suite and save it (raw rounds kept)
	$(SUITE) $(SUITE_STORAGE) --benchmark-autosave --benchmark-save-data $(ARGS)

bench-pytest-compare: $(SETUP)   ## run the suite against the last saved run; fail on regression
	$(SUITE) $(SUITE_STORAGE) --benchmark-compare --benchmark-compare-fail=$(COMPARE_FAIL) $(ARGS)

# One environment per torch version under .venvs/, the same sweep in each in paired rounds
# (fresh processes side by side, taking turns), then compared round by round. ROUNDS=N
# overrides the most rounds (bench/analyze/plans.py's MAX_ROUNDS); they stop sooner once
# every measurement is decided.
ROUNDS ?=
# Not echoed either: ARGS may hold a run's --history URL and its password.
bench-versions:                  ## e.g. make bench-versions TORCH="2.13.0 2.14.1"
	@$(BOOTSTRAP_PYTHON) -m bench versions $(TORCH) $(if $(ROUNDS),--rounds $(ROUNDS)) --pip-args "$(PIP_TORCH_ARGS)" --run-args "$(ARGS)"

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build where a CPU wheel
# is all that is wanted. On PyPI's Linux x86_64 index this pin is itself a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet "torch==$(TORCH)" $(PIP_TORCH_ARGS)
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

clean-venv:
	rm -rf $(VENV)
