"""Assemble a HiVAEVideoPipeline folder from a trained tokenizer and a trained transformer.

    python gen/export_pipeline.py --tokenizer runs/tokenizer-shapes-64/model --transformer runs/dit-shapes-64/model \
        --out checkpoints/hivae-shapes-64

The text encoder named in the transformer's training config (default: the packaged MiniLM) is referenced, not
copied, when it is the packaged default.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402

from gen.dit import HiVAEDiT  # noqa: E402
from gen.dit_config import DiTTrainConfig, load_frozen_tokenizer  # noqa: E402
from gen.text_encoder import DEFAULT_TEXT_ENCODER, load_text_encoder  # noqa: E402
from gen.training import save_pretrained_atomic  # noqa: E402
from hivae.config import load_config  # noqa: E402
from pipelines import HiVAEVideoPipeline  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="HiVAE save_pretrained folder")
    parser.add_argument("--transformer", required=True, help="HiVAEDiT save_pretrained folder (train_dit's model/)")
    parser.add_argument("--out", required=True, help="pipeline folder to write")
    args = parser.parse_args(argv)

    transformer_dir = Path(args.transformer)
    training_config = transformer_dir / "training_config.yaml"
    config = load_config(training_config, DiTTrainConfig) if training_config.is_file() else DiTTrainConfig()
    vae = load_frozen_tokenizer(args.tokenizer)
    transformer = HiVAEDiT.from_pretrained(transformer_dir).eval()
    shapes = vae.latent_shapes()
    if tuple(map(tuple, shapes)) != tuple(map(tuple, transformer.latent_shapes())):
        raise ValueError(
            f"{args.transformer}: latent shapes {transformer.latent_shapes()} do not match the tokenizer {shapes}"
        )
    tokenizer = encoder = None
    if transformer.config.text_dim > 0:
        tokenizer, encoder = load_text_encoder(config.text_encoder or DEFAULT_TEXT_ENCODER)
    pipe = HiVAEVideoPipeline(
        vae,
        transformer,
        FlowMatchEulerDiscreteScheduler(),
        encoder,
        tokenizer,
        text_encoder_name=config.text_encoder or DEFAULT_TEXT_ENCODER if encoder is not None else None,
        max_text_length=config.max_text_length,
    )
    out = save_pretrained_atomic(pipe, args.out, config)
    for name, source in (
        ("tokenizer_training_config.yaml", Path(args.tokenizer) / "training_config.yaml"),
        ("tokenizer_eval.json", Path(args.tokenizer) / "eval.json"),
    ):
        if source.is_file():
            shutil.copy(source, out / name)
    for file in out.rglob("*"):
        file.chmod(0o755 if file.is_dir() else 0o644)
    print(f"wrote pipeline to {out.resolve()}")
    return out


if __name__ == "__main__":
    main()
