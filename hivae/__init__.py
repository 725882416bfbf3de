"""hivae: hierarchical video tokenizer (structure + dynamics latents), DiT generator and pipelines."""

__version__ = "0.1.0"
