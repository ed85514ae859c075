"""A LLaMA-style decoder (chapter 12), the design of LLaMA, Mistral, Qwen and SmolLM2, built from :mod:`tfs.nn.modern`.

Where it differs from GPT-2 (:mod:`tfs.models.gpt`): RMSNorm instead of LayerNorm; no position table, RoPE
turns queries and keys instead; a SwiGLU feed-forward network; grouped-query attention (fewer key/value heads
than query heads); no biases anywhere; the output head tied to the embedding or not, as the config says.

``LLaMA(config)``: ``embed``, ``n_layer`` pre-norm blocks (``norm1``, ``attn``, ``norm2``, ``ff``), a final
``norm`` and ``lm_head``. :mod:`tfs.convert.llama` maps these names to ``transformers``' ``LlamaForCausalLM``.

``forward(idx, targets=None, attention_mask=None, cache=None, position_ids=None) -> (logits, loss)``, as the
course's GPT, so :func:`tfs.generate.generate` decodes with it: ``attention_mask`` is a tokenizer's 0/1 mask
(left padding), ``cache`` a :class:`tfs.nn.KVCache`; without ``position_ids`` each token's position is its
index among the real tokens of its row (the mask's cumulative sum minus one), after the cached ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tfs.nn import KVCache
from tfs.nn.modern import GroupedQueryAttention, RMSNorm, SwiGLU

__all__ = ["LLaMA", "LLaMABlock", "LLaMAConfig", "position_ids_for"]


@dataclass
class LLaMAConfig:
    """A LLaMA-style decoder's hyper-parameters (the defaults are SmolLM2-135M's)."""

    vocab_size: int = 49152
    block_size: int = 8192  # the longest sequence trained on (RoPE has no table; past it, behaviour is untested)
    n_layer: int = 30
    n_head: int = 9
    n_kv_head: int = 3
    n_embd: int = 576
    d_ff: int = 1536
    rope_theta: float = 100000.0
    eps: float = 1e-5
    tie_embeddings: bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} is not divisible by n_kv_head={self.n_kv_head}: each key/value "
                             "head serves a whole group of query heads")
        if self.d_head % 2:
            raise ValueError(f"head size {self.d_head} = n_embd / n_head is odd: RoPE rotates pairs of features")

    @property
    def d_head(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


def position_ids_for(attention_mask: torch.Tensor | None, start: int, length: int, batch: int,
                     device=None) -> torch.Tensor:
    """``(batch, length)`` positions of the ``length`` newest tokens after ``start`` cached ones: ``start, ...``
    without a mask; with a 0/1 ``attention_mask (batch, start + length)``, each token's index among the real
    tokens of its row (padding gets 0: it is never attended to)."""
    if attention_mask is None:
        return torch.arange(start, start + length, device=device).expand(batch, length)
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)[:, -length:]


class LLaMABlock(nn.Module):
    """Pre-norm decoder block: ``x + attn(norm1(x))``, then ``x + ff(norm2(x))``.

    ``forward(x (batch, T, d), position_ids (batch, T), mask=None, cache=None, layer=0) -> (batch, T, d)``.
    """

    def __init__(self, config: LLaMAConfig):
        super().__init__()
        self.norm1 = RMSNorm(config.n_embd, config.eps)
        self.attn = GroupedQueryAttention(config.n_embd, config.n_head, config.n_kv_head, config.rope_theta)
        self.norm2 = RMSNorm(config.n_embd, config.eps)
        self.ff = SwiGLU(config.n_embd, config.d_ff)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), position_ids, mask, cache, layer)
        return x + self.ff(self.norm2(x))


class LLaMA(nn.Module):
    """A LLaMA-style language model (see the module's documentation)."""

    def __init__(self, config: LLaMAConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(LLaMABlock(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, 0.0, 0.02)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def num_params(self) -> int:
        """Parameters, a tied matrix counted once."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None, training: bool = False) -> int:
        """Matrix-multiply FLOPs per token, counted as :meth:`tfs.models.gpt.GPT.flops_per_token` does: ``2`` per
        weight of every linear layer (the head included) plus ``4 n_layer T d`` for ``Q K^T`` and ``A V`` over ``T``
        keys (every query head scores every key: sharing key/value heads saves no score FLOPs); ``x3`` to train."""
        c = self.config
        seq_len = c.block_size if seq_len is None else seq_len
        linear = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        forward = 2 * linear + 4 * c.n_layer * seq_len * c.n_embd
        return 3 * forward if training else forward

    def _check_inputs(self, idx: torch.Tensor, start: int) -> None:
        if idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx must be (batch, T) integer token ids; received shape {tuple(idx.shape)}, "
                             f"dtype {idx.dtype}")
        if start + idx.shape[1] > self.config.block_size:
            raise ValueError(f"sequence of length {start + idx.shape[1]} is longer than the context the model was "
                             f"trained on (block_size={self.config.block_size})")
        lowest, highest = torch.aminmax(idx) if idx.numel() else (0, 0)  # one pass over the ids
        if lowest < 0 or highest >= self.config.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}): was the text encoded with "
                             "another tokenizer?")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                position_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx (batch, T)`` -> ``(logits (batch, T, vocab), loss or None)``."""
        start = len(cache) if cache is not None else 0
        self._check_inputs(idx, start)
        batch, length = idx.shape
        if attention_mask is not None and attention_mask.shape != (batch, start + length):
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must cover the cached positions and these: "
                             f"({batch}, {start + length})")
        if position_ids is None:
            position_ids = position_ids_for(attention_mask, start, length, batch, idx.device)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # padding keys hidden; each query still sees itself, so no row is empty (padded rows are never read)
            own = torch.zeros(length, start + length, dtype=torch.bool, device=idx.device)
            own[:, start:] = torch.eye(length, dtype=torch.bool, device=idx.device)
            mask = attention_mask.bool()[:, None, None, :] | own
        x = self.embed(idx)
        for index, block in enumerate(self.blocks):
            x = block(x, position_ids, mask, cache, index)
        logits = self.lm_head(self.norm(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss
