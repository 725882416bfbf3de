#!/usr/bin/env bash
# Set up .venv, then run the main job. Outputs go to outputs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/hivae shapes --out outputs/demo --num 4 --gif "$@"
