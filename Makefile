# The README's commands. `make gate` and `make test` install what is missing first.
.PHONY: install gate test test-unit test-random up images gpu-check lint typecheck check bench bench-open-loop bench-gateway bench-soak clean

VENV := .venv
BIN := $(VENV)/bin

install:
	@bash scripts/install.sh

gate: install
	$(BIN)/harness gate

# Tests that wait run side by side; the few that measure time run after them, alone.
TEST_WORKERS ?= 6
PYTEST_PHASES := -p no:randomly
# The phases without the fuzz tests leave schemathesis's plugin out (with hypothesis, about 0.5 s
# of imports in every pytest process).
NO_FUZZ := -p no:schemathesis

# The linters and the layering contract first (about a second), one collection (it fills
# pytest's cache, below), then the suite in three phases:
# 1. every test that waits on real services (integration, chaos, docker), side by side;
# 2. `make gate`'s own test alone at normal weight and, beside it in a session group of the
#    lowest weight (nice 19: they take only the CPU the gate leaves; the gate waits most of its
#    six minutes on breaker recovery, looks and alerts), the type and dependency checks, then
#    the tests in LOW_BESIDE_GATE: they take CPU but judge no time (pure unit tests, fuzzing,
#    functional checks of the gateway, the log store, a crash and the pytest plugin);
# 3. the other tests that measure time, alone.
# The nice value goes to the group's autogroup (a session of its own: setsid): across sessions
# the kernel weighs groups, not processes.
LOW := setsid -w nice -n 19 sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec "$$0" "$$@"'
LOW_BESIDE_GATE := tests/unit $(addprefix tests/integration/,test_fuzz_gateway_schema.py \
	test_fuzz_nginx.py test_gateway_api.py test_log_store.py test_gate_crash.py \
	test_pytest_plugin.py)
# The last phase's paths: SERIAL_HOMES in tests/conftest.py, the same (a unit test compares them).
SERIAL_PATHS := tests/integration tests/unit/load/test_load_client.py
# The first phase's tests: everything but what runs beside the gate.
FIRST_PHASE := $(addprefix --ignore=,$(LOW_BESIDE_GATE))
# pytest rewrites the asserts of every test module and plugin package it imports (about 550
# modules, schemathesis's and hypothesis's among them) and caches the result as bytecode, which
# PYTHONDONTWRITEBYTECODE (set on some machines) forbids: then every pytest process rewrote and
# compiled them again, 4.4 s of CPU against 1.8 s from the cache. The test targets let it write,
# and in `make test` one collection fills the cache before the six workers start.
test test-unit test-random: export PYTHONDONTWRITEBYTECODE :=
test: install
	$(BIN)/ruff check harness stack scenarios tests benchmarks
	$(BIN)/ruff format --check harness stack scenarios tests benchmarks
	.tools/bin/actionlint -shellcheck /usr/bin/shellcheck ci-templates/github-actions.yml
	$(BIN)/mkdocs build --strict --quiet --site-dir reports/runs/site
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest $(PYTEST_PHASES) $(NO_FUZZ) --collect-only -q $(FIRST_PHASE) > /dev/null
	@# Every phase runs even when an earlier one fails (all results in one go); any failing fails.
	$(BIN)/pytest $(PYTEST_PHASES) $(NO_FUZZ) -n $(TEST_WORKERS) --dist loadgroup -m "not serial" \
		$(FIRST_PHASE) --durations=15 \
		--junitxml=reports/runs/suite-parallel.xml; parallel=$$?; \
	$(LOW) sh -c '$(BIN)/mypy; t=$$?; $(BIN)/pip check; d=$$?; "$$0" "$$@"; u=$$?; \
		[ $$t -eq 0 ] && [ $$d -eq 0 ] && [ $$u -eq 0 ]' \
		$(BIN)/pytest $(PYTEST_PHASES) -n 2 --dist loadgroup -q -m "not serial" \
		$(LOW_BESIDE_GATE) --junitxml=reports/runs/suite-unit.xml \
		> reports/runs/suite-unit.log 2>&1 & unit_pid=$$!; \
	$(BIN)/pytest $(PYTEST_PHASES) $(NO_FUZZ) -m serial tests/integration/test_make_gate.py --durations=1 \
		--junitxml=reports/runs/suite-gate.xml; gate=$$?; \
	wait $$unit_pid; unit=$$?; \
	[ $$unit -eq 0 ] && tail -n 4 reports/runs/suite-unit.log || cat reports/runs/suite-unit.log; \
	$(BIN)/pytest $(PYTEST_PHASES) $(NO_FUZZ) -m serial $(SERIAL_PATHS) \
		--deselect tests/integration/test_make_gate.py \
		--durations=5 --junitxml=reports/runs/suite-serial.xml; serial=$$?; \
	[ $$parallel -eq 0 ] && [ $$unit -eq 0 ] && [ $$gate -eq 0 ] && [ $$serial -eq 0 ]

# The pure tests alone, for the edit-test loop (under a minute).
test-unit: install
	$(BIN)/pytest $(PYTEST_PHASES) -n 2 tests/unit -q

# The parallel phase in a random order: tests must not depend on each other. pytest-randomly
# prints its seed; `--randomly-seed=N` repeats an order.
test-random: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial"

up: install
	$(BIN)/harness up --ready-file reports/runs/endpoints.json

images: install
	$(BIN)/harness images build

# The GPU path: what this machine lacks for stack/vllm-stack.yaml (each with its fix) and, with a
# GPU, GPUMemoryHigh on real GPU memory (docs/gpu.md). No install first: a GPU machine may have no
# network. Exit 0 ready, 1 the alert check failed, 2 something is missing.
GPU_CHECK_ARGS ?=
gpu-check:
	@bash scripts/gpu-check.sh $(GPU_CHECK_ARGS)

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

# The generator's open-loop ceiling: 1 process beside a simulator (cores shared, then a core
# each), 1 and 2 against nginx.
bench-open-loop: install
	$(BIN)/python benchmarks/bench_open_loop.py

# What nginx + one gateway replica add to streamed requests on the simulated stack (prints figures).
bench-gateway: install
	$(BIN)/python benchmarks/bench_gateway.py

bench-soak: install
	$(BIN)/python benchmarks/bench_gateway_soak.py

clean:
	rm -rf reports/runs .pytest_cache .mypy_cache .ruff_cache
