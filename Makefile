# The README's commands. `make gate` and `make test` install what is missing first.
.PHONY: install gate test test-unit test-random up images lint typecheck check bench bench-gateway clean

VENV := .venv
BIN := $(VENV)/bin

install:
	@bash scripts/install.sh

gate: install
	$(BIN)/harness gate

# Tests that wait run side by side; the few that measure time run after them, alone. The default
# gate's own test (`beside`) runs during the side-by-side phase at normal priority while that
# phase runs niced: the gate's stack gets the CPU it asks for (under one core of two), and the
# CPU-bound phase takes the rest instead of leaving it idle for the gate's six minutes.
TEST_WORKERS ?= 6
PYTEST_PHASES := -p no:randomly
BESIDE_LOG := reports/runs/suite-beside.log

# Lint, types and the dependency check first (seconds), then the whole suite: unit,
# integration, chaos, docker, then the serial phase.
test: install
	$(BIN)/ruff check harness stack scenarios tests benchmarks
	$(BIN)/ruff format --check harness stack scenarios tests benchmarks
	.tools/bin/actionlint -shellcheck /usr/bin/shellcheck ci-templates/github-actions.yml
	$(BIN)/mkdocs build --strict --quiet --site-dir reports/runs/site
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/pip check
	@# Every phase runs even when one fails (all results in one go); any failing fails. The
	@# beside phase's output is printed once it is done, not interleaved with the other's.
	@mkdir -p reports/runs
	$(BIN)/pytest $(PYTEST_PHASES) -m beside --durations=5 \
		--junitxml=reports/runs/suite-beside.xml > $(BESIDE_LOG) 2>&1 & beside_pid=$$!; \
	nice -n 15 $(BIN)/pytest $(PYTEST_PHASES) -n $(TEST_WORKERS) --dist loadgroup \
		-m "not serial and not beside" --durations=15 \
		--junitxml=reports/runs/suite-parallel.xml; parallel=$$?; \
	wait $$beside_pid; beside=$$?; cat $(BESIDE_LOG); \
	$(BIN)/pytest $(PYTEST_PHASES) -m serial --durations=5 \
		--junitxml=reports/runs/suite-serial.xml; serial=$$?; \
	[ $$parallel -eq 0 ] && [ $$beside -eq 0 ] && [ $$serial -eq 0 ]

# The pure tests alone, for the edit-test loop (under a minute).
test-unit: install
	$(BIN)/pytest $(PYTEST_PHASES) -n 2 tests/unit -q

# The parallel phase in a random order: tests must not depend on each other. pytest-randomly
# prints its seed; `--randomly-seed=N` repeats an order.
test-random: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial and not beside"

up: install
	$(BIN)/harness up --ready-file reports/runs/endpoints.json

images: install
	$(BIN)/harness images build

lint: install
	$(BIN)/ruff check harness stack scenarios tests benchmarks
	$(BIN)/ruff format --check harness stack scenarios tests benchmarks
	.tools/bin/actionlint -shellcheck /usr/bin/shellcheck ci-templates/github-actions.yml
	$(BIN)/mkdocs build --strict --quiet --site-dir reports/runs/site
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_llm_user.py --users 32 --duration 10

# What nginx + one gateway replica add to streamed requests on the simulated stack (prints figures).
bench-gateway: install
	$(BIN)/python benchmarks/bench_gateway.py

clean:
	rm -rf reports/runs .pytest_cache .mypy_cache .ruff_cache
