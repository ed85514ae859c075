"""The one-call parity checks of visible tests: silent on the reference layers, and naming the usual mistakes."""

import pytest
import torch

from tfs import nn as tnn
from tfs.teaching.checks import CheckError
from tfs.teaching.parity import check_block, check_mha

X = torch.randn(3, 5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
CONTEXT = torch.randn(3, 7, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
PADDING = tnn.padding_mask(torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]))
CONTEXT_PADDING = tnn.padding_mask(torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5]))


@pytest.mark.parametrize("mask", [None, tnn.causal_mask(5), PADDING])
def test_reference_attention_passes(mask):
    check_mha(tnn.MultiHeadAttention(16, 4).double(), X, mask=mask)


def test_reference_cross_attention_passes():
    mha = tnn.MultiHeadAttention(16, 4).double()
    check_mha(mha, X, context=CONTEXT, mask=CONTEXT_PADDING,
              name="cross-attention")


class NoTranspose(tnn.MultiHeadAttention):
    def forward(self, x, context=None, mask=None):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        split = lambda t: t.reshape(t.shape[0], self.n_heads, t.shape[1], -1)  # noqa: E731
        heads, weights = tnn.scaled_dot_product_attention(split(q), split(k), split(v), mask)
        return self.out(heads.transpose(1, 2).reshape(x.shape)), weights


class SelfInsteadOfCross(tnn.MultiHeadAttention):
    def forward(self, x, context=None, mask=None):
        return super().forward(x, mask=None)


def test_mistakes_are_named():
    with pytest.raises(CheckError, match="without the transpose"):
        check_mha(NoTranspose(16, 4).double(), X)
    with pytest.raises(CheckError, match="projected from x instead of context"):
        check_mha(SelfInsteadOfCross(16, 4).double(), X, context=CONTEXT)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mask", [None, tnn.causal_mask(5), PADDING])
def test_reference_blocks_pass(norm_first, mask):
    check_block(tnn.TransformerBlock(16, 4, 32, norm_first=norm_first).double(), X, norm_first, mask)


class IgnoresMask(tnn.TransformerBlock):
    def forward(self, x, mask=None):
        return super().forward(x)


class WrongNorm(tnn.LayerNorm):
    def forward(self, x):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + self.eps) * self.weight + self.bias


def test_block_mistakes_are_named():
    with pytest.raises(CheckError, match="the pre-LN layout"):
        check_block(tnn.TransformerBlock(16, 4, 32, norm_first=True).double(), X, norm_first=False)
    with pytest.raises(CheckError, match="mask not passed on"):
        check_block(IgnoresMask(16, 4, 32).double(), X, norm_first=False, mask=PADDING)
    block = tnn.TransformerBlock(16, 4, 32).double()
    block.norm1 = WrongNorm(16).double()
    with pytest.raises(CheckError, match="uses your LayerNorm"):
        check_block(block, X, norm_first=False)

