#!/usr/bin/env bash
# Set up the project's virtual environment (.venv) with everything acqsynth needs, CPU only (Ray included, for
# fanning shards out; vLLM is a GPU-only extra: pip install -e ".[vllm]" on a CUDA machine).
# torch is pinned to 2.13.0 in pyproject.toml: an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,ray]"
echo "acqsynth installed in $(pwd)/.venv"
