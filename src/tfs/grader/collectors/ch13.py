"""Chapter 13 (SFT and DPO with LoRA) collectors: run the learner's functions on fixed, seeded inputs, return plain data.

Never SmolLM2: the chat exercises use :func:`tfs.teaching.probes_align.chat_tokenizer` (a small byte-level BPE with
SmolLM2's chat template), the model exercises :func:`tfs.teaching.probes_align.tiny_llama` in float64. The judges
(``autograder/judges/ch13.py``) import the generators below to rebuild every input. An error of the learner's code
is reported as its first line (``"ValueError: ..."``) or ``"no error"``.

**Nothing of chapter 13's own code.** ``tfs.align``'s references (and ``tfs.compress.add_lora``) are hidden while the
chapter is graded (:mod:`tfs.grader.references`): the step's batch is written out here (:func:`step_batch`), and
while the learner's ``sft_step`` runs, the names ``packing_mask`` and ``sft_loss`` in its namespace are stand-ins
made of ``transformers`` and ``torch`` (:func:`references_for`), so a mistake in one exercise costs only its points.
"""

from __future__ import annotations

import contextlib

import torch

from tfs.grader.judging import error_line, raised, run_seed
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


@contextlib.contextmanager
def references_for(*answers):
    """While the learner's functions run, the names of the chapter's other exercises in their global namespaces that
    have a stand-in (:func:`_stand_ins`) are that stand-in (put back afterwards): a mistake in one exercise costs only
    that exercise's points."""
    references = _stand_ins()
    own = {getattr(a, "__name__", None) for a in answers}
    spaces = []
    for answer in answers:
        space = getattr(answer, "__globals__", None)
        if isinstance(space, dict) and all(space is not s for s, _ in spaces):
            spaces.append((space, {n: space[n] for n in references if n in space and n not in own}))
    for space, kept in spaces:
        space.update({name: references[name] for name in kept})
    try:
        yield
    finally:
        for space, kept in spaces:
            space.update(kept)


# ------------------------------------------------------------------------------------------ chat data

def _examples(chat_example, conversations) -> list:
    tokenizer = chat_tokenizer()
    out = []
    for messages in conversations:
        try:
            example = chat_example(tokenizer, [dict(m) for m in messages])
            out.append({"input_ids": example["input_ids"], "labels": example["labels"]})
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


def pack_layout(pack_examples) -> dict:
    packed = pack_examples(_fresh(pack_inputs()), BLOCK, PAD_ID)
    keys = ("input_ids", "labels", "position_ids", "segment_ids")
    too_long = _fresh(pack_inputs()[:2]) + [{"input_ids": torch.arange(4, 4 + BLOCK + 1) % VOCAB,
                                            "labels": torch.full((BLOCK + 1,), -100)}]
    return {"packed": {k: packed.get(k) for k in keys} if isinstance(packed, dict) else None,
            "too_long": raised(pack_examples, too_long, BLOCK, PAD_ID)}


def pack_mask(pack_examples, packing_mask) -> dict:
    packed = pack_examples(_fresh(pack_inputs()), BLOCK, PAD_ID)
    segments = packed["segment_ids"].clone()
    return {"packed": {k: packed[k] for k in ("input_ids", "labels", "position_ids", "segment_ids")},
            "mask": packing_mask(segments.clone()),
            "segments_unchanged": bool(torch.equal(segments, packed["segment_ids"]))}


# ------------------------------------------------------------------------------------------ SFT loss

def loss_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``logits (2, 6, 11)`` float64 and shifted ``labels (2, 6)``: prompt, reply and padding positions."""
    logits = 2 * seeded("logits", (2, 6, 11))
    labels = torch.tensor([[-100, -100, 4, 7, 1, -100], [-100, 9, 0, -100, -100, -100]])
    return logits, labels


def sft_loss(sft_loss) -> dict:
    logits, labels = loss_inputs()
    leaf = logits.clone().requires_grad_(True)
    loss = sft_loss(leaf, labels.clone())
    loss.backward()
    try:   # logits (N, vocab) and labels (N,): the exercise takes any leading dimensions
        flat = sft_loss(logits.reshape(-1, logits.shape[-1]).clone(), labels.reshape(-1).clone())
        flat = float(flat.detach()) if isinstance(flat, torch.Tensor) else flat
    except Exception as error:  # reported as the learner reads it
        flat = error_line(error)
    return {"loss": float(loss.detach()) if isinstance(loss, torch.Tensor) else loss, "grad": leaf.grad, "is_tensor": isinstance(loss, torch.Tensor),
            "empty": raised(sft_loss, logits.clone(), torch.full_like(labels, -100)), "flat": flat}


# ------------------------------------------------------------------------------------------ LoRA and the step

def lora_trainable(add_lora_adapters) -> dict:
    model = tiny_llama(1)
    returned = add_lora_adapters(model, LORA_R, LORA_ALPHA)
    names = {id(p): name for name, p in model.named_parameters()}
    targeted = tiny_llama(1)
    add_lora_adapters(targeted, LORA_R, LORA_ALPHA, TARGETS)   # the targets argument varied from its default
    return {"trainable": sorted(name for name, p in model.named_parameters() if p.requires_grad),
            "returned": sorted(names.get(id(p), "<not a parameter of the model>") for p in returned),
            "targeted": sorted(name for name, p in targeted.named_parameters() if p.requires_grad)}


def step_batch() -> dict:
    """Two packed rows of :func:`pack_inputs`' first four examples, [5, 9] and [3, 12] tokens, written out as
    Exercise 2 lays them (:func:`tfs.teaching.probes_align.packed_rows`)."""
    examples = pack_inputs()[:4]
    return probes_align.packed_rows([examples[:2], examples[2:]], BLOCK, PAD_ID)


def adapter_values(name: str, in_features: int, out_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``A (r, in)`` and ``B (out, r)`` for the LoRA layer ``name`` (B not zero, so A gets gradients too)."""
    return 0.3 * seeded(f"{name}.A", (LORA_R, in_features)), 0.3 * seeded(f"{name}.B", (out_features, LORA_R))


def sft_step(add_lora_adapters, sft_step) -> dict:
    model = tiny_llama(2)
    parameters = add_lora_adapters(model, LORA_R, LORA_ALPHA)
    with torch.no_grad():
        for name, module in model.named_modules():
            if hasattr(module, "A") and hasattr(module, "B") and hasattr(module, "base"):
                A, B = adapter_values(name, module.base.in_features, module.base.out_features)
                module.A.copy_(A)
                module.B.copy_(B)
    adapted = sorted(name for name, p in model.named_parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(parameters, lr=STEP_LR, weight_decay=0.0)
    model.train()
    with references_for(add_lora_adapters, sft_step):
        returned = [sft_step(model, {k: v.clone() for k, v in step_batch().items()}, optimizer, STEP_NORM)
                    for _ in range(STEPS)]
    return {"losses": [float(x.detach()) if isinstance(x, torch.Tensor) else float(x) for x in returned],
            "floats": all(type(x) is float for x in returned), "adapted": adapted,
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}


# ------------------------------------------------------------------------------------------ merging an adapter

def merge_adapter_values(in_out: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    adapter = {}
    for name in MERGED:
        A, B = adapter_values(name, *in_out[name])
        adapter[f"{name}.A"], adapter[f"{name}.B"] = A, B
    return adapter


def merge_adapter(merge_adapter) -> dict:
    model = tiny_llama(3)
    shapes = {name: (m.in_features, m.out_features) for name, m in model.named_modules() if name in MERGED}
    try:
        result = merge_adapter(model, merge_adapter_values(shapes), LORA_ALPHA)
    except Exception as error:  # reported as the learner reads it; the judge says what a shape error here means
        return {"error": error_line(error)}
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "returned_model": result is model}


# ------------------------------------------------------------------------------------------ log-probabilities

def logprob_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``logits (3, 7, 11)`` float64 and shifted ``labels (3, 7)``, -100 on prompts and padding; one labelled token
    has a logit of -1000."""
    logits = 3 * seeded("sequence logits", (3, 7, 11))
    logits[2, 6, 9] = -1000.0   # a labelled token so unlikely that its probability underflows to 0 (its log does not)
    labels = torch.tensor([[-100, -100, -100, 5, 2, 8, -100],
                           [-100, 1, 10, 0, 3, -100, -100],
                           [-100, -100, -100, -100, -100, 6, 9]])
    return logits, labels


def sequence_logprobs(sequence_logprobs) -> dict:
    logits, labels = logprob_inputs()
    return {"values": sequence_logprobs(logits.clone(), labels.clone())}


# ------------------------------------------------------------------------------------------ DPO

def dpo_inputs() -> list[torch.Tensor]:
    """Policy chosen/rejected and reference chosen/rejected log-probabilities ``(6,)``, float64."""
    base = -20 + 5 * seeded("dpo base", (4, 6))
    return [base[i] + 2 * seeded(f"dpo {i}", (6,)) for i in range(4)]


def dpo_values(dpo_loss) -> list:
    out = []
    for beta in BETAS:
        loss, chosen, rejected = dpo_loss(*[x.clone() for x in dpo_inputs()], beta=beta)
        out.append({"loss": float(loss.detach()) if isinstance(loss, torch.Tensor) else loss, "chosen": chosen, "rejected": rejected})
    loss = dpo_loss(*[torch.tensor([v], dtype=torch.float64) for v in FAR_PAIR], beta=BETAS[1])[0]
    out.append({"far_loss": float(loss.detach()) if isinstance(loss, torch.Tensor) else loss})
    return out


def dpo_gradient(dpo_loss) -> dict:
    leaves = [x.clone().requires_grad_(True) for x in dpo_inputs()]
    loss, chosen, rejected = dpo_loss(*leaves, beta=BETAS[1])
    loss.backward()
    return {"grads": [leaf.grad for leaf in leaves],
            "rewards_attached": [bool(getattr(r, "requires_grad", False)) for r in (chosen, rejected)]}
