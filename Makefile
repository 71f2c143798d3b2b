# bondflow: `make demo` and `make test` install everything they need (idempotently), then run.
PY := .venv/bin/python
BONDFLOW := .venv/bin/bondflow
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup demo test bench fuzz clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -m "not vivado and not board" --require-tools

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build out .pytest_cache

fuzz: setup
	FUZZ_EXAMPLES=10000 $(PY) -m pytest -q tests/failures/test_fuzz.py
