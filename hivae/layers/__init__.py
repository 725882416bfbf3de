"""Reusable layers: attention, MLP, convolutional blocks, position/timestep embeddings, adaLN modulation."""

from .attention import Attention, set_attention_backend
from .conv import Downsample2x, ResBlock, Upsample2x, fold_pixels, unfold_pixels
from .embeddings import sincos_embedding_1d, sincos_embedding_3d, timestep_embedding
from .frame import FiLMResBlock2d, dct_basis, gaussian_blur2d
from .mlp import Mlp
from .spacetime import SpaceTimeBlock, SpaceTimeTransformer

__all__ = [
    "Attention",
    "Downsample2x",
    "FiLMResBlock2d",
    "Mlp",
    "ResBlock",
    "SpaceTimeBlock",
    "SpaceTimeTransformer",
    "Upsample2x",
    "dct_basis",
    "fold_pixels",
    "gaussian_blur2d",
    "set_attention_backend",
    "sincos_embedding_1d",
    "sincos_embedding_3d",
    "timestep_embedding",
    "unfold_pixels",
]
