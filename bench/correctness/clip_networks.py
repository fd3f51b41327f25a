"""The text side of a CLIP-style dual encoder, as openai/CLIP's ``model.py`` writes
``encode_text``, written again rather than imported from ``multinet``.

Where the harness departs from CLIP's code, this follows the harness, since a reference
built otherwise could not start from the same weights: the blocks are torch's pre-norm
``nn.TransformerEncoderLayer`` (GELU, ``batch_first``, the causal mask passed with
``is_causal``) rather than CLIP's ``ResidualAttentionBlock`` (QuickGELU), whose biases
keep torch's initialisation (``nn.TransformerEncoder`` copies one layer ``layers`` times;
CLIP's per-block draws redraw the weights), and ``logit_scale`` sits beside
``text_projection`` rather than on the CLIP model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


class TextEncoder(nn.Module):
    def __init__(self, embed_dim, context_length, vocab_size, transformer_width,
                 transformer_heads, transformer_layers):
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(self.context_length,
                                                             transformer_width))
        block = nn.TransformerEncoderLayer(transformer_width, transformer_heads,
                                           4 * transformer_width, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(block, transformer_layers,
                                                 enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.initialize_parameters(transformer_width, transformer_layers)
        self.register_buffer("attn_mask", self.build_attention_mask(), persistent=False)

    def initialize_parameters(self, width, layers):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

        proj_std = (width ** -0.5) * ((2 * layers) ** -0.5)
        attn_std = width ** -0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.layers:
            nn.init.normal_(block.self_attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.self_attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.linear1.weight, std=fc_std)  # CLIP's mlp.c_fc
            nn.init.normal_(block.linear2.weight, std=proj_std)  # CLIP's mlp.c_proj

        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def build_attention_mask(self):
        # lazily create causal attention mask, with full attention between the vision tokens
        # pytorch uses additive attention mask; fill with -inf
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        mask.triu_(1)  # zero out the lower diagonal
        return mask

    def forward(self, text):
        x = self.token_embedding(text)  # [batch_size, n_ctx, d_model]
        x = x + self.positional_embedding
        x = self.transformer(x, mask=self.attn_mask, is_causal=True)
        x = self.ln_final(x)
        # x.shape = [batch_size, n_ctx, transformer.width]
        # take features from the eot embedding (eot_token is the highest number in each sequence)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return x
