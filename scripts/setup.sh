#!/usr/bin/env bash
# Create or update .venv for hivae (idempotent): torch first, so the CPU build 2.13.0 is taken when no torch is
# installed (plain `torch` would pull a multi-GB CUDA build), then the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
stamp=".venv/.hivae-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi
echo "environment ready: $(pwd)/.venv"
