#!/usr/bin/env bash
# `make gpu-check`: what this machine lacks to run stack/vllm-stack.yaml, each with its fix, and,
# with a GPU, GPUMemoryHigh firing on real GPU memory (docs/gpu.md). Nothing is installed first:
# a GPU machine may have no network. The project's venv runs it when there is one, else the
# machine's python3 (PYTHON=... names another). Arguments go to the command (--preflight-only,
# --stack FILE). Exit 0 ready, 1 the alert check failed, 2 something is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python3
  [[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"
fi
cd "$ROOT"
exec "$PYTHON" -m harness.commands.gpu "$@"
