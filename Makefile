# The README's commands. `make gate` and `make test` install what is missing first.
.PHONY: install gate test up images lint typecheck check bench bench-gateway clean

VENV := .venv
BIN := $(VENV)/bin

install:
	@bash scripts/install.sh

gate: install
	$(BIN)/harness gate

# Lint and types first (seconds), then the whole suite: unit, integration, chaos, docker.
test: install
	$(BIN)/ruff check harness stack scenarios tests benchmarks
	$(BIN)/ruff format --check harness stack scenarios tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

up: install
	$(BIN)/harness up --ready-file reports/runs/endpoints.json

images: install
	$(BIN)/harness images build

lint: install
	$(BIN)/ruff check harness stack scenarios tests benchmarks
	$(BIN)/ruff format --check harness stack scenarios tests benchmarks

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_llm_user.py --users 32 --duration 10

# What nginx + one gateway replica add to streamed requests on the simulated stack (prints figures).
bench-gateway: install
	$(BIN)/python benchmarks/bench_gateway.py

clean:
	rm -rf reports/runs .pytest_cache .mypy_cache .ruff_cache
