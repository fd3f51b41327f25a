"""A CLIP-style dual encoder trained contrastively (Radford et al., 2021; the loss and the
text transformer as openai/CLIP's ``model.py`` writes them).

The image encoder is ResNet-18 whose last layer projects to the joint embedding (512:
11,439,168 parameters); the text encoder is CLIP's text transformer (vocabulary 49,408,
context 77, width 512, 8 heads, 12 pre-norm layers, causal mask, features taken at the
end-of-text token) with the learnable temperature ``logit_scale`` (log 1/0.07) beside its
projection, initialised as CLIP's ``initialize_parameters`` draws them. The loss is the
symmetric InfoNCE over the batch. Under AdamW the paper's hyperparameters apply (lr 5e-4,
betas 0.9/0.98, eps 1e-6, weight decay 0.2), under Adam the same without decay.

Departures, none of which changes the work of a step: the blocks are torch's
``nn.TransformerEncoderLayer`` (GELU where CLIP has its QuickGELU; the same parameters),
their biases start as torch's (``nn.TransformerEncoder`` copies one layer, and CLIP's
initialisation redraws only the weights), and weight decay applies to every parameter where
CLIP's training code spares gains and biases. Tokens are synthetic: random ids, an end-of-text token (the
vocabulary's last id, the largest, as CLIP's is) at a random position, zeros after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from multinet.scenarios import register
from multinet.workloads.base import Workload
from multinet.workloads.resnet import resnet18


@dataclass(frozen=True)
class ClipSizes:
    image_size: int = 224
    resnet_width: int = 64
    embed: int = 512
    vocab: int = 49408
    context: int = 77
    text_width: int = 512
    heads: int = 8
    layers: int = 12


SIZES = {"tiny": ClipSizes(image_size=32, resnet_width=4, embed=16, vocab=64, context=8,
                           text_width=16, heads=2, layers=2),
         "published": ClipSizes()}


class TextEncoder(nn.Module):
    def __init__(self, s: ClipSizes):
        super().__init__()
        self.token_embedding = nn.Embedding(s.vocab, s.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(s.context, s.text_width))
        layer = nn.TransformerEncoderLayer(s.text_width, s.heads, 4 * s.text_width,
                                           dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, s.layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(s.text_width)
        self.text_projection = nn.Parameter(torch.empty(s.text_width, s.embed))
        self.logit_scale = nn.Parameter(torch.full((), math.log(1 / 0.07)))
        self._initialise(s)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(s.context),
                             persistent=False)

    def _initialise(self, s: ClipSizes) -> None:
        """CLIP's ``initialize_parameters`` for the text side, in its order: each block's
        weights drawn afresh, so that the copied layers differ."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        width = s.text_width
        proj_std = width ** -0.5 * (2 * s.layers) ** -0.5
        attn_std, fc_std = width ** -0.5, (2 * width) ** -0.5
        for block in self.transformer.layers:
            nn.init.normal_(block.self_attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.self_attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.linear1.weight, std=fc_std)
            nn.init.normal_(block.linear2.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x, mask=self.mask, is_causal=True))
        eot = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return eot @ self.text_projection


def contrastive_loss(image: torch.Tensor, text: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: each image's caption is the one at its own index."""
    image = image / image.norm(dim=1, keepdim=True)
    text = text / text.norm(dim=1, keepdim=True)
    logits_per_image = logit_scale.exp() * image @ text.t()
    labels = torch.arange(image.shape[0], device=image.device)
    return (F.cross_entropy(logits_per_image, labels)
            + F.cross_entropy(logits_per_image.t(), labels)) / 2


@register
class Clip(Workload):
    SIZES = SIZES
    name = "clip"
    description = "CLIP-style dual encoder: ResNet-18 images, transformer text, InfoNCE"
    expected_flow = {"loss": frozenset({"image", "text"})}
    optimizer_overrides: ClassVar = {
        "adam": {"lr": 5e-4, "betas": (0.9, 0.98), "eps": 1e-6},
        "adamw": {"lr": 5e-4, "betas": (0.9, 0.98), "eps": 1e-6, "weight_decay": 0.2}}

    def build_networks(self):
        s = self.dims
        return {"image": resnet18(num_classes=s.embed, width=s.resnet_width),
                "text": TextEncoder(s)}

    def make_batch(self, batch_size, generator):
        s = self.dims
        n, length = batch_size, s.context
        tokens = torch.randint(1, s.vocab - 1, (n, length), generator=generator)
        ends = torch.randint(1, length, (n,), generator=generator)
        positions = torch.arange(length).expand(n, length)
        tokens = tokens.masked_fill(positions > ends[:, None], 0)
        tokens[torch.arange(n), ends] = s.vocab - 1
        return {"images": torch.randn(n, 3, s.image_size, s.image_size, generator=generator),
                "tokens": tokens}

    def independent(self):
        return (("", ("image", "text")),)

    def loss_terms(self, networks, batch):
        image, text = self.execution.each(networks, {"image": (batch["images"],),
                                                     "text": (batch["tokens"],)})
        return {"loss": contrastive_loss(image, text, networks["text"].logit_scale)}
