"""Teaching a pretrained LLM new behaviour (chapter 13): supervised fine-tuning on chats and direct preference
optimisation, with LoRA, on the course's LLaMA (:class:`tfs.models.llama.LLaMA` holding SmolLM2's weights).

The learner writes the functions named like chapter 13's exercises; these are the package's references:

- :func:`chat_example`      a conversation -> ``input_ids`` and ``labels`` that train only the assistant's tokens
                            (each reply and its ``<|im_end|>``), shifted: ``labels[t]`` is the token after ``t``
- :func:`pack_examples`     variable-length examples -> rows of ``block_size`` tokens, with positions that restart
                            and segment ids; :func:`packing_mask` keeps each example to itself (block-diagonal)
- :func:`sft_loss`          mean cross-entropy over the labelled tokens only
- :func:`add_lora_adapters` chapter 10's :class:`tfs.compress.LoRALinear` on the attention and MLP projections,
                            everything else frozen; :func:`sft_step` one optimiser step
- :func:`merge_adapter`     a saved adapter folded into the weights: ``W + (alpha / r) B A``
- :func:`sequence_logprobs` log p(response | prompt): a sum over the response's tokens
- :func:`dpo_loss`          the DPO loss from policy and reference log-probabilities, and the implicit rewards

Around them: :func:`packed_logits` runs the LLaMA's blocks with a block-diagonal mask (``LLaMA.forward`` takes a
padding mask only), :func:`labelled_logits` computes the output head only where a label is (most of a chat is
prompt), :func:`batch_logprobs`, :func:`adapters_off` (the reference model is the same weights with the adapters
switched off, so it costs no memory), :func:`reference_logprobs` (computed once, cached), :func:`token_kl`, and
the two training loops :func:`train_sft` and :func:`train_dpo` that ``scripts/train_sft.py`` and
``scripts/train_dpo.py`` run. Tests compare with ``transformers`` (its assistant-token mask, ``LlamaForCausalLM``,
``peft``) and with direct computations, never with these functions themselves (``tests/test_align.py``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from tfs.chat import END_OF_TURN, START_OF_TURN
from tfs.compress import LoRALinear, add_lora
from tfs.train import clip_gradients, lr_schedule

__all__ = ["IGNORE_INDEX", "LORA_TARGETS", "PIECES", "adapters_off", "add_lora_adapters", "assistant_spans",
           "batch_logprobs", "chat_example", "dpo_loss", "dpo_step", "labelled_counts", "labelled_logits", "load_smollm2",
           "lora_state_dict", "merge_adapter", "pack_examples", "packed_logits", "packing_mask", "pad_examples",
           "reference_logprobs", "remove_adapters", "replies", "saved_activation_bytes", "sequence_logprobs",
           "sft_loss", "sft_step", "token_kl", "train_dpo", "train_sft", "training_flops", "training_state_bytes",
           "wilson_interval"]

IGNORE_INDEX = -100  # F.cross_entropy's ignore_index: a position that teaches nothing
LORA_TARGETS = ("q", "k", "v", "out", "gate", "up", "down")  # attention and SwiGLU projections of tfs.models.llama


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[nn.Module, object]:
    """``(model, tokenizer)``: SmolLM2-135M-Instruct's weights in the course's LLaMA (chapter 12's
    :func:`tfs.convert.llama.llama_from_hf`), in evaluation mode, and its tokenizer; offline
    (:func:`tfs.data.smollm2_path`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tfs.convert.llama import llama_from_hf
    from tfs.data import smollm2_path
    from tfs.finetune import quiet_loading

    with quiet_loading():
        hf_model = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=dtype)
    return llama_from_hf(hf_model), AutoTokenizer.from_pretrained(smollm2_path())


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95 % score interval of a proportion ``successes / n`` (sound near 0 and 1, unlike p +- 1.96 se)."""
    if n <= 0:
        raise ValueError("an interval needs at least one trial")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5 / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ------------------------------------------------------------------------------------------ chat data

def assistant_spans(text: str, messages: Sequence[dict]) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of each assistant reply in the ChatML ``text``, its ``<|im_end|>`` included
    (what the model must learn to write, and to stop), found in order after each assistant header."""
    spans, cursor = [], 0
    header = f"{START_OF_TURN}assistant\n"
    for message in messages:
        if message["role"] != "assistant":
            continue
        piece = message["content"] + END_OF_TURN
        start = text.index(header + piece, cursor) + len(header)
        spans.append((start, start + len(piece)))
        cursor = start + len(piece)
    return spans


def chat_example(tokenizer, messages: Sequence[dict]) -> dict[str, torch.Tensor]:
    """One training example from a conversation, rendered with the tokenizer's chat template.

    Returns ``input_ids (T,)`` and ``labels (T,)`` (int64): ``labels[t] = input_ids[t + 1]`` when token ``t + 1``
    belongs to an assistant reply (its content or its closing ``<|im_end|>``), else -100; the last label is -100.
    """
    text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans = assistant_spans(text, messages)
    ids = torch.tensor(encoding["input_ids"], dtype=torch.long)
    trained = torch.tensor([any(s <= start < e for s, e in spans) for start, _ in encoding["offset_mapping"]])
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:-1] = torch.where(trained[1:], ids[1:], IGNORE_INDEX)  # position t predicts token t + 1
    return {"input_ids": ids, "labels": labels}


# ------------------------------------------------------------------------------------------ batches

def pack_examples(examples: Sequence[dict], block_size: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Examples (``input_ids``, ``labels`` of equal length) laid end to end in rows of ``block_size``, in order; an
    example that does not fit in what is left of a row starts the next one (none is ever split).

    Returns ``(rows, block_size)`` int64 tensors: ``input_ids`` (``pad_id`` after the last example of a row),
    ``labels`` (-100 on padding), ``position_ids`` (0, 1, ... from each example's start; 0 on padding) and
    ``segment_ids`` (0, 1, ... for the examples of a row; -1 on padding). ``ValueError`` for an example longer than
    ``block_size``."""
    rows: list[list[dict]] = [[]]
    used = 0
    for example in examples:
        length = len(example["input_ids"])
        if length > block_size:
            raise ValueError(f"an example of {length} tokens does not fit in a row of block_size={block_size}")
        if used + length > block_size:
            rows.append([])
            used = 0
        rows[-1].append(example)
        used += length
    shape = (len(rows), block_size)
    batch = {"input_ids": torch.full(shape, pad_id, dtype=torch.long),
             "labels": torch.full(shape, IGNORE_INDEX, dtype=torch.long),
             "position_ids": torch.zeros(shape, dtype=torch.long),
             "segment_ids": torch.full(shape, -1, dtype=torch.long)}
    for row, members in enumerate(rows):
        start = 0
        for segment, example in enumerate(members):
            stop = start + len(example["input_ids"])
            batch["input_ids"][row, start:stop] = torch.as_tensor(example["input_ids"])
            batch["labels"][row, start:stop] = torch.as_tensor(example["labels"])
            batch["position_ids"][row, start:stop] = torch.arange(stop - start)
            batch["segment_ids"][row, start:stop] = segment
            start = stop
    return batch


def packing_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """``(rows, T)`` segment ids -> ``(rows, 1, T, T)`` bool, True where query and key belong to the same segment
    (block-diagonal; padding, segment -1, sees padding only). The model adds the causal mask."""
    return (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]


def pad_examples(examples: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """One example per row, right-padded to the longest: ``input_ids`` (``pad_id`` on padding), ``labels`` (-100 on
    padding), ``position_ids`` (0, 1, ...; 0 on padding) and ``segment_ids`` (0; -1 on padding), the layout
    :func:`pack_examples` writes for rows of one example each (it does not call it: chapter 13's demonstrations
    pad chats before the learner's packing exists, and while the chapter is graded the package's is hidden)."""
    lengths = torch.tensor([len(e["input_ids"]) for e in examples])
    width = int(lengths.max())
    real = torch.arange(width)[None] < lengths[:, None]                                  # (rows, width)

    def padded(key: str, fill: int) -> torch.Tensor:
        return torch.stack([F.pad(torch.as_tensor(e[key], dtype=torch.long), (0, width - len(e[key])), value=fill)
                            for e in examples])

    return {"input_ids": padded("input_ids", pad_id), "labels": padded("labels", IGNORE_INDEX),
            "position_ids": torch.where(real, torch.arange(width)[None], 0), "segment_ids": torch.where(real, 0, -1)}


def _hidden(model: nn.Module, input_ids: torch.Tensor, position_ids: torch.Tensor | None,
            mask: torch.Tensor | None) -> torch.Tensor:
    """The LLaMA's final normalised hidden states ``(rows, T, d)``, its blocks run with ``mask`` (True = may attend,
    ``(rows, 1, T, T)``; combined with the causal mask inside attention)."""
    rows, length = input_ids.shape
    if position_ids is None:
        position_ids = torch.arange(length, device=input_ids.device).expand(rows, length)
    x = model.embed(input_ids)
    for index, block in enumerate(model.blocks):
        x = block(x, position_ids, mask, None, index)
    return model.norm(x)


def packed_logits(model: nn.Module, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(rows, T, vocab)`` logits of a packed (or padded) batch, each token attending only where ``mask`` allows
    (see :func:`packing_mask`) and causally."""
    return model.lm_head(_hidden(model, input_ids, position_ids, mask))


#: the exercises that the helpers below call, by name: ``pieces={"packing_mask": ..., "dpo_loss": ...}`` replaces
#: them by a learner's own versions (same signatures), as chapter 13's demonstrations do
PIECES = ("packing_mask", "dpo_loss")


def _pieces(pieces: dict[str, Callable] | None) -> dict[str, Callable]:
    """The package's :data:`PIECES`, with those named in ``pieces`` replaced."""
    unknown = sorted(set(pieces or {}) - set(PIECES))
    if unknown:
        raise ValueError(f"unknown pieces {unknown}: these helpers take {list(PIECES)}")
    return {"packing_mask": packing_mask, "dpo_loss": dpo_loss, **(pieces or {})}


def labelled_logits(model: nn.Module, batch: dict, pieces: dict[str, Callable] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (N, vocab), labels (N,))`` at the ``N`` labelled positions of a batch from :func:`pack_examples`
    only: the output head (576 x 49,152 for SmolLM2) is a fifth of the model's multiply-adds per token, and most
    positions of a chat are prompt."""
    mask = _pieces(pieces)["packing_mask"](batch["segment_ids"])
    hidden = _hidden(model, batch["input_ids"], batch["position_ids"], mask)
    where = batch["labels"] != IGNORE_INDEX
    return model.lm_head(hidden[where]), batch["labels"][where]


# ------------------------------------------------------------------------------------------ SFT

def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions whose label is not -100: ``logits (..., vocab)``,
    ``labels (...)`` (already shifted). ``ValueError`` when no position is labelled."""
    if not bool((labels != IGNORE_INDEX).any()):
        raise ValueError("no labelled token in the batch (every label is -100): nothing to learn from")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def add_lora_adapters(model: nn.Module, r: int = 8, alpha: float = 16.0,
                      targets: Sequence[str] = LORA_TARGETS) -> list[nn.Parameter]:
    """Freeze every weight of ``model``, wrap each ``nn.Linear`` whose name ends with one of ``targets`` in a
    :class:`tfs.compress.LoRALinear` (rank ``r``, scale ``alpha / r``), and return the parameters left to train
    (each adapter's ``A`` and ``B``)."""
    add_lora(model, targets, r, alpha)
    return [p for p in model.parameters() if p.requires_grad]


def sft_step(model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, max_norm: float = 1.0) -> float:
    """One optimiser step on a packed batch: logits with the block-diagonal mask, :func:`sft_loss`, gradients,
    their global norm clipped to ``max_norm`` (over the trained parameters), the step. Returns the loss."""
    logits = packed_logits(model, batch["input_ids"], batch["position_ids"], packing_mask(batch["segment_ids"]))
    loss = sft_loss(logits, batch["labels"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_norm)
    optimizer.step()
    return loss.item()


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters only: ``{"<module>.A": (r, in), "<module>.B": (out, r)}`` for every LoRA layer of ``model``."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if name.endswith((".A", ".B"))}


@torch.no_grad()
def merge_adapter(model: nn.Module, adapter: dict[str, torch.Tensor], alpha: float) -> nn.Module:
    """Fold an adapter ``{"<module>.A": (r, in), "<module>.B": (out, r)}`` into the ``nn.Linear`` weights of a plain
    model, in place: ``W <- W + (alpha / r) B A`` (``r`` = A's rows). Returns the model."""
    for name in sorted(key[:-2] for key in adapter if key.endswith(".A")):
        A, B = adapter[f"{name}.A"], adapter[f"{name}.B"]
        weight = model.get_submodule(name).weight
        weight += (alpha / A.shape[0]) * (B.to(weight.dtype) @ A.to(weight.dtype))   # (out, r) @ (r, in)
    return model


@contextlib.contextmanager
def adapters_off(model: nn.Module):
    """Inside the block every :class:`LoRALinear` of ``model`` computes its base layer only (its scale set to 0):
    the frozen model the adapters started from, without a second copy of the weights."""
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    scales = [layer.scale for layer in layers]
    for layer in layers:
        layer.scale = 0.0
    try:
        yield model
    finally:
        for layer, scale in zip(layers, scales):
            layer.scale = scale


def remove_adapters(model: nn.Module) -> nn.Module:
    """Put each :class:`LoRALinear`'s base layer back in its place (the adapters dropped, nothing merged): the plain
    model again, ready for other adapters. Returns the model."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.base)
    return model


def saved_activation_bytes(model: nn.Module, function: Callable[[], object]) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``function()`` runs (each storage counted
    once; ``model``'s weights left out, they are held anyway): the activation memory of a training step, measured
    with ``torch.autograd.graph.saved_tensors_hooks``."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function()
    return sum(storages.values())


def training_state_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes a training step keeps besides activations: ``weights`` (all, once), ``gradients`` (one per trained
    number) and ``adam`` (AdamW's two moments per trained number)."""
    trained = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return {"weights": sum(p.numel() * p.element_size() for p in model.parameters()), "gradients": trained,
            "adam": 2 * trained}


# ------------------------------------------------------------------------------------------ DPO

def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``logits (B, T, vocab)``, ``labels (B, T)`` (shifted, -100 where nothing is scored) -> ``(B,)``: the sum of
    log p(label) over each row's labelled positions, i.e. log p(response | prompt)."""
    scored = labels != IGNORE_INDEX
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]     # (B, T); -100 read as 0, then dropped
    return (picked * scored).sum(dim=-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Direct preference optimisation (Rafailov et al. 2023) from sequence log-probabilities ``(B,)``.

    ``loss = -mean log sigmoid(beta [(pi_c - ref_c) - (pi_r - ref_r)])``; the implicit rewards are
    ``beta (pi - ref)`` for chosen and rejected (detached). No gradient flows into the reference's values.
    Returns ``(loss, chosen_rewards, rejected_rewards)``."""
    chosen = policy_chosen - reference_chosen.detach()
    rejected = policy_rejected - reference_rejected.detach()
    loss = -F.logsigmoid(beta * (chosen - rejected)).mean()
    return loss, beta * chosen.detach(), beta * rejected.detach()


def _wide(logits: torch.Tensor) -> torch.Tensor:
    """Logits in float32 at least (a softmax over 49,152 values in bfloat16 loses the small probabilities)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _per_example(batch: dict, values: torch.Tensor) -> torch.Tensor:
    """Sums of ``values`` (one per labelled position, in order) per example of a packed or padded batch, row by row."""
    segments = batch["segment_ids"]
    n_segments = int(segments.max()) + 1
    keys = torch.arange(segments.shape[0], device=segments.device)[:, None] * n_segments + segments  # (rows, T)
    sums = torch.zeros(segments.numel(), dtype=values.dtype, device=values.device)
    sums = sums.index_add(0, keys[batch["labels"] != IGNORE_INDEX], values)
    return sums[torch.unique(keys[segments >= 0])]                # one per example, row by row, in order


def batch_logprobs(model: nn.Module, batch: dict, pieces: dict[str, Callable] | None = None) -> torch.Tensor:
    """:func:`sequence_logprobs` of every example of a batch from :func:`pack_examples` or :func:`pad_examples`
    (one value per segment, row by row), with the output head computed at labelled positions only."""
    logits, labels = labelled_logits(model, batch, pieces)
    picked = torch.log_softmax(_wide(logits), dim=-1).gather(-1, labels[:, None])[:, 0]      # (N,)
    return _per_example(batch, picked)


def labelled_counts(batch: dict) -> torch.Tensor:
    """The number of labelled tokens of each example of a batch (the order of :func:`batch_logprobs`)."""
    where = batch["labels"] != IGNORE_INDEX
    return _per_example(batch, torch.ones(int(where.sum()), dtype=torch.float32, device=where.device))


@torch.no_grad()
def reference_logprobs(model: nn.Module, batches: Iterable[dict], pieces: dict[str, Callable] | None = None
                       ) -> list[torch.Tensor]:
    """The frozen reference's :func:`batch_logprobs` of each batch, computed once (adapters off, no gradients):
    DPO reads them at every step, and they never change."""
    with adapters_off(model):
        return [batch_logprobs(model, batch, pieces) for batch in batches]


@torch.no_grad()
def token_kl(model: nn.Module, batch: dict) -> torch.Tensor:
    """Per labelled position, ``KL(policy || reference)`` of the next-token distributions (nats), exact over the
    vocabulary: how far the adapters moved the model on these responses. ``(N,)``."""
    policy, _ = labelled_logits(model, batch)
    with adapters_off(model):
        reference, _ = labelled_logits(model, batch)
    log_p, log_q = torch.log_softmax(_wide(policy), -1), torch.log_softmax(_wide(reference), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def dpo_step(model: nn.Module, chosen: dict, rejected: dict, reference: tuple[torch.Tensor, torch.Tensor],
             optimizer: torch.optim.Optimizer, beta: float, max_norm: float = 1.0, nll_weight: float = 0.0,
             pieces: dict[str, Callable] | None = None) -> dict[str, float]:
    """One DPO step on a batch of pairs (``chosen`` and ``rejected`` batches of the same pairs, in order), with the
    cached reference log-probabilities ``(chosen, rejected)``. With ``nll_weight``, the chosen responses' mean
    negative log-likelihood per token is added to the loss, times that weight (SFT on the chosen: it keeps them
    likely while DPO separates them from the rejected; Pang et al. 2024, Llama 3). Returns the DPO loss, the NLL,
    the mean rewards, the margin and the accuracy. ``pieces``: see :data:`PIECES`."""
    policy_chosen = batch_logprobs(model, chosen, pieces)
    policy_rejected = batch_logprobs(model, rejected, pieces)
    loss, reward_chosen, reward_rejected = _pieces(pieces)["dpo_loss"](policy_chosen, policy_rejected, reference[0],
                                                                       reference[1], beta)
    nll = -(policy_chosen / labelled_counts(chosen)).mean()
    optimizer.zero_grad(set_to_none=True)
    (loss + nll_weight * nll if nll_weight else loss).backward()
    clip_gradients([p for group in optimizer.param_groups for p in group["params"]], max_norm)
    optimizer.step()
    margin = reward_chosen - reward_rejected
    return {"loss": loss.item(), "nll": nll.item(), "chosen": reward_chosen.mean().item(),
            "rejected": reward_rejected.mean().item(),
            "margin": margin.mean().item(), "accuracy": (margin > 0).float().mean().item()}


# ------------------------------------------------------------------------------------------ replies

@torch.no_grad()
def replies(model: nn.Module, tokenizer, conversations: Sequence[Sequence[dict]], max_new_tokens: int = 40,
            batch_size: int = 16) -> list[str]:
    """The greedy reply to each conversation (its chat-template prompt, ending with the assistant's header), in
    left-padded batches of similar length with the KV cache (:func:`tfs.generate.generate`), cut at
    ``<|im_end|>``. In the conversations' order."""
    from tfs.generate import generate, left_pad

    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    prompts = [tokenizer(tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"] for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, mask = left_pad([prompts[i] for i in chunk], end)
        new = generate(model, ids, max_new_tokens, attention_mask=mask, eos_token_id=end)[:, ids.shape[1]:]
        for i, row in zip(chunk, new.tolist()):
            out[i] = tokenizer.decode(row[:row.index(end)] if end in row else row)
    return out


# ------------------------------------------------------------------------------------------ the loops

def _optimizer(parameters: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameters, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)


def _set_lr(optimizer: torch.optim.Optimizer, step: int, lr: float, warmup: int, steps: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr_schedule(step, lr, warmup, steps, min_lr=lr / 10)


def train_sft(model: nn.Module, batches: Callable[[int], dict], steps: int, lr: float, warmup: int = 10,
              weight_decay: float = 0.0, max_norm: float = 1.0,
              callback: Callable[[int, dict], None] | None = None) -> dict[str, list]:
    """``steps`` steps of SFT on the trainable parameters of ``model`` (its LoRA adapters): AdamW, linear warm-up
    and cosine decay to a tenth (:func:`tfs.train.lr_schedule`), clipping (:func:`tfs.train.clip_gradients`), the
    loss over labelled tokens with the head computed there only. ``batches(step)`` gives each step's packed batch.
    Returns ``{"loss", "tokens", "labelled", "seconds", "cpu_seconds"}`` per step (wall and this process's CPU time)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(parameters, lr, weight_decay)
    history: dict[str, list] = {"loss": [], "tokens": [], "labelled": [], "seconds": [], "cpu_seconds": []}
    model.train()
    for step in range(steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        _set_lr(optimizer, step, lr, warmup, steps)
        batch = batches(step)
        logits, labels = labelled_logits(model, batch)
        loss = F.cross_entropy(_wide(logits), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(parameters, max_norm)
        optimizer.step()
        history["loss"].append(loss.item())
        history["tokens"].append(int((batch["segment_ids"] >= 0).sum()))
        history["labelled"].append(len(labels))
        history["seconds"].append(time.perf_counter() - started)
        history["cpu_seconds"].append(time.process_time() - cpu_started)
        if callback is not None:
            callback(step, history)
    model.eval()
    return history


def train_dpo(model: nn.Module, pairs: Callable[[int], tuple[dict, dict, tuple[torch.Tensor, torch.Tensor]]],
              steps: int, lr: float, beta: float, warmup: int = 10, weight_decay: float = 0.0, max_norm: float = 1.0,
              nll_weight: float = 0.0, callback: Callable[[int, dict], None] | None = None) -> dict[str, list]:
    """``steps`` DPO steps: ``pairs(step)`` gives ``(chosen batch, rejected batch, (reference chosen, reference
    rejected))``; the optimiser and schedule are :func:`train_sft`'s; ``nll_weight`` as :func:`dpo_step`. Returns the
    per-step history of :func:`dpo_step`'s values, ``seconds`` and ``cpu_seconds``."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(parameters, lr, weight_decay)
    history: dict[str, list] = {key: [] for key in ("loss", "nll", "chosen", "rejected", "margin", "accuracy",
                                                    "seconds", "cpu_seconds")}
    model.train()
    for step in range(steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        _set_lr(optimizer, step, lr, warmup, steps)
        chosen, rejected, reference = pairs(step)
        values = dpo_step(model, chosen, rejected, reference, optimizer, beta, max_norm, nll_weight)
        for key, value in values.items():
            history[key].append(value)
        history["seconds"].append(time.perf_counter() - started)
        history["cpu_seconds"].append(time.process_time() - cpu_started)
        if callback is not None:
            callback(step, history)
    model.eval()
    return history


def training_flops(n_matmul: int, n_adapter: int, tokens: int, lora: bool = True) -> float:
    """FLOPs (2 per multiply-add) of one training step over ``tokens`` tokens, by the usual count: ``n_matmul`` weights
    used in matrix products (the output head included, the embedding lookup not), forward ``2 n`` per token,
    backward ``2 n`` for the activations' gradients and ``2 n`` for the weights' (full fine-tuning: ``6 n``); with
    LoRA the frozen weights get no gradient (``4 n``), the adapters cost ``6 n_adapter``. Attention's
    length-dependent part and the head at unlabelled positions are left out: an estimate."""
    per_token = 4 * n_matmul + 6 * n_adapter if lora else 6 * n_matmul
    return float(tokens) * per_token
