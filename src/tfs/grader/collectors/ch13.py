"""Chapter 13 (SFT and DPO with LoRA) collectors: run the learner's functions on fixed, seeded inputs, return plain data.

Never SmolLM2: the chat exercises use :func:`tfs.teaching.probes_align.chat_tokenizer` (a small byte-level BPE with
SmolLM2's chat template), the model exercises :func:`tfs.teaching.probes_align.tiny_llama` in float64. The judges
(``autograder/judges/ch13.py``) import the generators below to rebuild every input. An error of the learner's code
is reported as its first line (``"ValueError: ..."``) or ``"no error"``.

**Nothing of chapter 13's own code.** ``tfs.align``'s references (and ``tfs.compress.add_lora``) are hidden while the
chapter is graded (:mod:`tfs.grader.references`): the step's batch is written out here (:func:`step_batch`), and
while the learner's ``sft_step`` runs, the names ``packing_mask`` and ``sft_loss`` in its namespace are stand-ins
made of ``transformers`` and ``torch`` (:func:`_stand_ins`, put in place by :func:`tfs.grader.judging.stand_ins`), so
a mistake in one exercise costs only its points.

Every input is passed as a copy and compared with the original afterwards: a function that changes what it was given
(a caller's messages, list of examples, labels, adapter or log-probabilities) is told so.
"""

from __future__ import annotations

import copy

import torch

from tfs.grader.judging import error_line, raised, run_seed, stand_ins
from tfs.teaching import probes_align
from tfs.teaching.probes_align import chat_tokenizer, toy_examples

VOCAB = 48
PAD_ID = 3
BLOCK = 16
PACK_LENGTHS = (5, 9, 3, 12, 7, 9, 10, 6, 2, 16)   # rows: [5, 9] [3, 12] [7, 9] [10, 6] [2] [16]: two rows filled
# exactly; the 2 does not fit after [10, 6] and starts a row (first-fit packing would put it back in the first row)
LORA_R, LORA_ALPHA = 2, 6.0                  # scale 3 (r / alpha = 1/3: an inverted scale shows)
STEP_LR, STEP_NORM, STEPS = 0.05, 0.5, 3     # the clipping threshold is reached at every step
BETAS = (0.1, 0.5)
TARGETS = ("q", "down")                      # add_lora_adapters' targets, varied from the default
FAR_PAIR = (-2100.0, -20.0, -100.0, -20.0)   # a pair ranked wrong by a margin of 2000 (beta 0.5: -log sigmoid(-1000))
MERGED = ("blocks.0.attn.q", "blocks.0.attn.k", "blocks.0.attn.v", "blocks.0.attn.out", "blocks.0.ff.gate",
          "blocks.0.ff.up", "blocks.0.ff.down", "blocks.1.attn.q", "blocks.1.ff.down")
MERGED_RANKS = {"blocks.1.attn.q": 1, "blocks.1.ff.down": 4}   # each module its own rank (A's rows); 6 / 4 = 1.5

SINGLE_TURN = [
    [{"role": "system", "content": "Reply in JSON."},
     {"role": "user", "content": "Movie: Heat\nReview: Tense, sleek and long."},
     {"role": "assistant", "content": '{"movie": "Heat", "sentiment": "positive"}'}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue."}],
    [{"role": "system", "content": "Answer in one word."},
     {"role": "user", "content": "What is 12 + 30?"},
     {"role": "assistant", "content": "42"}],
]
MULTI_TURN = [
    [{"role": "user", "content": "Hello!"},
     {"role": "assistant", "content": "Hi. How can I help?"},
     {"role": "user", "content": "Say 'assistant' twice."},
     {"role": "assistant", "content": "assistant assistant"}],
    [{"role": "system", "content": "Be kind."},
     {"role": "user", "content": "Two lines, please."},
     {"role": "assistant", "content": "First line.\nSecond line."},
     {"role": "user", "content": "Thanks"}],
    [{"role": "user", "content": "Ping"},
     {"role": "assistant", "content": "Pong."},
     {"role": "user", "content": "Ping again, then say Pong."},
     {"role": "assistant", "content": "Pong."}],   # the same reply twice, and a user turn that ends with its text:
    # each reply is trained where it stands, after its own header
]


# ------------------------------------------------------------------------------------------ one exercise at a time

def _stand_ins() -> dict:
    """What the learner's ``packing_mask`` and ``sft_loss`` are replaced by while ``sft_step`` is collected: the
    mask of :func:`step_batch`, precomputed with transformers' packed-sequence mask (whatever it is asked), and
    torch's cross-entropy over the labelled positions."""
    from torch.nn import functional as F

    step_mask = probes_align.segment_mask(step_batch()["segment_ids"])   # (rows, 1, T, T)

    def packing_mask(segment_ids):
        return step_mask.clone()

    def sft_loss(logits, labels):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    return {"packing_mask": packing_mask, "sft_loss": sft_loss}


# ------------------------------------------------------------------------------------------ chat data

def _examples(chat_example, conversations) -> list:
    tokenizer = chat_tokenizer()
    out = []
    for messages in conversations:
        given = copy.deepcopy(messages)
        try:
            example = chat_example(tokenizer, given)
            out.append({"input_ids": example["input_ids"], "labels": example["labels"],
                        "messages_unchanged": given == messages})
        except Exception as error:  # reported as the learner reads it
            out.append({"error": error_line(error)})
    return out


def chat_labels(chat_example) -> list:
    return _examples(chat_example, SINGLE_TURN)


def chat_turns(chat_example) -> list:
    return _examples(chat_example, MULTI_TURN)


def tiny_llama(seed: int, vocab_size: int = VOCAB):
    """:func:`tfs.teaching.probes_align.tiny_llama` with weights drawn for this grading run (judges call it too)."""
    return probes_align.tiny_llama(seed + 16 * run_seed(), vocab_size)


def seeded(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """:func:`tfs.teaching.probes_align.seeded`, drawn for this grading run."""
    return probes_align.seeded(name, shape, run_seed())


# ------------------------------------------------------------------------------------------ packing

def pack_inputs() -> list[dict]:
    """Examples of :data:`PACK_LENGTHS` tokens (:func:`tfs.teaching.probes_align.toy_examples`, seed 130 in run 0)."""
    return toy_examples(PACK_LENGTHS, seed=130 + 16 * run_seed(), vocab_size=VOCAB)


def _fresh(examples):
    return [{k: v.clone() for k, v in e.items()} for e in examples]


def _unchanged(given: list, examples: list) -> bool:
    return len(given) == len(examples) and all(
        isinstance(g, dict) and g.keys() == e.keys() and all(torch.equal(g[k], e[k]) for k in e)
        for g, e in zip(given, examples))


def pack_layout(pack_examples) -> dict:
    given = _fresh(pack_inputs())
    packed = pack_examples(given, BLOCK, PAD_ID)
    keys = ("input_ids", "labels", "position_ids", "segment_ids")
    too_long = _fresh(pack_inputs()[:2]) + [{"input_ids": torch.arange(4, 4 + BLOCK + 1) % VOCAB,
                                            "labels": torch.full((BLOCK + 1,), -100)}]
    return {"packed": {k: packed.get(k) for k in keys} if isinstance(packed, dict) else None,
            "too_long": raised(pack_examples, too_long, BLOCK, PAD_ID),
            "examples_unchanged": _unchanged(given, pack_inputs())}


def pack_mask(pack_examples, packing_mask) -> dict:
    packed = pack_examples(_fresh(pack_inputs()), BLOCK, PAD_ID)
    segments = packed["segment_ids"].clone()
    return {"packed": {k: packed[k] for k in ("input_ids", "labels", "position_ids", "segment_ids")},
            "mask": packing_mask(segments.clone()),
            "segments_unchanged": bool(torch.equal(segments, packed["segment_ids"])),
            "one_row": packing_mask(packed["segment_ids"][1:2].clone())}   # a batch of one row: [3, 12] and padding


# ------------------------------------------------------------------------------------------ SFT loss

def loss_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``logits (2, 6, 11)`` float64 and shifted ``labels (2, 6)``: prompt, reply and padding positions."""
    logits = 2 * seeded("logits", (2, 6, 11))
    labels = torch.tensor([[-100, -100, 4, 7, 1, -100], [-100, 9, 0, -100, -100, -100]])
    return logits, labels


def sft_loss(sft_loss) -> dict:
    logits, labels = loss_inputs()
    leaf = logits.clone().requires_grad_(True)
    given = labels.clone()
    loss = sft_loss(leaf, given)
    unchanged = bool(torch.equal(given, labels) and torch.equal(leaf.detach(), logits))
    loss.backward()
    try:   # logits (N, vocab) and labels (N,): the exercise takes any leading dimensions
        flat = sft_loss(logits.reshape(-1, logits.shape[-1]).clone(), labels.reshape(-1).clone())
        flat = float(flat.detach()) if isinstance(flat, torch.Tensor) else flat
    except Exception as error:  # reported as the learner reads it
        flat = error_line(error)
    try:   # the same values, not contiguous in memory (as logits[:, :-1] or a transpose are)
        strided = sft_loss(logits.transpose(0, 1).contiguous().transpose(0, 1), labels.t().contiguous().t())
        strided = float(strided.detach()) if isinstance(strided, torch.Tensor) else strided
    except Exception as error:  # reported as the learner reads it
        strided = error_line(error)
    return {"loss": float(loss.detach()) if isinstance(loss, torch.Tensor) else loss, "grad": leaf.grad, "is_tensor": isinstance(loss, torch.Tensor),
            "empty": raised(sft_loss, logits.clone(), torch.full_like(labels, -100)), "flat": flat,
            "inputs_unchanged": unchanged, "strided": strided}


# ------------------------------------------------------------------------------------------ LoRA and the step

def lora_trainable(add_lora_adapters) -> dict:
    model = tiny_llama(1)
    returned = add_lora_adapters(model, LORA_R, LORA_ALPHA)
    names = {id(p): name for name, p in model.named_parameters()}
    targeted = tiny_llama(1)
    add_lora_adapters(targeted, LORA_R, LORA_ALPHA, TARGETS)   # the targets argument varied from its default
    return {"trainable": sorted(name for name, p in model.named_parameters() if p.requires_grad),
            "returned": sorted(names.get(id(p), "<not a parameter of the model>") for p in returned),
            "targeted": sorted(name for name, p in targeted.named_parameters() if p.requires_grad),
            "adapters": lora_probe(model)}


def lora_probe(model) -> dict:
    """For each wrapped layer (a module with ``A``, ``B`` and ``base``): A's and B's shapes and, with A and B set to
    :func:`adapter_values` when their shapes allow, what the layer adds to its base on a seeded input."""
    out = {}
    for name, module in model.named_modules():
        if not (hasattr(module, "A") and hasattr(module, "B") and hasattr(module, "base")):
            continue
        base = module.base
        A, B = adapter_values(name, base.in_features, base.out_features)
        shapes = {"A": tuple(module.A.shape), "B": tuple(module.B.shape)}
        if shapes["A"] == tuple(A.shape) and shapes["B"] == tuple(B.shape):
            with torch.no_grad():
                module.A.copy_(A)
                module.B.copy_(B)
                x = seeded(f"{name}.x", (3, base.in_features))
                shapes["added"] = (module(x) - base(x)).detach().clone()
        out[name] = shapes
    return out


def step_batch() -> dict:
    """Two packed rows of :func:`pack_inputs`' first four examples, [5, 9] and [3, 12] tokens, written out as
    Exercise 2 lays them (:func:`tfs.teaching.probes_align.packed_rows`)."""
    examples = pack_inputs()[:4]
    return probes_align.packed_rows([examples[:2], examples[2:]], BLOCK, PAD_ID)


def adapter_values(name: str, in_features: int, out_features: int, r: int = LORA_R) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``A (r, in)`` and ``B (out, r)`` for the LoRA layer ``name`` (B not zero, so A gets gradients too)."""
    return 0.3 * seeded(f"{name}.A", (r, in_features)), 0.3 * seeded(f"{name}.B", (out_features, r))


def sft_step(add_lora_adapters, sft_step) -> dict:
    model = tiny_llama(2)
    parameters = add_lora_adapters(model, LORA_R, LORA_ALPHA)
    ranks = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if hasattr(module, "A") and hasattr(module, "B") and hasattr(module, "base"):
                A, B = adapter_values(name, module.base.in_features, module.base.out_features)
                ranks[name] = (tuple(module.A.shape), tuple(module.B.shape))
                if ranks[name] == (tuple(A.shape), tuple(B.shape)):
                    module.A.copy_(A)
                    module.B.copy_(B)
    adapted = sorted(name for name, p in model.named_parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(parameters, lr=STEP_LR, weight_decay=0.0)
    model.train()
    with stand_ins(sft_step, **_stand_ins()):
        returned = [sft_step(model, {k: v.clone() for k, v in step_batch().items()}, optimizer, STEP_NORM)
                    for _ in range(STEPS)]
    return {"losses": [float(x.detach()) if isinstance(x, torch.Tensor) else float(x) for x in returned],
            "floats": all(type(x) is float for x in returned), "adapted": adapted, "ranks": ranks,
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}


# ------------------------------------------------------------------------------------------ merging an adapter

def merge_adapter_values(in_out: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """The adapter merged: rank :data:`LORA_R`, but :data:`MERGED_RANKS`' modules' own ranks."""
    adapter = {}
    for name in MERGED:
        A, B = adapter_values(name, *in_out[name], MERGED_RANKS.get(name, LORA_R))
        adapter[f"{name}.A"], adapter[f"{name}.B"] = A, B
    return adapter


def merge_adapter(merge_adapter) -> dict:
    model = tiny_llama(3)
    shapes = {name: (m.in_features, m.out_features) for name, m in model.named_modules() if name in MERGED}
    adapter = merge_adapter_values(shapes)
    given = {k: v.clone() for k, v in adapter.items()}
    try:
        result = merge_adapter(model, given, LORA_ALPHA)
    except Exception as error:  # reported as the learner reads it; the judge says what a shape error here means
        return {"error": error_line(error)}
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "returned_model": result is model,
            "adapter_unchanged": given.keys() == adapter.keys() and all(torch.equal(given[k], adapter[k]) for k in adapter)}


# ------------------------------------------------------------------------------------------ log-probabilities

def logprob_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``logits (3, 7, 11)`` float64 and shifted ``labels (3, 7)``, -100 on prompts and padding; one labelled token
    has a logit of -1000; the second row is labelled from position 0 (an empty prompt: BOS predicts the response),
    the third up to its last position."""
    logits = 3 * seeded("sequence logits", (3, 7, 11))
    logits[2, 6, 9] = -1000.0   # a labelled token so unlikely that its probability underflows to 0 (its log does not)
    labels = torch.tensor([[-100, -100, -100, 5, 2, 8, -100],
                           [7, 1, 10, 0, 3, -100, -100],
                           [-100, -100, -100, -100, -100, 6, 9]])
    return logits, labels


def sequence_logprobs(sequence_logprobs) -> dict:
    logits, labels = logprob_inputs()
    given = (logits.clone(), labels.clone())
    values = sequence_logprobs(*given)
    return {"values": values, "inputs_unchanged": bool(torch.equal(given[0], logits) and torch.equal(given[1], labels))}


# ------------------------------------------------------------------------------------------ DPO

def dpo_inputs() -> list[torch.Tensor]:
    """Policy chosen/rejected and reference chosen/rejected log-probabilities ``(6,)``, float64."""
    base = -20 + 5 * seeded("dpo base", (4, 6))
    return [base[i] + 2 * seeded(f"dpo {i}", (6,)) for i in range(4)]


def dpo_values(dpo_loss) -> list:
    out = []
    for beta in BETAS:
        given = [x.clone() for x in dpo_inputs()]
        loss, chosen, rejected = dpo_loss(*given, beta=beta)
        out.append({"loss": float(loss.detach()) if isinstance(loss, torch.Tensor) else loss, "chosen": chosen,
                    "rejected": rejected, "inputs_unchanged": all(torch.equal(g, x) for g, x in zip(given, dpo_inputs()))})
    loss = dpo_loss(*[torch.tensor([v], dtype=torch.float64) for v in FAR_PAIR], beta=BETAS[1])[0]
    out.append({"far_loss": float(loss.detach()) if isinstance(loss, torch.Tensor) else loss})
    return out


def dpo_gradient(dpo_loss) -> dict:
    leaves = [x.clone().requires_grad_(True) for x in dpo_inputs()]
    loss, chosen, rejected = dpo_loss(*leaves, beta=BETAS[1])
    loss.backward()
    return {"grads": [leaf.grad for leaf in leaves],
            "rewards_attached": [bool(getattr(r, "requires_grad", False)) for r in (chosen, rejected)]}
