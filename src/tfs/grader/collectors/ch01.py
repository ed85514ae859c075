"""Chapter 01 (attention): collectors of the hidden tests. Inputs come from the generators below."""

from __future__ import annotations


import torch

from tfs.grader.judging import generator, stand_ins


# --- softmax_stable ---------------------------------------------------------------------------

def softmax_values_inputs() -> list[tuple[torch.Tensor, int]]:
    """``[(x, dim), ...]``: the visible cases, then a 3-D tensor along every dimension, and zeros."""
    small = torch.tensor([[1.0, 0.0], [2.0, 4.0], [0.0, 0.0]])
    x3 = torch.randn(3, 4, 5, generator=generator(11)) * 3
    return ([(small, -1), (torch.tensor([1.0, 0.0]), -1), (small, 0)] + [(x3, d) for d in (0, 1, 2, -1, -2)]
            + [(torch.zeros(7), -1)])


def softmax_values(softmax_stable):
    return [softmax_stable(x, dim=dim) for x, dim in softmax_values_inputs()]


def softmax_large_logits_inputs() -> list[torch.Tensor]:
    return [torch.tensor([[1000.0, 999.0, 0.0], [-1000.0, -1001.0, -2000.0]]), torch.tensor([3.0e38, 0.0, -3.0e38]),
            torch.tensor([[0.0, float("-inf"), 1.0]]), torch.randn(4, 9, dtype=torch.float64, generator=generator(12)) * 50]


def softmax_large_logits(softmax_stable):
    return [softmax_stable(x) for x in softmax_large_logits_inputs()]


def softmax_temperature_inputs() -> dict:
    g = generator(14)
    return {"cases": [(torch.tensor([[2.0, 1.0, 0.5, 0.0]]), 2.0), (torch.tensor([3.0, 1.0, 2.0]), 0.01),
                      (torch.randn(3, 5, generator=g), 0.5)],
            "grad_x": torch.randn(2, 6, dtype=torch.float64, generator=g), "grad_weights": torch.randn(2, 6, dtype=torch.float64, generator=g),
            "grad_temperature": 0.7}


def softmax_temperature(softmax_stable):
    inputs = softmax_temperature_inputs()
    values = [softmax_stable(x, temperature=t) for x, t in inputs["cases"]]
    x = inputs["grad_x"].clone().requires_grad_(True)
    (softmax_stable(x, temperature=inputs["grad_temperature"]) * inputs["grad_weights"]).sum().backward()
    return {"values": values, "grad": x.grad}


# --- causal_mask ------------------------------------------------------------------------------

CAUSAL_SIZES = (4, 1, 2, 7, 64)


def causal_mask_values(causal_mask):
    return [causal_mask(n) for n in CAUSAL_SIZES]


def causal_mask_dtype(causal_mask):
    on_meta = causal_mask(5, device="meta")  # a device every machine has, unlike a GPU
    return {"mask3": causal_mask(3), "mask1": causal_mask(1), "shape5": list(getattr(on_meta, "shape", [])),
            "device5": str(getattr(on_meta, "device", None))}


# --- scaled_dot_product_attention ---------------------------------------------------------------

def _reference_softmax(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    return torch.softmax(x / temperature, dim=dim)


def attention_shapes_inputs() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = generator(21)
    shapes = [((2, 5, 8), (2, 7, 8), (2, 7, 3)), ((3, 1, 4), (3, 1, 4), (3, 1, 2)), ((4, 6), (9, 6), (9, 5))]
    return [tuple(torch.randn(*shape, generator=g) for shape in case) for case in shapes]


def attention_shapes(scaled_dot_product_attention):
    with stand_ins(scaled_dot_product_attention, softmax_stable=_reference_softmax):
        return [scaled_dot_product_attention(q, k, v) for q, k, v in attention_shapes_inputs()]


def _large_scores_case(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k scaled by 30 (float32 scores in the thousands), drawn again from ``g`` until every query's best key leads
    the second by at least 20: float32 rounding of such scores (|score| x 6e-8, about 1e-4) then moves no softmax weight
    by more than e^-20 x 1e-4, whereas with a near-tie it moves both weights by ~1e-4, past the "attention" tolerance
    that a correct float32 answer cannot meet (issue 31: run seed 1689017785)."""
    while True:
        q, k, v = torch.randn(1, 3, 8, generator=g) * 30, torch.randn(1, 4, 8, generator=g) * 30, torch.randn(1, 4, 2, generator=g)
        top2 = ((q.double() @ k.double().transpose(-2, -1)) / 8 ** 0.5).topk(2, dim=-1).values
        if (top2[..., 0] - top2[..., 1]).min() >= 20:
            return q, k, v


def attention_values_inputs() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = generator(22)
    return [(torch.randn(2, 5, 16, generator=g), torch.randn(2, 5, 16, generator=g), torch.randn(2, 5, 4, generator=g)),
            tuple(torch.randn(2, 3, 6, 32, dtype=torch.float64, generator=g) for _ in range(3)),
            _large_scores_case(g),  # very large scores, no near-tie
            tuple(torch.randn(4, 4, 4, 4, generator=g) for _ in range(3))]  # every size 4: a wrong transpose runs too


def attention_values(scaled_dot_product_attention):
    with stand_ins(scaled_dot_product_attention, softmax_stable=_reference_softmax):
        return [scaled_dot_product_attention(q, k, v) for q, k, v in attention_values_inputs()]


def attention_masks_inputs() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Causal, key padding, a fully masked query (2-D and batched), a (batch, 1, L, L) mask over heads."""
    g = generator(23)
    q, k, v = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 4, generator=g)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    padding = torch.tensor([[True, True, True, True, True], [True, True, False, False, False]])[:, None, :]
    row_masked = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    fully = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    q2, k2, v2 = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 6, generator=g)
    mask4 = torch.rand(2, 1, 4, 4, generator=g) > 0.3
    q4, k4, v4 = (torch.randn(2, 3, 4, 8, dtype=torch.float64, generator=g) for _ in range(3))
    return [(q, k, v, causal), (q, k, v, padding), (q[0, :3], k[0, :3], v[0, :3], row_masked),
            (q2, k2, v2, fully), (q4, k4, v4, mask4)]


def attention_masks(scaled_dot_product_attention):
    with stand_ins(scaled_dot_product_attention, softmax_stable=_reference_softmax):
        return [scaled_dot_product_attention(q, k, v, mask) for q, k, v, mask in attention_masks_inputs()]


def attention_gradients_inputs() -> list[dict]:
    g = generator(24)
    return [{"qkv": [torch.randn(1, 4, 8, generator=g) for _ in range(3)], "mask": torch.ones(4, 4, dtype=torch.bool).tril(),
             "weights": torch.randn(1, 4, 8, generator=g)},
            {"qkv": [torch.randn(2, 3, 5, dtype=torch.float64, generator=g) for _ in range(3)],
             "mask": torch.ones(3, 3, dtype=torch.bool).tril(), "weights": torch.randn(2, 3, 5, dtype=torch.float64, generator=g)}]


def attention_gradients(scaled_dot_product_attention):
    results = []
    for case in attention_gradients_inputs():
        q, k, v = (t.clone().requires_grad_(True) for t in case["qkv"])
        with stand_ins(scaled_dot_product_attention, softmax_stable=_reference_softmax):
            output = scaled_dot_product_attention(q, k, v, case["mask"])[0]
        (output * case["weights"]).sum().backward()
        results.append([q.grad, k.grad, v.grad])
    return results
