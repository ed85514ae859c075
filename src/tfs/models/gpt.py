"""GPT-2 in nanoGPT's style, built from :mod:`tfs.nn` (chapter 06).

``GPT(config)`` is GPT-2's architecture: token and learned position embeddings, ``n_layer`` pre-LN
blocks (causal self-attention, an MLP with the tanh GELU), a final LayerNorm, and an LM head that
shares its weight with the token embedding. Initialisation follows GPT-2: every weight
``N(0, 0.02)``, biases 0, and the two projections that write into the residual stream (``attn.out``
and ``ff.linear2``) ``N(0, 0.02 / sqrt(2 n_layer))``, so the residual sum keeps its scale with depth.

Parameter names (``wte``, ``wpe``, ``blocks.i.attn.qkv``, ``blocks.i.ff.linear1``, ``ln_f``, ...) are the
course's; :mod:`tfs.convert.gpt` maps them to and from ``transformers``' ``GPT2LMHeadModel``.

``forward(idx, targets=None, attention_mask=None, cache=None, position_ids=None) -> (logits, loss)``: ``idx`` and
``targets`` are ``(batch, T)`` token ids; ``targets`` are the inputs shifted by one (``-100`` = ignore);
``attention_mask`` is a tokenizer's 0/1 mask (1 = token); ``cache`` a :class:`tfs.nn.KVCache` for decoding.
Attention runs through the fused ``F.scaled_dot_product_attention``: no ``(T, T)`` weights are kept
unless a block's ``keep_attention`` is set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tfs.nn import KVCache, LayerNorm, TransformerBlock

__all__ = ["GPT", "GPTConfig", "init_gpt_weights"]


@dataclass
class GPTConfig:
    """GPT-2's hyper-parameters (the defaults are GPT-2 small, 124 M parameters)."""

    vocab_size: int = 50257
    block_size: int = 1024  # the number of learned positions: the longest sequence
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0  # on embeddings, attention weights and each residual branch (GPT-2 trained with 0.1)
    bias: bool = True
    eps: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)


def init_gpt_weights(model: nn.Module, n_layer: int, std: float = 0.02, scale_residual: bool = True) -> None:
    """GPT-2's initialisation as nanoGPT and ``transformers`` read it, in place: linear and embedding weights
    ``N(0, std)``, biases 0, LayerNorms 1/0, and the residual projections (``attn.out``, ``ff.linear2``)
    ``N(0, std / sqrt(2 n_layer))``; ``scale_residual=False`` leaves them at ``N(0, std)`` like every other weight.
    (OpenAI's released code draws ``wpe`` from ``N(0, 0.01)``; both tables get ``std`` here.)"""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                residual = scale_residual and (name.endswith("attn.out") or name.endswith("ff.linear2"))
                nn.init.normal_(module.weight, 0.0, std / math.sqrt(2 * n_layer) if residual else std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (LayerNorm, nn.LayerNorm)):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


class GPT(nn.Module):
    """A GPT-2 language model (see the module's documentation)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} is not divisible by n_head={config.n_head}")
        self.config = config
        d = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, d)
        self.wpe = nn.Embedding(config.block_size, d)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(d, config.n_head, 4 * d, norm_first=True, eps=config.eps, dropout=config.dropout,
                             activation="gelu_tanh", bias=config.bias, causal=True)
            for _ in range(config.n_layer))
        self.ln_f = LayerNorm(d, config.eps, bias=config.bias)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one (vocab, d) matrix embeds and predicts
        init_gpt_weights(self, config.n_layer)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, the tied matrix counted once; ``non_embedding`` leaves out the position table
        (and, as in nanoGPT, keeps the token table: it is also the LM head's weight)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.wpe.weight.numel() if non_embedding else total

    def flops_per_token(self, seq_len: int | None = None, training: bool = True) -> int:
        """Matrix-multiply FLOPs per token (PaLM's count): ``2`` per weight of every linear layer (the LM head
        included; embeddings are look-ups, biases and LayerNorms are not matmuls) plus ``4 n_layer T d`` for the
        attention scores ``Q K^T`` and their use ``A V`` over all ``T`` keys; ``x3`` with the backward pass."""
        c = self.config
        seq_len = c.block_size if seq_len is None else seq_len
        linear = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        forward = 2 * linear + 4 * c.n_layer * seq_len * c.n_embd
        return 3 * forward if training else forward

    def _check_inputs(self, idx: torch.Tensor, targets: torch.Tensor | None, start: int) -> None:
        if idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx must be (batch, T) integer token ids; received shape {tuple(idx.shape)}, "
                             f"dtype {idx.dtype}")
        length = start + idx.shape[1]
        if length > self.config.block_size:
            raise ValueError(f"sequence of length {length} is longer than the position table "
                             f"(block_size={self.config.block_size}): crop it to the last {self.config.block_size} tokens")
        lowest, highest = torch.aminmax(idx) if idx.numel() else (0, 0)  # one pass over the ids
        if lowest < 0 or highest >= self.config.vocab_size:
            bad = idx[(idx < 0) | (idx >= self.config.vocab_size)][0].item()
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.config.vocab_size}): "
                             "was the text encoded with another tokenizer?")
        if targets is not None and targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of the inputs {tuple(idx.shape)}; received "
                             f"{tuple(targets.shape)} (targets are the inputs shifted by one: x = w[:-1], y = w[1:])")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                position_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx (batch, T)`` -> ``(logits (batch, T, vocab), loss or None)``. ``position_ids (batch, T)``
        replace ``start, ..., start + T - 1`` (left-padded batches: the mask's cumulative sum, chapter 07)."""
        start = len(cache) if cache is not None else 0
        self._check_inputs(idx, targets, start)
        if position_ids is None:
            positions = torch.arange(start, start + idx.shape[1], device=idx.device)
        elif position_ids.shape != idx.shape:
            raise ValueError(f"position_ids {tuple(position_ids.shape)} must have the shape of idx {tuple(idx.shape)}")
        else:
            positions = position_ids
        x = self.drop(self.wte(idx) + self.wpe(positions))
        mask = None
        if attention_mask is not None:
            n_keys = attention_mask.shape[1]
            if n_keys != start + idx.shape[1]:
                raise ValueError(f"attention_mask covers {n_keys} positions; expected {start + idx.shape[1]} "
                                 "(the cached ones and these)")
            # padding keys are hidden; each query still sees itself, so no row is empty (padded
            # queries' outputs are not used, and real tokens' outputs do not depend on them)
            if not bool(attention_mask.all()):  # without padding the causal mask alone decides: build nothing
                mask = attention_mask.bool()[:, None, None, :] | _self_mask(idx.shape[1], n_keys, idx.device)
        for index, block in enumerate(self.blocks):
            x = block(x, mask, cache=cache, layer=index)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
        """Sample ``max_new_tokens`` after ``idx (batch, T)``; ``temperature=0`` is greedy. Returns
        ``(batch, T + max_new_tokens)``. Past ``block_size`` the context is cropped (and the cache dropped)."""
        was_training = self.training
        self.eval()
        block_size = self.config.block_size
        cache = None
        for _ in range(max_new_tokens):
            if use_cache and cache is not None and 0 < len(cache) < block_size:
                logits, _ = self(idx[:, -1:], cache=cache)  # only the new token: the rest is cached
            else:  # the first step, or the context is full: (re)start from the last block_size tokens
                cache = KVCache() if use_cache else None
                logits, _ = self(idx[:, -block_size:], cache=cache)
            logits = logits[:, -1, :]
            if temperature == 0:
                token = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                token = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, token], dim=1)
        self.train(was_training)
        return idx


def _self_mask(n_queries: int, n_keys: int, device) -> torch.Tensor:
    """``(n_queries, n_keys)`` True where key = the query's own position (the queries are the last ones)."""
    return torch.eye(n_queries, n_keys, dtype=torch.bool, device=device).roll(n_keys - n_queries, dims=1) \
        if n_keys > n_queries else torch.eye(n_queries, n_keys, dtype=torch.bool, device=device)
