"""gen: the generator over HiVAE latents: HiVAEDiT, flow matching, text encoding, latent caching, training helpers.

Library modules here import only `hivae` (never `pipelines`); `train_tokenizer.py`, `train_dit.py`,
`cache_latents.py` (its `main`) and `export_pipeline.py` are the command-line entry points.
"""

from .cache_latents import LatentCacheDataset, build_cache, cache_fingerprint
from .dit import DIT_SIZES, HiVAEDiT, HiVAEDiTOutput
from .flow_matching import FlowConfig, add_noise, flow_matching_loss, sample_sigmas
from .text_encoder import DEFAULT_TEXT_ENCODER, encode_text, load_text_encoder

__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "DIT_SIZES",
    "FlowConfig",
    "HiVAEDiT",
    "HiVAEDiTOutput",
    "LatentCacheDataset",
    "add_noise",
    "build_cache",
    "cache_fingerprint",
    "encode_text",
    "flow_matching_loss",
    "load_text_encoder",
    "sample_sigmas",
]
