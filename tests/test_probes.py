"""The probes: each named mistake is the mistake it names, and none equals the right answer."""

import math

import pytest
import torch
import torch.nn.functional as F

from tfs.teaching.checks import CheckError, check_close
from tfs.teaching.probes import attention_mistakes, causal_mask_mistakes, softmax_mistakes


def diagnosis_of(received, expected, mistakes) -> str:
    with pytest.raises(CheckError) as info:
        check_close(received, expected, "under test", op="attention", mistakes=mistakes)
    return str(info.value)


def test_no_mistake_equals_the_right_answer():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 5, 8) for _ in range(3))
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    right = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    for name, wrong in attention_mistakes(q, k, v, mask, d_model=32).items():
        assert not torch.allclose(wrong, right, atol=1e-4), name
    x = torch.randn(4, 6)
    for name, wrong in softmax_mistakes(x, -1, temperature=2.0).items():
        assert not torch.allclose(wrong, torch.softmax(x / 2.0, -1), atol=1e-4), name


def test_recognises_sqrt_d_model_scaling():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))  # 3 heads of size 8: d_model = 24
    wrong = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(24), -1) @ v
    message = diagnosis_of(wrong, F.scaled_dot_product_attention(q, k, v), attention_mistakes(q, k, v, d_model=24))
    assert "√d_model instead of √d_k" in message


def test_recognises_mask_after_softmax():
    torch.manual_seed(2)
    q, k, v = (torch.randn(1, 4, 8) for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), -1).masked_fill(~mask, 0.0)
    message = diagnosis_of(weights @ v, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                           attention_mistakes(q, k, v, mask))
    assert "mask applied after the softmax" in message


def test_recognises_softmax_over_queries():
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, 4, 8) for _ in range(3))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-2)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    message = diagnosis_of(weights, expected, attention_mistakes(q, k, v, which="weights"))
    assert "softmax over the queries" in message


@pytest.mark.parametrize("diagonal, words", [(-1, "hides the diagonal"), (1, "one future token")])
def test_recognises_off_by_one_causal_masks(diagonal, words):
    size = 5
    right = torch.ones(size, size, dtype=torch.bool).tril()
    wrong = torch.ones(size, size, dtype=torch.bool).tril(diagonal)
    with pytest.raises(CheckError, match=words):
        check_close(wrong, right, "causal_mask", op="exact", mistakes=causal_mask_mistakes(size))


def test_recognises_inverted_causal_mask():
    right = torch.ones(4, 4, dtype=torch.bool).tril()
    with pytest.raises(CheckError, match="inverted mask"):
        check_close(~right, right, "causal_mask", op="exact", mistakes=causal_mask_mistakes(4))


def test_block_mistakes_run_only_the_layout_they_need():
    """Each layout's mistakes need two attention calls (the other layout's and the wrong residual's), not three."""
    from tfs import nn as tnn
    from tfs.teaching.probes import block_mistakes

    for norm_first in (False, True):
        block = tnn.TransformerBlock(16, 4, 32, norm_first=norm_first).double()
        calls = []
        block.attn.register_forward_hook(lambda module, args, output: calls.append(1))
        mistakes = block_mistakes(block, torch.randn(2, 5, 16, dtype=torch.float64), norm_first)
        assert len(calls) == 2 and len(mistakes) >= 2
