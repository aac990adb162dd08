"""A small reference vision-language-action network, the class ``checkpoint init`` writes.

It is what the checkpoint machinery is tested and benchmarked with, and a template for a
real model: any ``torch.nn.Module`` with the same ``forward`` keywords loads the same way.

Architecture (small enough that a CPU forward pass at 64-96 px takes milliseconds):

- one CNN encoder shared by the cameras (three strided convolutions, global average
  pooling, layer norm), plus a learned embedding per camera slot; a camera whose mask is
  False (padding) contributes zeros;
- the 8-D state through a linear layer;
- the instruction as hashed word ids (:mod:`evalharness.models.inputs`) averaged in an
  ``EmbeddingBag`` (id 0 = padding), so no external tokenizer is needed;
- an MLP trunk over the (layer-normed) concatenation, then one learned query per output position
  (``horizon * action_dim`` of them, time-major) and a shared head: ``classes`` logits per
  position (MinT-uniform tokens: 512 classes, 10 steps x 7 dims) or, with
  ``output="chunk"``, one value in [-1, 1] per position (a normalized chunk).
"""

from __future__ import annotations

import torch
from torch import nn


class ReferenceVLA(nn.Module):
    """Cameras + state + instruction -> action-token logits (B, H * D, classes) or a chunk (B, H, D)."""

    def __init__(self, *, cameras: int = 3, state_dim: int = 8, prompt_vocab: int = 4096, width: int = 16,
                 embed: int = 64, hidden: int = 128, horizon: int = 10, action_dim: int = 7, classes: int = 512,
                 output: str = "tokens") -> None:
        super().__init__()
        if output not in ("tokens", "chunk"):
            raise ValueError(f"output {output!r} is not valid; allowed: tokens, chunk")
        self.horizon, self.action_dim, self.output = horizon, action_dim, output
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, embed, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(embed),
        )
        self.camera_embedding = nn.Parameter(torch.randn(cameras, embed) * 0.02)
        self.state_proj = nn.Linear(state_dim, embed)
        self.words = nn.EmbeddingBag(prompt_vocab, embed, mode="mean", padding_idx=0)
        joint = (cameras + 2) * embed
        self.trunk = nn.Sequential(nn.LayerNorm(joint), nn.Linear(joint, hidden), nn.GELU(),
                                   nn.Linear(hidden, hidden), nn.GELU())
        self.queries = nn.Parameter(torch.randn(horizon * action_dim, hidden) * 0.1)
        self.head = nn.Linear(hidden, classes if output == "tokens" else 1)

    def forward(self, images: torch.Tensor, image_mask: torch.Tensor, state: torch.Tensor,
                prompt_ids: torch.Tensor) -> torch.Tensor:
        """images (B, C, 3, S, S) in [0, 1]; image_mask (B, C) bool; state (B, state_dim);
        prompt_ids (B, L) int64, 0 = padding."""
        batch, cams = images.shape[:2]
        features = self.encoder(images.flatten(0, 1)).view(batch, cams, -1) + self.camera_embedding
        features = features * image_mask[..., None].to(features.dtype)
        x = torch.cat([features.flatten(1), self.state_proj(state), self.words(prompt_ids)], dim=-1)
        h = self.trunk(x)
        per_position = nn.functional.gelu(h[:, None, :] + self.queries[None])
        out = self.head(per_position)
        if self.output == "tokens":
            return out
        return torch.tanh(out).view(batch, self.horizon, self.action_dim)
