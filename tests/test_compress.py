"""``tfs.compress`` against independent oracles: ``torch.quantize_per_channel``, ``torch.nn.utils.prune``,
``F.kl_div``/``F.cross_entropy``, plain matrix algebra for LoRA, safetensors; and its errors on bad input."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from tfs import compress as cz


def test_quantize_matches_torch_quantize_per_channel():
    torch.manual_seed(0)
    weight = torch.randn(16, 32) * torch.linspace(0.01, 3.0, 16)[:, None]
    q, scale = cz.quantize_per_channel(weight)
    assert q.dtype == torch.int8 and scale.shape == (16,)
    oracle = torch.quantize_per_channel(weight, scale.double(), torch.zeros(16, dtype=torch.int64), 0, torch.qint8)
    assert torch.equal(q, oracle.int_repr())
    assert torch.allclose(scale, weight.abs().amax(1) / 127)  # analytic: absmax / 127 per row
    assert torch.equal(q.abs().amax(1), torch.full((16,), 127, dtype=torch.int8))  # every row uses the full range
    error = (cz.dequantize(q, scale) - weight).abs()
    assert (error <= scale[:, None] / 2 + 1e-6).all()  # rounding error at most half a step


def test_quantize_zero_row_clamp_and_bad_input():
    weight = torch.randn(3, 5)
    weight[1] = 0
    q, scale = cz.quantize_per_channel(weight)
    assert torch.isfinite(scale).all() and (scale > 0).all() and (q[1] == 0).all()
    assert (cz.dequantize(q, scale)[1] == 0).all()
    q2, _ = cz.quantize_per_channel(torch.tensor([[1.0, -5.0, 0.2]]), scale=torch.tensor([0.01]))
    assert q2.tolist() == [[100, -127, 20]]  # saturates at -127, never wraps round
    for bad in (float("nan"), float("inf")):
        weight[2, 3] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            cz.quantize_per_channel(weight)


def test_int8_linear_close_to_float_and_smaller():
    torch.manual_seed(1)
    linear = nn.Linear(256, 128)
    int8 = cz.Int8Linear(linear)
    x = torch.randn(4, 256)
    assert (int8(x) - linear(x)).abs().max() < 0.02
    assert cz.serialized_mb(int8) < cz.serialized_mb(linear) / 2.5


def test_magnitude_masks_match_global_unstructured():
    torch.manual_seed(2)
    layers = [nn.Linear(20, 10), nn.Linear(10, 30) , nn.Linear(30, 5)]
    with torch.no_grad():
        layers[1].weight.mul_(0.1)  # a layer of small weights: a per-layer threshold would differ
    weights = [layer.weight.detach().clone() for layer in layers]
    for sparsity in (0.0, 0.3, 0.5, 0.9):
        masks = cz.magnitude_masks(weights, sparsity)
        clones = [nn.Linear(l.in_features, l.out_features) for l in layers]
        for clone, weight in zip(clones, weights):
            clone.weight.data.copy_(weight)
        prune.global_unstructured([(c, "weight") for c in clones], pruning_method=prune.L1Unstructured, amount=sparsity)
        for mask, clone in zip(masks, clones):
            assert torch.equal(mask, clone.weight_mask.bool())
    total = sum(w.numel() for w in weights)
    assert sum((~m).sum().item() for m in cz.magnitude_masks(weights, 0.5)) == round(0.5 * total)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, float("nan"), "0.5"])
def test_magnitude_masks_refuse_bad_sparsity(sparsity):
    with pytest.raises(ValueError, match="sparsity"):
        cz.magnitude_masks([torch.randn(3, 3)], sparsity)


def test_distillation_loss_analytic():
    torch.manual_seed(3)
    student, teacher = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    for t, alpha in ((1.0, 0.5), (2.0, 0.7), (4.0, 1.0), (3.0, 0.0)):
        kl = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean", log_target=True)
        expected = alpha * t**2 * kl + (1 - alpha) * F.cross_entropy(student, labels)
        got = cz.distillation_loss(student, teacher, labels, t, alpha)
        assert torch.allclose(got, expected, atol=1e-6)
    # by hand, one example: KL(p || q) = sum p log(p / q)
    s, te = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    p, q = torch.softmax(te / 2, -1)[0], torch.softmax(s / 2, -1)[0]
    assert abs(cz.distillation_loss(s, te, torch.tensor([1]), 2.0, 1.0).item() - 4 * (p * (p / q).log()).sum().item()) < 1e-6
    cz.distillation_loss(student, teacher, labels).backward()
    assert student.grad is not None


def test_lora_init_merge_and_training_parameters():
    torch.manual_seed(4)
    base = nn.Linear(12, 8)
    lora = cz.LoRALinear(base, r=4, alpha=8)
    x = torch.randn(5, 12)
    assert torch.equal(lora(x), base(x))  # B = 0: the wrapped layer starts as the base
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert sorted(n for n, p in lora.named_parameters() if p.requires_grad) == ["A", "B"]
    with torch.no_grad():
        lora.B.normal_()
    expected = x @ (base.weight + 2.0 * lora.B @ lora.A).T + base.bias  # plain algebra, scale = alpha / r
    assert torch.allclose(lora(x), expected, atol=1e-5)
    merged = lora.merge()
    assert isinstance(merged, nn.Linear) and (merged(x) - lora(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("r", [0, -1, 9, 2.0])
def test_lora_refuses_bad_rank(r):
    with pytest.raises(ValueError, match="rank"):
        cz.LoRALinear(nn.Linear(12, 8), r=r)


def test_add_and_merge_lora_on_a_model():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    model = cz.add_lora(model, ["0"], r=2, alpha=4)
    assert isinstance(model[0], cz.LoRALinear) and not model[2].weight.requires_grad
    with torch.no_grad():
        model[0].B.normal_()
    x = torch.randn(4, 6)
    before = model(x)
    cz.merge_lora(model)
    assert isinstance(model[0], nn.Linear) and (model(x) - before).abs().max() <= 1e-5


class Boom:
    def __reduce__(self):
        return (print, ("this would have been arbitrary code",))


def test_save_load_round_trip_and_refusals(tmp_path):
    torch.manual_seed(6)
    model = nn.Linear(4, 3)
    cz.save_weights(model, tmp_path / "m.safetensors")
    loaded = cz.load_weights(tmp_path / "m.safetensors")
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert torch.equal(cz.load_weights(tmp_path / "m.pt")["weight"], model.weight)
    (tmp_path / "notes.txt").write_text("hello, not a checkpoint\n")
    with pytest.raises(cz.CheckpointError, match="not a checkpoint"):
        cz.load_weights(tmp_path / "notes.txt")
    with pytest.raises(cz.CheckpointError, match="no such file"):
        cz.load_weights(tmp_path / "missing.pt")
    torch.save({"weight": Boom()}, tmp_path / "evil.pt")
    with pytest.raises(cz.CheckpointError, match="weights_only"):
        cz.load_weights(tmp_path / "evil.pt")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(cz.CheckpointError, match="not a checkpoint"):
        cz.load_weights(tmp_path / "raw.pkl")


def test_allocated_mb_sees_a_large_temporary():
    small = cz.allocated_mb(lambda: torch.ones(10) + 1)
    large = cz.allocated_mb(lambda: torch.ones(1000, 1000).sum())  # 4 MB temporary
    assert small < 0.01 and 3.9 < large < 8.5


def test_latency_and_size_helpers():
    assert cz.latency(lambda: sum(range(100)), repeats=3) >= 0
    assert 0.0 < cz.serialized_mb(nn.Linear(10, 10)) < 0.01


def test_head_importance_and_silence_heads_agree():
    from tfs.models.gpt import GPT, GPTConfig

    torch.manual_seed(7)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)).eval()
    ids = torch.randint(0, 50, (3, 12))
    scores = cz.head_importance(model, ids, n_heads=2)
    assert scores.shape == (2, 2) and torch.isfinite(scores).all()
    base = model(ids[:, :-1], ids[:, 1:])[1].item()
    cz.silence_heads(model, [(1, 0)], n_heads=2)  # zeroing the weights = the hook's zeroed output
    assert abs(model(ids[:, :-1], ids[:, 1:])[1].item() - base - scores[1, 0].item()) < 1e-5
    again = cz.head_importance(model, ids, n_heads=2, silenced=[(1, 0)])
    assert torch.isnan(again[1, 0]) and abs(again[1, 0 + 1]) >= 0


def test_lora_matches_peft_lora():
    """Second oracle: peft's LoRA on the same linear layer, with the same A and B, gives the same outputs
    and the same merged weight."""
    peft = pytest.importorskip("peft")
    torch.manual_seed(8)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(12, 8)

        def forward(self, x):
            return self.proj(x)

    net = Net()
    ours = cz.LoRALinear(copy.deepcopy(net.proj), r=4, alpha=8)
    wrapped = peft.get_peft_model(copy.deepcopy(net), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["proj"], lora_dropout=0.0))
    layer = wrapped.base_model.model.proj
    with torch.no_grad():
        ours.B.normal_()
        layer.lora_A["default"].weight.copy_(ours.A)     # peft: lora_A (r, in), lora_B (out, r), scaling alpha / r
        layer.lora_B["default"].weight.copy_(ours.B)
    assert layer.scaling["default"] == ours.scale
    assert sum(p.numel() for p in wrapped.parameters() if p.requires_grad) == sum(
        p.numel() for p in ours.parameters() if p.requires_grad)
    x = torch.randn(5, 12)
    with torch.no_grad():
        assert (wrapped(x) - ours(x)).abs().max() <= 1e-6
        merged_peft = wrapped.merge_and_unload().proj
        assert (merged_peft.weight - ours.merge().weight).abs().max() <= 1e-6
