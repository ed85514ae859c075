"""BERT (Devlin et al., 2019) built from :mod:`tfs.nn`: the package's reference for chapter 05.

One bidirectional, post-LN encoder over ``[CLS] A [SEP] B [SEP]``; every token sees every other
(padding aside). The classes carry the names and signatures of chapter 05's exercises, so a
learner's class drops in wherever these are used.

====================  ==========================================================================
class                 what it computes
====================  ==========================================================================
``BertConfig``        sizes and ``eps`` (``from_hf`` reads a ``transformers.BertConfig``)
``BertEmbeddings``    ``LayerNorm(token + position + segment)``, then dropout      ``(B, L, d)``
``BertModel``         embeddings, post-LN encoder (exact GELU), pooler ``tanh(W h_[CLS] + b)``
``BertMLMHead``       dense -> GELU -> LayerNorm -> decoder tied to the token embeddings (+ own bias)
``BertNSPHead``       ``Linear(d, 2)`` on the pooled vector: IsNext (0) / NotNext (1)
``BertForPreTraining``  ``BertModel`` + both heads; ``loss(...)`` is MLM + NSP cross-entropy
====================  ==========================================================================

Parameter names are the course's (``embeddings.token``, ``encoder.layers.0.attn.qkv``, ...):
:mod:`tfs.convert.bert` maps them to and from ``transformers``' ``BertModel``/``BertForMaskedLM``.
Masks: a tokenizer's ``attention_mask`` (0/1 or bool, ``(B, L)``, 1 = real token) goes in; inside,
the course's bool convention (True = may attend) is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tfs.nn.attention import padding_mask
from tfs.nn.blocks import Encoder
from tfs.nn.layers import LayerNorm

__all__ = ["BertConfig", "BertEmbeddings", "BertForPreTraining", "BertMLMHead", "BertModel", "BertNSPHead",
           "check_attention_mask", "check_input_ids"]


@dataclass
class BertConfig:
    """BERT's sizes. The defaults are MiniLM-L6-H384's (``tfs.data.bert_path()``)."""

    vocab_size: int = 30522
    max_position: int = 512
    type_vocab_size: int = 2
    d_model: int = 384
    n_heads: int = 12
    n_layers: int = 6
    d_ff: int = 1536
    dropout: float = 0.1
    eps: float = 1e-12

    @classmethod
    def from_hf(cls, hf_config) -> "BertConfig":
        """The course's config for a ``transformers.BertConfig`` (exact GELU expected)."""
        if getattr(hf_config, "hidden_act", "gelu") != "gelu":
            raise ValueError(f"the course's BERT uses the exact GELU; this config has hidden_act={hf_config.hidden_act!r}")
        return cls(vocab_size=hf_config.vocab_size, max_position=hf_config.max_position_embeddings,
                   type_vocab_size=hf_config.type_vocab_size, d_model=hf_config.hidden_size,
                   n_heads=hf_config.num_attention_heads, n_layers=hf_config.num_hidden_layers,
                   d_ff=hf_config.intermediate_size, dropout=hf_config.hidden_dropout_prob,
                   eps=hf_config.layer_norm_eps)

    def to_hf(self, **extra):
        """The matching ``transformers.BertConfig`` (``extra`` keyword arguments passed through)."""
        from transformers import BertConfig as HFBertConfig

        return HFBertConfig(vocab_size=self.vocab_size, max_position_embeddings=self.max_position,
                            type_vocab_size=self.type_vocab_size, hidden_size=self.d_model,
                            num_attention_heads=self.n_heads, num_hidden_layers=self.n_layers,
                            intermediate_size=self.d_ff, hidden_dropout_prob=self.dropout,
                            attention_probs_dropout_prob=self.dropout, layer_norm_eps=self.eps,
                            hidden_act="gelu", **extra)

    def as_dict(self) -> dict:
        return asdict(self)


def check_input_ids(input_ids: torch.Tensor, config: BertConfig, name: str = "input_ids") -> None:
    """Raise a clear error for ids that are not ``(B, L)`` integers in the vocabulary, or too long."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        dtype = getattr(input_ids, "dtype", type(input_ids).__name__)
        raise TypeError(f"{name} must be an integer tensor (batch, L) of token ids; received {dtype}")
    if input_ids.dim() != 2:
        raise ValueError(f"{name} must be (batch, L); received shape {tuple(input_ids.shape)}")
    if input_ids.shape[1] > config.max_position:
        raise ValueError(f"{name} has {input_ids.shape[1]} positions, more than the position table's "
                         f"max_position={config.max_position}: truncate (tokenizer(..., truncation=True))")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
        bad = input_ids[(input_ids < 0) | (input_ids >= config.vocab_size)][0].item()
        raise ValueError(f"{name} holds id {bad}, outside the vocabulary [0, {config.vocab_size}): "
                         "a tokenizer with another vocabulary?")


def check_attention_mask(attention_mask: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """A tokenizer's ``attention_mask`` checked against ``input_ids``; returns the ``(B, 1, 1, L)`` bool mask."""
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a tensor (batch, L) of 0/1; received {type(attention_mask).__name__}")
    if attention_mask.dtype.is_floating_point:
        raise TypeError(f"attention_mask must be 0/1 integers or bool (batch, L), as a tokenizer returns it; "
                        f"received dtype {attention_mask.dtype}")
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)} (batch, L); "
                         f"received {tuple(attention_mask.shape)}")
    return padding_mask(attention_mask)


class BertEmbeddings(nn.Module):
    """``dropout(LayerNorm(token[ids] + position[0..L-1] + segment[token_type_ids]))``.

    Attributes: ``token`` (vocab_size, d), ``position`` (max_position, d), ``segment``
    (type_vocab_size, d) embedding tables, ``norm`` (LayerNorm with ``config.eps``), ``dropout``.
    ``forward(input_ids (B, L), token_type_ids (B, L) or None = all segment 0) -> (B, L, d_model)``.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.max_position, config.d_model)
        self.segment = nn.Embedding(config.type_vocab_size, config.d_model)
        self.norm = LayerNorm(config.d_model, config.eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        check_input_ids(input_ids, self.config)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        elif token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}; "
                             f"received {tuple(token_type_ids.shape)}")
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (L,)
        x = self.token(input_ids) + self.position(positions) + self.segment(token_type_ids)  # (B, L, d)
        return self.dropout(self.norm(x))


class BertModel(nn.Module):
    """Embeddings, a post-LN encoder of ``n_layers`` blocks (exact GELU), and the pooler.

    ``forward(input_ids (B, L), attention_mask (B, L) 0/1 or None, token_type_ids (B, L) or None)``
    returns ``(last_hidden_state (B, L, d_model), pooled (B, d_model))`` with
    ``pooled = tanh(pooler(h[:, 0]))``, the hidden state of ``[CLS]``.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = Encoder(config.n_layers, config.d_model, config.n_heads, config.d_ff, norm_first=False,
                               eps=config.eps, dropout=config.dropout, activation="gelu")
        self.pooler = nn.Linear(config.d_model, config.d_model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_input_ids(input_ids, self.config)
        mask = None if attention_mask is None else check_attention_mask(attention_mask, input_ids)  # (B, 1, 1, L)
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), mask)  # (B, L, d)
        pooled = torch.tanh(self.pooler(hidden[:, 0]))  # (B, d): [CLS] only
        return hidden, pooled


class BertMLMHead(nn.Module):
    """Masked-LM head: ``decoder(LayerNorm(gelu(dense(h))))``, the decoder tied to the token embeddings.

    ``token_embedding`` is the model's ``nn.Embedding`` (vocab_size, d): ``decoder.weight`` *is* its
    weight (one parameter, trained by both ends); ``bias`` (vocab_size,) is the head's own.
    ``forward(hidden (B, L, d)) -> logits (B, L, vocab_size)``.
    """

    def __init__(self, config: BertConfig, token_embedding: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.norm = LayerNorm(config.d_model, config.eps)
        self.decoder = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.decoder.weight = token_embedding.weight  # tied: the same Parameter
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(hidden)))) + self.bias


class BertNSPHead(nn.Module):
    """Next-sentence prediction: ``linear(pooled)``, ``(B, d) -> (B, 2)`` logits, class 0 = IsNext."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.linear = nn.Linear(config.d_model, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)


class BertForPreTraining(nn.Module):
    """``BertModel`` with the MLM head (tied) and, unless ``nsp=False``, the NSP head.

    ``forward(input_ids, attention_mask=None, token_type_ids=None) -> (mlm_logits (B, L, V), nsp_logits (B, 2) or None)``.
    """

    def __init__(self, config: BertConfig, nsp: bool = True):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm = BertMLMHead(config, self.bert.embeddings.token)
        self.nsp = BertNSPHead(config) if nsp else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.mlm(hidden), None if self.nsp is None else self.nsp(pooled)

    @staticmethod
    def loss(mlm_logits: torch.Tensor, labels: torch.Tensor, nsp_logits: torch.Tensor | None = None,
             next_sentence_label: torch.Tensor | None = None) -> torch.Tensor:
        """Mean MLM cross-entropy over the positions whose label is not -100, plus the NSP cross-entropy."""
        loss = F.cross_entropy(mlm_logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        if nsp_logits is not None and next_sentence_label is not None:
            loss = loss + F.cross_entropy(nsp_logits, next_sentence_label)
        return loss
