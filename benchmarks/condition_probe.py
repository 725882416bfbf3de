"""How strongly each condition path moves the shipped DiT: velocity change when one attribute is swapped.

    python benchmarks/condition_probe.py            # shipped checkpoint, 8 fixed noise latents, t = 700

For a pair of conditions that differ in one attribute (motion left vs right, shape circle vs square), the L2 norm of
the difference of the DiT's velocity predictions on the same noisy latents, once through the prompt and once through
the class label. A path whose swap barely changes the velocity barely conditions the model. Writes
benchmarks/results/condition_probe.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, write_json  # noqa: E402
from hivae.data import caption, class_id  # noqa: E402
from hivae.loading import default_checkpoint  # noqa: E402
from pipelines import HiVAEVideoPipeline  # noqa: E402

PAIRS = {  # name -> ((shape, colour, motion), (shape, colour, motion))
    "motion left -> right": (("circle", "red", "left"), ("circle", "red", "right")),
    "shape circle -> square": (("circle", "red", "left"), ("square", "red", "left")),
}


@torch.no_grad()
def velocity_change(pipe, a, b, path: str, latents, timestep: float) -> float:
    """||v(condition b) - v(condition a)|| over all latents, with the condition given through `path`."""
    t = torch.full((latents.batch_size,), timestep)
    outputs = []
    for attributes in (a, b):
        kwargs = {}
        if path == "text":
            states, mask, _, _ = pipe.encode_prompt([caption(*attributes)] * latents.batch_size)
            kwargs = {"encoder_hidden_states": states, "encoder_attention_mask": mask}
        else:
            kwargs = {"class_labels": torch.full((latents.batch_size,), class_id(*attributes))}
        out = pipe.transformer(latents, t, **kwargs).sample
        outputs.append(torch.cat([out.structure.flatten(), out.dynamics.flatten()]))
    return (outputs[1] - outputs[0]).norm().item()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the shipped checkpoint)")
    parser.add_argument("--latents", type=int, default=8, help="noise latents probed")
    parser.add_argument("--timestep", type=float, default=700.0, help="flow timestep (sigma * 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pipe = HiVAEVideoPipeline.from_pretrained(args.checkpoint or default_checkpoint())
    latents = pipe.prepare_latents(args.latents, torch.Generator().manual_seed(args.seed), torch.device("cpu"))
    rows = []
    for name, (a, b) in PAIRS.items():
        row = {"swap": name}
        for path in ("text", "class"):
            row[f"{path} path"] = round(velocity_change(pipe, a, b, path, latents, args.timestep), 2)
        rows.append(row)
    print_table(rows, ["swap", "text path", "class path"])
    write_json(Path(__file__).parent / "results" / "condition_probe.json", {"args": vars(args), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
