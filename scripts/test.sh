#!/usr/bin/env bash
# Set up .venv, then run the default (fast) test suite. Slow tests: `.venv/bin/pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
echo "tests done (slow tests: .venv/bin/python -m pytest -m slow)"
