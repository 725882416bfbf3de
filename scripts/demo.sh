#!/usr/bin/env bash
# Set up .venv, then run the main job: generate a video (mp4 + gif) from a prompt with the shipped checkpoint.
#   bash scripts/demo.sh                                   # default prompt
#   bash scripts/demo.sh --prompt "a blue square moving up" --seed 3
#   bash scripts/demo.sh --class "green triangle right"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
if [ $# -eq 0 ]; then
  set -- --prompt "a red circle moving left"
fi
.venv/bin/hivae generate --out outputs/demo "$@"
echo "outputs are in $(pwd)/outputs/demo"
