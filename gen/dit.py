"""`HiVAEDiT`: a diffusion transformer over the two-part HiVAE latent.

One token sequence holds the structure latent followed by the dynamics latent. Two layouts (`token_layout`):
- "patch": the structure patchified on its (n_q, h_s, w_s) grid, one dynamics token per `dynamics_group` frames;
- "query": one structure token per query carrying its whole coarse grid (what a query holds belongs together),
  dynamics grouped over `dynamics_group` frames: a 16-frame clip with 4 queries and groups of 4 is 8 tokens.
Each token gets a type embedding and a sin-cos position embedding. DiT blocks use adaLN-Zero on
(timestep + class + pooled text), self-attention through SDPA, cross-attention to the text encoder's hidden states and
an MLP. Dropping the class/text condition (replaced by learned null embeddings) trains the unconditional branch that
classifier-free guidance needs.

Shapes ("patch"): structure (B, d_s, n_q, h_s, w_s) -> (B, n_q*(h_s/p)*(w_s/p), d_s*p*p) tokens;
       ("query"): structure -> (B, n_q, d_s*h_s*w_s) tokens;
       dynamics  (B, d_d, T, p_h, p_w) -> (B, T/g, g*d_d*p_h*p_w) tokens, g = dynamics_group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from einops import rearrange

from hivae.latents import HierarchicalLatent
from hivae.layers import Attention, Mlp, sincos_embedding_1d, sincos_embedding_3d, timestep_embedding
from hivae.layers.modulation import modulate
from hivae.loading import CheckedLoadMixin

DIT_SIZES = {  # name -> (hidden_size, depth, heads)
    "DiT-T": (128, 4, 4),
    "DiT-S": (384, 12, 6),
    "DiT-B": (768, 12, 12),
}


@dataclass
class HiVAEDiTOutput(BaseOutput):
    sample: HierarchicalLatent  # predicted velocity, same shapes as the input latent


class DiTBlock(nn.Module):
    """adaLN-Zero self-attention and MLP, with plain pre-norm cross-attention to text in between."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, context_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.cross = Attention(dim, heads, context_dim=dim) if context_dim else None
        self.norm_cross = nn.LayerNorm(dim) if context_dim else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None
    ) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        if self.cross is not None:
            x = x + self.cross(self.norm_cross(x), context, mask)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.modulation(cond).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class HiVAEDiT(CheckedLoadMixin, ModelMixin, ConfigMixin):
    """Velocity-predicting transformer over (structure, dynamics) latents.

    Args:
        structure_channels, num_queries, structure_size: the structure latent (d_s, n_q, (h_s, w_s)).
        dynamics_channels, num_frames, dynamics_pool: the dynamics latent (d_d, T, (p_h, p_w)).
        patch_size: spatial patch of the structure grid.
        hidden_size, depth, heads, mlp_ratio: transformer size (see `DIT_SIZES`).
        num_classes: class-label conditioning (0 = none). text_dim: text encoder width (0 = no text).
        condition_dropout: probability of dropping the class and (independently) the text condition in training.
        class_names: the class table (id -> name) the labels refer to, stored with the checkpoint (None = unnamed).
        token_layout: "patch" or "query" (see the module docstring); dynamics_group: frames per dynamics token.
        condition_probs: (both, text only, class only, neither) probabilities of the training conditions for models
            with class and text, sampled explicitly so that each path learns to work alone; None = drop class and
            text independently with `condition_dropout`. With both conditions the class also enters the
            cross-attention as one more context token (besides adaLN), as text does.
        class_factors: sizes of the factors of a class id, last fastest (e.g. [3, 6, 5, 4] for shape x colour x
            path x pattern); a class is then the sum of one vector per factor. None = one vector per class.
    """

    @register_to_config
    def __init__(
        self,
        structure_channels: int = 4,
        num_queries: int = 4,
        structure_size: tuple[int, int] = (2, 2),
        dynamics_channels: int = 2,
        num_frames: int = 16,
        dynamics_pool: tuple[int, int] = (1, 1),
        patch_size: int = 1,
        hidden_size: int = 256,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        num_classes: int = 0,
        text_dim: int = 384,
        condition_dropout: float = 0.1,
        class_names: list[str] | None = None,
        token_layout: str = "patch",
        dynamics_group: int = 1,
        condition_probs: tuple[float, float, float, float] | None = None,
        class_token: bool = False,
        class_factors: list[int] | None = None,
    ):
        super().__init__()
        if condition_probs is not None and (len(condition_probs) != 4 or abs(sum(condition_probs) - 1) > 1e-6):
            raise ValueError(f"condition_probs must be 4 probabilities summing to 1, got {condition_probs}")
        if token_layout not in ("patch", "query"):
            raise ValueError(f"token_layout must be 'patch' or 'query', got {token_layout!r}")
        if num_frames % dynamics_group:
            raise ValueError(f"num_frames={num_frames} must be divisible by dynamics_group={dynamics_group}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names for num_classes={num_classes}")
        if class_factors is not None and (num_classes <= 0 or math.prod(class_factors) != num_classes):
            raise ValueError(f"class_factors {list(class_factors)} must multiply to num_classes={num_classes}")
        h_s, w_s = structure_size
        if h_s % patch_size or w_s % patch_size:
            raise ValueError(f"structure_size {structure_size} must be divisible by patch_size {patch_size}")
        if num_classes <= 0 and text_dim <= 0:
            raise ValueError("HiVAEDiT needs a condition: num_classes > 0 and/or text_dim > 0")
        structure_dim = structure_channels * (h_s * w_s if token_layout == "query" else patch_size**2)
        dynamics_dim = dynamics_channels * dynamics_pool[0] * dynamics_pool[1] * dynamics_group
        self.structure_in = nn.Linear(structure_dim, hidden_size)
        self.dynamics_in = nn.Linear(dynamics_dim, hidden_size)
        self.type_embedding = nn.Parameter(torch.zeros(2, hidden_size))
        self.time_mlp = nn.Sequential(nn.Linear(256, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))
        # class table has one extra row: the null class used for dropped / unconditional samples.
        # a factored class is the sum of one vector per factor (shape, colour, path, pattern): classes that share an
        # attribute share its vector, so each class learns from every clip with one of its attributes and unseen
        # combinations work; the class table then keeps only the null row
        rows = 1 if class_factors else num_classes + 1
        self.class_embedding = nn.Embedding(rows, hidden_size) if num_classes > 0 else None
        self.class_factor_embeddings = (
            nn.ModuleList(nn.Embedding(n, hidden_size) for n in class_factors) if class_factors else None
        )
        if text_dim > 0:
            self.text_proj = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, hidden_size))
            self.pooled_proj = nn.Sequential(
                nn.Linear(text_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
            )
            self.null_text = nn.Parameter(torch.zeros(1, text_dim))  # the unconditional "prompt": one token
        self.blocks = nn.ModuleList(
            DiTBlock(hidden_size, heads, mlp_ratio, hidden_size if text_dim > 0 else 0) for _ in range(depth)
        )
        self.structure_out = FinalLayer(hidden_size, structure_dim)
        self.dynamics_out = FinalLayer(hidden_size, dynamics_dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Xavier for linear layers; zero adaLN modulation and output layers (adaLN-Zero)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.type_embedding, std=0.02)
        if self.class_embedding is not None:
            nn.init.normal_(self.class_embedding.weight, std=0.02)
        for table in self.class_factor_embeddings or ():
            nn.init.normal_(table.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.modulation[-1].weight)
            nn.init.zeros_(block.modulation[-1].bias)
        for final in (self.structure_out, self.dynamics_out):
            for layer in (final.modulation[-1], final.linear):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def class_digits(self, labels: torch.Tensor) -> list[torch.Tensor]:
        """Mixed-radix digits of class ids (B,) over `class_factors`, the last factor fastest."""
        digits, rest = [], labels
        for size in reversed(self.config.class_factors):
            digits.append(rest % size)
            rest = torch.div(rest, size, rounding_mode="floor")
        return digits[::-1]

    def class_tokens(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, F, D) class conditioning of ids (B,): one vector per factor (F = 1 unfactored); null ids give the
        null vector in every slot. Their sum conditions adaLN; with `class_token` they are also context tokens."""
        if self.class_factor_embeddings is None:
            return self.class_embedding(labels)[:, None]
        digits = self.class_digits(labels.clamp_max(self.null_class - 1))
        tokens = torch.stack([table(digit) for table, digit in zip(self.class_factor_embeddings, digits)], dim=1)
        return torch.where((labels == self.null_class)[:, None, None], self.class_embedding.weight[0], tokens)

    def num_tokens(self) -> int:
        return self._structure_tokens() + self.config.num_frames // self.config.dynamics_group

    def _structure_tokens(self) -> int:
        c = self.config
        if c.token_layout == "query":
            return c.num_queries
        return c.num_queries * (c.structure_size[0] // c.patch_size) * (c.structure_size[1] // c.patch_size)

    def _structure_pattern(self) -> tuple[str, dict]:
        """einops pattern and sizes between the structure latent and its tokens."""
        c, p = self.config, self.config.patch_size
        if c.token_layout == "query":
            return "b c n h w -> b n (c h w)", {"h": c.structure_size[0], "w": c.structure_size[1]}
        return "b c n (h p) (w q) -> b (n h w) (c p q)", {"h": c.structure_size[0] // p, "p": p, "q": p}

    def latent_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Per-clip latent shapes this model generates: ((d_s, n_q, h_s, w_s), (d_d, T, p_h, p_w))."""
        c = self.config
        return (
            (c.structure_channels, c.num_queries, *c.structure_size),
            (c.dynamics_channels, c.num_frames, *c.dynamics_pool),
        )

    def _tokens(self, latent: HierarchicalLatent) -> torch.Tensor:
        c, p = self.config, self.config.patch_size
        expected = self.latent_shapes()
        for name, tensor, shape in (
            ("structure", latent.structure, expected[0]),
            ("dynamics", latent.dynamics, expected[1]),
        ):
            if tuple(tensor.shape[1:]) != tuple(shape):
                raise ValueError(f"{name} latent must be (B, {', '.join(map(str, shape))}), got {tuple(tensor.shape)}")
        pattern, sizes = self._structure_pattern()
        s = rearrange(latent.structure, pattern, **sizes)
        d = rearrange(latent.dynamics, "b c (g k) ph pw -> b g (k c ph pw)", k=c.dynamics_group)
        dim = c.hidden_size
        if c.token_layout == "query":
            s_position = sincos_embedding_1d(torch.arange(c.num_queries, device=s.device), dim)
        else:
            grid = (c.num_queries, c.structure_size[0] // p, c.structure_size[1] // p)
            s_position = sincos_embedding_3d(*grid, dim, s.device)
        s = self.structure_in(s) + self.type_embedding[0] + s_position.to(s.dtype)
        groups = torch.arange(c.num_frames // c.dynamics_group, device=d.device)
        d = self.dynamics_in(d) + self.type_embedding[1] + sincos_embedding_1d(groups, dim).to(d.dtype)
        return torch.cat([s, d], dim=1)

    def training_drops(self, batch: int, force_drop: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(drop_class, drop_text) (B,) bool for a training batch. The drop path runs even with dropout 0, so the
        null embeddings always take part (DDP needs every parameter in the graph)."""
        p = self.config.condition_dropout
        forced = torch.zeros(batch, dtype=torch.bool, device=device) if force_drop is None else force_drop.bool()
        forced = forced.to(device)
        if self.config.condition_probs is not None:  # both / text only / class only / neither, explicitly
            cuts = torch.tensor(self.config.condition_probs, device=device).cumsum(0)
            case = torch.searchsorted(cuts, torch.rand(batch, device=device).clamp_max(cuts[-1].item() - 1e-6))
            return forced | (case == 1) | (case == 3), forced | (case == 2) | (case == 3)
        # class and text dropped independently: the model learns each alone, and neither (for CFG)
        drop_class = forced | (torch.rand(batch, device=device) < p) if p > 0 else forced
        drop_text = forced | (torch.rand(batch, device=device) < p) if p > 0 else forced
        return drop_class, drop_text

    def _condition(
        self,
        timestep: torch.Tensor,
        class_labels: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        drop_class: torch.Tensor | None,
        drop_text: torch.Tensor | None,
        batch: int,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Conditioning vector (B, D) and the cross-attention context (B, L, D) + mask (B, L)."""
        device = timestep.device
        cond = self.time_mlp(timestep_embedding(timestep.float(), 256).to(dtype))
        if self.class_embedding is not None:
            labels = class_labels if class_labels is not None else torch.full((batch,), self.null_class, device=device)
            if drop_class is not None:
                labels = torch.where(drop_class, torch.full_like(labels, self.null_class), labels)
            class_tokens = self.class_tokens(labels)
            cond = cond + class_tokens.sum(1)
        context = mask = None
        if self.config.text_dim > 0:
            null = self.null_text.to(dtype)[None].expand(batch, 1, -1)
            if encoder_hidden_states is None:
                states, mask = null, torch.ones(batch, 1, dtype=torch.bool, device=device)
            else:
                states = encoder_hidden_states.to(dtype)
                mask = (
                    torch.ones(states.shape[:2], dtype=torch.bool, device=device)
                    if encoder_attention_mask is None
                    else encoder_attention_mask.bool()
                )
                if drop_text is not None:  # dropped rows see only the null token
                    states = torch.cat([null, states], dim=1)
                    mask = torch.cat([drop_text[:, None], mask & ~drop_text[:, None]], dim=1)
            pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
            cond = cond + self.pooled_proj(pooled)
            context = self.text_proj(states)
            if self.config.class_token and self.class_embedding is not None:  # the class as one more context token
                context = torch.cat([class_tokens.to(context.dtype), context], dim=1)
                mask = torch.cat([mask.new_ones(class_tokens.shape[:2]), mask], dim=1)
        return cond, context, mask

    def forward(
        self,
        sample: HierarchicalLatent,
        timestep: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        force_drop: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> HiVAEDiTOutput | tuple:
        """Predict the flow-matching velocity.

        Args:
            sample: noisy normalised latent. timestep: (B,) or scalar, sigma * 1000.
            class_labels: (B,) long, or None (null class). encoder_hidden_states: (B, L, text_dim) or None (null
            text); encoder_attention_mask: (B, L) bool/int, 1 = token.
            force_drop: (B,) bool, replace the condition by the null one for these rows (training dropout; also
            how a batch mixes conditional and unconditional rows).
        """
        batch = sample.batch_size
        tokens = self._tokens(sample)
        timestep = torch.as_tensor(timestep, device=tokens.device)
        timestep = timestep.expand(batch) if timestep.ndim == 0 else timestep
        drop_class = drop_text = force_drop
        if self.training:
            drop_class, drop_text = self.training_drops(batch, force_drop, tokens.device)
        cond, context, mask = self._condition(
            timestep,
            class_labels,
            encoder_hidden_states,
            encoder_attention_mask,
            drop_class,
            drop_text,
            batch,
            tokens.dtype,
        )
        for block in self.blocks:
            tokens = block(tokens, cond, context, mask)
        n_s = self._structure_tokens()
        c = self.config
        pattern, sizes = self._structure_pattern()
        inverse = " -> ".join(reversed(pattern.split(" -> ")))
        structure = rearrange(self.structure_out(tokens[:, :n_s], cond), inverse, n=c.num_queries, **sizes)
        dynamics = rearrange(
            self.dynamics_out(tokens[:, n_s:], cond),
            "b g (k c ph pw) -> b c (g k) ph pw",
            k=c.dynamics_group,
            ph=c.dynamics_pool[0],
            pw=c.dynamics_pool[1],
        )
        out = HierarchicalLatent(structure, dynamics)
        return HiVAEDiTOutput(sample=out) if return_dict else (out,)

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "HiVAEDiT":
        """A DiT whose latent shapes match a trained tokenizer (at its training clip size): a HiVAE, or a VideoVAE3D
        (its grid as the structure part, its constant dynamics slot as one token)."""
        (d_s, n_q, h_s, w_s), (d_d, t, p_h, p_w) = tokenizer.latent_shapes()
        shapes = dict(
            structure_channels=d_s,
            num_queries=n_q,
            structure_size=(h_s, w_s),
            dynamics_channels=d_d,
            num_frames=t,
            dynamics_pool=(p_h, p_w),
        )
        return cls(**(shapes | kwargs))
