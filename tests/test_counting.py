"""Chapter 03's dropout and parameter-count checks: silent on right answers, naming the usual mistakes."""

import pytest
import torch
from torch import nn

from tfs import nn as tnn
from tfs.teaching.checks import CheckError
from tfs.teaching.counting import check_dropout_training, check_encoder_parameters, torch_encoder_parameters


def message(check, *args, **kwargs) -> str:
    with pytest.raises(CheckError) as error:
        check(*args, **kwargs)
    return str(error.value)


class Unscaled(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x * (torch.rand_like(x) >= self.p)


class KeepProbability(Unscaled):
    def forward(self, x):
        return x * (torch.rand_like(x) < self.p) / (1 - self.p)


class FixedMask(Unscaled):
    def forward(self, x):
        keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype) >= self.p
        return x * keep / (1 - self.p)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_torch_dropout_passes(p):
    torch.manual_seed(0)
    check_dropout_training(nn.Dropout(p), p)


def test_dropout_mistakes_are_named():
    torch.manual_seed(0)
    assert "divides the kept elements by 1 - p" in message(check_dropout_training, Unscaled(0.3), 0.3)
    assert "probability to DROP" in message(check_dropout_training, KeepProbability(0.3), 0.3)
    assert "two calls dropped the same elements" in message(check_dropout_training, FixedMask(0.3), 0.3)


def reference_count(n_layers, d_model, n_heads, d_ff, norm_first=False, bias=True):
    """The count of the package's Encoder, built for real (small sizes only)."""
    encoder = tnn.Encoder(n_layers, d_model, n_heads, d_ff, norm_first=norm_first)
    return sum(p.numel() for p in encoder.parameters())


@pytest.mark.parametrize("config", [(1, 16, 4, 64, False), (3, 32, 8, 48, True), (2, 8, 1, 8, True)])
def test_meta_device_count_equals_the_package_encoder(config):
    assert torch_encoder_parameters(*config) == reference_count(*config)


def test_parameter_count_mistakes_are_named():
    def per_head(n_layers, d_model, n_heads, d_ff, norm_first=False, bias=True):
        return n_layers * (n_heads * (4 * d_model**2 + 4 * d_model) + 2 * d_model * d_ff + d_ff + d_model + 4 * d_model) + \
            (2 * d_model if norm_first else 0)

    def no_final(n_layers, d_model, n_heads, d_ff, norm_first=False, bias=True):
        return torch_encoder_parameters(n_layers, d_model, n_heads, d_ff, False, bias)

    assert "once per head" in message(check_encoder_parameters, per_head, 2, 16, 4, 64)
    assert "final LayerNorm of a pre-LN stack left out" in message(check_encoder_parameters, no_final, 2, 16, 4, 64, True)
    check_encoder_parameters(torch_encoder_parameters, 2, 16, 4, 64, True, False)
