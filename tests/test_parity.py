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
    block.norm1 = RaisingNorm(16).double()                    # a crash in the sublayer, not a traceback
    with pytest.raises(CheckError, match=r"(?s)block.norm1\(x\): your function raised RuntimeError.*uses your LayerNorm"):
        check_block(block, X, norm_first=False)


class RaisingNorm(tnn.LayerNorm):
    def forward(self, x):
        raise RuntimeError("x")



# --- attention, LayerNorm and feed-forward checks of chapters 01 and 03 ------------------------

from tfs.teaching.checks import call  # noqa: E402
from tfs.teaching.parity import check_attention, check_feed_forward, check_layer_norm, check_layer_norm_gradients  # noqa: E402
from tfs.teaching.probes import KEEPDIM_HINT  # noqa: E402

Q, K, V = (torch.randn(2, 5, d, generator=torch.Generator().manual_seed(i)) for i, d in ((2, 8), (3, 8), (4, 4)))


def failure_message(check, *args, **kwargs) -> str:
    with pytest.raises(CheckError) as error:
        check(*args, **kwargs)
    return str(error.value)


@pytest.mark.parametrize("mask", [None, tnn.causal_mask(5), torch.tensor([[True] * 5, [True] * 2 + [False] * 3])[:, None, :],
                                  torch.tensor([[True, True, False, False, False], [False] * 5] * 1 + [[True] * 5] * 3)])
def test_reference_attention_passes_check_attention(mask):
    check_attention(tnn.scaled_dot_product_attention, Q, K, V, mask=mask)


def test_check_attention_names_the_mistakes():
    def unscaled(q, k, v, mask=None):
        weights = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")).softmax(-1)
        return weights @ v, weights

    def nan_rows(q, k, v, mask=None):  # forgets nan_to_num: a fully masked query gets nan
        weights = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill(~mask, float("-inf")).softmax(-1)
        return weights @ v, weights

    assert "no scaling" in failure_message(check_attention, unscaled, Q, K, V, mask=tnn.causal_mask(5))
    blind = torch.tensor([[True, True, False, False, False], [False] * 5] + [[True] * 5] * 3)
    assert "nan_to_num" in failure_message(check_attention, nan_rows, Q, K, V, mask=blind)


def test_a_crash_gets_the_course_hint():
    def softmax_without_keepdim(x, dim=-1, temperature=1.0):
        z = x - x.amax(dim=dim)
        return z.exp() / z.exp().sum(dim=dim)

    with pytest.raises(CheckError) as error:
        call(softmax_without_keepdim, torch.randn(3, 2), hint=KEEPDIM_HINT)
    assert "keepdim=True" in str(error.value) and "RuntimeError" in str(error.value)


class UnbiasedLayerNorm(tnn.LayerNorm):
    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + self.eps) * self.weight + self.bias


class DetachedLayerNorm(tnn.LayerNorm):
    def forward(self, x):
        return super().forward(x.detach())


def test_layer_norm_checks():
    x = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    check_layer_norm(tnn.LayerNorm(6).double(), x)
    check_layer_norm_gradients(tnn.LayerNorm(6).double(), x)
    assert "unbiased variance" in failure_message(check_layer_norm, UnbiasedLayerNorm(6).double(), x)
    # the gradient test names the forward mistake instead of a generic hint about differentiable operations
    assert "unbiased variance" in failure_message(check_layer_norm_gradients, UnbiasedLayerNorm(6).double(), x)
    assert "no gradient reached x" in failure_message(check_layer_norm_gradients, DetachedLayerNorm(6).double(), x)


class TanhFeedForward(tnn.FeedForward):
    def forward(self, x):
        return self.linear2(torch.nn.functional.gelu(self.linear1(x), approximate="tanh"))


def test_feed_forward_checks():
    x = torch.randn(2, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    check_feed_forward(tnn.FeedForward(8, 16).double(), x)
    assert "tanh approximation" in failure_message(check_feed_forward, TanhFeedForward(8, 16).double(), x)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mask", [None, tnn.causal_mask(5), PADDING])
def test_reference_encoder_passes_check_encoder(norm_first, mask):
    from tfs.teaching.parity import check_encoder
    check_encoder(tnn.Encoder(3, 16, 4, 32, norm_first=norm_first).double(), X, norm_first, mask=mask)


def test_check_encoder_names_a_mask_dropped_between_blocks():
    from tfs.teaching.parity import check_encoder

    class MaskOnlyFirst(tnn.Encoder):
        def forward(self, x, mask=None):
            for i, layer in enumerate(self.layers):
                x = layer(x, mask=mask if i == 0 else None)
            return self.final_norm(x)

    assert "each with the mask" in failure_message(check_encoder, MaskOnlyFirst(2, 16, 4, 32, norm_first=True).double(),
                                                   X, True, mask=tnn.causal_mask(5))
