# bondflow: `make demo` and `make test` install everything they need (idempotently), then run.
PY := .venv/bin/python
BONDFLOW := .venv/bin/bondflow
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup demo test bench fuzz clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

# Tests run on TEST_WORKERS processes (pytest-xdist; CI has 2 cores). worksteal: each worker starts on a contiguous
# half of the tests (module fixtures built once per worker) and takes tests from the other when it runs dry.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -q -m "not vivado and not board" --require-tools -n $(TEST_WORKERS) --dist worksteal --durations=30

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build out .pytest_cache

fuzz: setup
	FUZZ_EXAMPLES=10000 $(PY) -m pytest -q tests/failures/test_fuzz.py
