"""Chapter 13 (SFT and DPO with LoRA) judges. Oracles: ``transformers``' assistant-token mask (SmolLM2's template
with generation markers), ``F.cross_entropy`` and ``torch.log_softmax`` written out per position, the package's
LLaMA run example by example (unpacked), a training step composed here from ``torch`` (``clip_grad_norm_``,
``AdamW``), ``W + (alpha / r) B A``, and the DPO formula of Rafailov et al. (2023).

Inputs are rebuilt from the collector module's seeded generators; each failure names the likely mistake.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from tfs.grader.collectors import ch13 as c
from tfs.grader.judging import JudgeFailure, expect
from tfs.teaching import probes_align as pa


def _is_tensor(value, shape=None) -> bool:
    return isinstance(value, torch.Tensor) and (shape is None or tuple(value.shape) == tuple(shape))


def _close(received, expected: torch.Tensor, tol: float) -> bool:
    return _is_tensor(received, expected.shape) and bool(((received.double() - expected.double()).abs() <= tol).all())


def _number(value) -> bool:
    return isinstance(value, float) and value == value


# ------------------------------------------------------------------------------------------ chat data

def _check_examples(data, conversations, name: str) -> None:
    expect(isinstance(data, list) and len(data) == len(conversations), name, "expected one result per conversation.")
    tokenizer = pa.chat_tokenizer()
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for number, (item, messages) in enumerate(zip(data, conversations), 1):
        where = f"conversation {number} ({' + '.join(m['role'] for m in messages)})"
        expect("error" not in item, name, f"{where}: your function raised {item.get('error')}.")
        ids, mask = pa.assistant_mask(tokenizer, messages)
        got_ids, labels = item.get("input_ids"), item.get("labels")
        expect(item.get("messages_unchanged") is True, name, f"{where}: chat_example changed the messages it was "
               "given, in place (a reply's text, a role, a message added or removed): leave the caller's conversation as it is "
               "(the same data set is read again at every epoch); build new strings instead.")
        expect(_is_tensor(got_ids) and got_ids.dim() == 1, name, f"{where}: input_ids must be a 1-D tensor.")
        expect(_is_tensor(labels, got_ids.shape), name, f"{where}: labels must have input_ids' shape {tuple(got_ids.shape)}.")
        expect(got_ids.dtype == torch.int64 and labels.dtype == torch.int64, name,
               f"{where}: input_ids and labels must be int64 (torch.long); received {got_ids.dtype}, {labels.dtype}.")
        opened = torch.tensor(tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
        expect(not torch.equal(got_ids, torch.cat([ids, opened])), name, f"{where}: input_ids end with an opened "
               "assistant turn (<|im_start|>assistant\\n): add_generation_prompt=True is for generation, where the "
               "model writes the reply; a training example is the whole conversation (add_generation_prompt=False).")
        expect(torch.equal(got_ids, ids), name, f"{where}: input_ids differ from the chat template's tokens "
               f"({len(got_ids)} tokens, expected {len(ids)}).",
               "tokenizer.apply_chat_template(messages, tokenize=False), then tokenize that text "
               "(a conversation without a system message gets SmolLM2's default one).")
        expected = pa.shifted_labels(ids, mask)
        if torch.equal(labels, expected):
            continue
        for mistake, wrong in {**pa.label_mistakes(ids, mask, end_id, labels), **_newline_mistake(ids, mask, end_id)}.items():
            if torch.equal(labels, wrong):
                raise JudgeFailure(f"✗ {name}: {where}: {mistake}.")
        wrong = int((labels != expected).sum())
        first = int((labels != expected).nonzero()[0])
        raise JudgeFailure(f"✗ {name}: {where}: {wrong} labels differ from transformers' assistant mask, the first at "
                           f"position {first} (token {tokenizer.decode([int(ids[min(first + 1, len(ids) - 1)])])!r} follows it).")


def _newline_mistake(ids: torch.Tensor, mask: torch.Tensor, end_id: int) -> dict[str, torch.Tensor]:
    """The newline the template writes after each reply's <|im_end|> trained too."""
    after = torch.zeros_like(mask, dtype=torch.bool)
    after[1:] = mask[:-1].bool() & (ids[:-1] == end_id)
    return {"the newline after the reply's <|im_end|> trained too: it is the template's, not the reply's; train the "
            "reply's text and its <|im_end|> only": pa.shifted_labels(ids, mask.bool() | after)}


def chat_labels(data) -> None:
    _check_examples(data, c.SINGLE_TURN, "chat_example")


def chat_turns(data) -> None:
    _check_examples(data, c.MULTI_TURN, "chat_example")


# ------------------------------------------------------------------------------------------ packing

def _rows(fits_exactly: bool = True) -> list[list[dict]]:
    """Greedy, in order: a row is closed when the next example does not fit in what is left of it (or, with
    ``fits_exactly=False``, the off-by-one: when it would fill the row exactly, too)."""
    rows, used = [[]], 0
    for example in c.pack_inputs():
        length = len(example["input_ids"])
        if used + length > c.BLOCK or (not fits_exactly and used + length == c.BLOCK):
            rows.append([])
            used = 0
        rows[-1].append(example)
        used += length
    return rows


def _first_fit_rows() -> int:
    """How many rows first-fit packing makes (an example goes back into the first earlier row with room)."""
    rows = []
    for example in c.pack_inputs():
        length = len(example["input_ids"])
        for i, used in enumerate(rows):
            if used + length <= c.BLOCK:
                rows[i] += length
                break
        else:
            rows.append(length)
    return len(rows)


def _expected_pack() -> dict[str, torch.Tensor]:
    rows = _rows()
    out = {"input_ids": torch.full((len(rows), c.BLOCK), c.PAD_ID), "labels": torch.full((len(rows), c.BLOCK), -100),
           "position_ids": torch.zeros(len(rows), c.BLOCK, dtype=torch.long),
           "segment_ids": torch.full((len(rows), c.BLOCK), -1)}
    for r, members in enumerate(rows):
        at = 0
        for s, example in enumerate(members):
            n = len(example["input_ids"])
            out["input_ids"][r, at:at + n] = example["input_ids"]
            out["labels"][r, at:at + n] = example["labels"]
            out["position_ids"][r, at:at + n] = torch.arange(n)
            out["segment_ids"][r, at:at + n] = s
            at += n
    return out


def _check_pack(packed, name: str) -> dict[str, torch.Tensor]:
    expected = _expected_pack()
    expect(isinstance(packed, dict), name, "pack_examples must return a dict with input_ids, labels, position_ids and "
           "segment_ids.")
    for key in expected:
        expect(_is_tensor(packed.get(key)), name, f"the result has no tensor {key!r}.")
    shape = tuple(expected["input_ids"].shape)
    expect(len(packed["input_ids"]) != len(_rows(fits_exactly=False)), name, f"{len(packed['input_ids'])} rows, not "
           f"{shape[0]}: an example that fills what is left of a row exactly still fits (used + length == "
           "block_size); start a new row only when used + length > block_size.")
    expect(len(packed["input_ids"]) == shape[0] or len(packed["input_ids"]) != _first_fit_rows(), name,
           f"{len(packed['input_ids'])} rows, not {shape[0]}: an example was put back into an earlier row that had room "
           "(first-fit packing). Lay the examples in order: when the next one does not fit in what is left of the "
           "current row, start a new row, and never return to an earlier one.")
    for key in expected:
        expect(packed[key].dtype == torch.int64, name, f"{key} is {packed[key].dtype}: every tensor of the packed "
               "batch must be int64 (torch.long), as ids and positions index embeddings (torch.zeros(shape) is float; "
               "give dtype=torch.long).")
        expect(tuple(packed[key].shape) == shape, name, f"{key} has shape {tuple(packed[key].shape)}; expected "
               f"{shape}: {shape[0]} rows of block_size={c.BLOCK} (examples of {list(c.PACK_LENGTHS)} tokens, in "
               "order, a new row when the next one does not fit; none is split).")
    real = expected["segment_ids"] >= 0
    expect(torch.equal(packed["input_ids"][real].long(), expected["input_ids"][real]), name,
           "the examples' tokens are not where they belong: lay them end to end, in order, from the start of each row.")
    expect(torch.equal(packed["input_ids"].long(), expected["input_ids"]), name,
           f"padding must be pad_id ({c.PAD_ID}), at the end of each row.")
    if not torch.equal(packed["labels"].long(), expected["labels"]):
        if torch.equal(packed["labels"][real].long(), expected["labels"][real]):
            raise JudgeFailure(f"✗ {name}: padding positions must have label -100; otherwise the padding is counted in "
                               "the loss (the model is taught to predict padding).")
        raise JudgeFailure(f"✗ {name}: labels must be each example's own labels, copied as they are (-100 on padding).")
    if not torch.equal(packed["position_ids"].long(), expected["position_ids"]):
        running = torch.arange(c.BLOCK).expand(shape)
        if torch.equal(packed["position_ids"][real].long(), running[real]):
            raise JudgeFailure(f"✗ {name}: position ids run on across the examples of a row; each example starts "
                               "again at position 0, as it would alone.")
        raise JudgeFailure(f"✗ {name}: position_ids must be 0, 1, ... from each example's first token (0 on padding).")
    if not torch.equal(packed["segment_ids"].long(), expected["segment_ids"]):
        expect(not torch.equal(packed["segment_ids"][real].long(), expected["segment_ids"][real]), name,
               "padding must have segment id -1: a segment of its own, that no example's token may attend to.")
        got = packed["segment_ids"].long()
        if torch.equal(got[real], expected["segment_ids"][real] + 1):
            raise JudgeFailure(f"✗ {name}: segment ids start at 1: number the examples of each row from 0 "
                               "(0, 1, 2, ...; -1 on padding).")
        if torch.equal(got[:1], expected["segment_ids"][:1]) and bool((got[1:][real[1:]] > expected["segment_ids"][1:][real[1:]]).all()):
            raise JudgeFailure(f"✗ {name}: segment ids run on across rows: number each row's examples from 0 again "
                               "(0, 1, 2, ... per row; -1 on padding).")
        raise JudgeFailure(f"✗ {name}: segment_ids must number the examples of each row 0, 1, 2, ... and be -1 on "
                           "padding.")
    return expected


def pack_layout(data) -> None:
    name = "pack_examples"
    expect(isinstance(data, dict), name, "expected the packed batch.")
    _check_pack(data.get("packed"), name)
    expect(data.get("examples_unchanged") is True, name, "pack_examples changed the list of examples it was given "
           "(emptied it with pop, or changed an example): leave the caller's examples as they are (the same data set "
           "is packed again at every epoch); read them in a for loop.")
    expect(isinstance(data.get("too_long"), str) and data["too_long"].startswith("ValueError"), name,
           f"an example longer than block_size={c.BLOCK} must raise ValueError (it cannot be packed without splitting "
           f"it); received {data.get('too_long')!r}.")


def _losses(model, ids, labels, positions, mask) -> torch.Tensor:
    """Summed cross-entropy per row of a packed batch, with the package's LLaMA and ``mask``."""
    from tfs.align import packed_logits

    with torch.no_grad():
        logits = packed_logits(model, ids, positions, mask)
    ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")   # (rows, T)
    return ce.sum(1)


def pack_mask(data) -> None:
    name = "packing_mask"
    expect(isinstance(data, dict), name, "expected the packed batch and its mask.")
    expected = _check_pack(data.get("packed"), "pack_examples")
    mask = data.get("mask")
    rows, T = expected["input_ids"].shape
    expect(_is_tensor(mask) and mask.dtype == torch.bool, name, "the mask must be a bool tensor (True = may attend).")
    expect(tuple(mask.shape) == (rows, 1, T, T), name, f"the mask must have shape (rows, 1, T, T) = "
           f"{(rows, 1, T, T)} (one per row, broadcast over the heads); received {tuple(mask.shape)}.")
    expect(data.get("segments_unchanged") is True, name, "packing_mask changed segment_ids in place: leave its input as it is.")
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    same = expected["segment_ids"][:, :, None] == expected["segment_ids"][:, None, :]
    if not torch.equal(mask[:, 0] & causal, same & causal):
        expect(bool((mask[:, 0] & causal).any(-1).all()), name, "a query may attend to no key at all: padding "
               "(segment id -1) must see the padding (its segment ids are equal), or its attention row is empty "
               "(a softmax over nothing is NaN).")
        if torch.equal(mask[:, 0] & causal, causal.expand(rows, T, T)):
            raise JudgeFailure(f"✗ {name}: every token may attend to every earlier token of its row, so a chat reads the "
                               "chats packed before it, and the packed rows' losses differ from each chat's alone. "
                               "Allow only keys of the same segment.")
        raise JudgeFailure(f"✗ {name}: the mask must allow exactly the keys of the query's own segment "
                           "(segment_ids equal); the model adds the causal part.")
    model = c.tiny_llama(4)
    packed = _losses(model, expected["input_ids"], expected["labels"], expected["position_ids"], mask)
    alone = []
    for example in c.pack_inputs():   # each example by itself, no packing
        with torch.no_grad():
            logits, _ = model(example["input_ids"][None])
        alone.append(F.cross_entropy(logits[0], example["labels"], ignore_index=-100, reduction="sum"))
    expect(abs(packed.sum().item() - torch.stack(alone).sum().item()) < 1e-9, name,
           "the packed rows' summed loss differs from the examples' losses computed one by one.")
    one = data.get("one_row")
    expect(_is_tensor(one, (1, 1, T, T)), name, f"a batch of one row, segment_ids (1, {T}), gave a mask of shape "
           f"{tuple(one.shape) if _is_tensor(one) else type(one).__name__}, not (1, 1, {T}, {T}): a squeeze() (or "
           "indexing [0]) dropped the rows axis; keep every axis, whatever the number of rows.")
    expect(one.dtype == torch.bool and torch.equal(one[:, 0] & causal, mask[1:2, 0] & causal), name,
           "the mask of a batch of one row differs from that row's mask in the whole batch.")


# ------------------------------------------------------------------------------------------ SFT loss

def sft_loss(data) -> None:
    name = "sft_loss"
    expect(isinstance(data, dict) and _number(data.get("loss")), name, "the loss must be a number (a 0-d tensor).")
    logits, labels = c.loss_inputs()
    expected = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=-100).item()
    value = data["loss"]
    if abs(value - expected) > 1e-9:
        per_position = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1).clamp(min=0), reduction="none")
        scored = labels.reshape(-1) != -100
        masked = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=-100, reduction="none")
        rows = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
        mistakes = {
            "the sum of the labelled positions' losses divided by ALL positions (prompt and padding counted in the "
            "denominator): divide by the number of labelled tokens": masked.sum().item() / labels.numel(),
            "positions labelled -100 counted as class 0 (padding and prompt counted): ignore them "
            "(ignore_index=-100)": per_position.mean().item(),
            "a sum over the labelled tokens; the loss is their mean": masked.sum().item(),
            "a mean per sequence, then over sequences: long and short replies weigh the same; average over all "
            "labelled tokens of the batch": torch.stack([rows[i].sum() / (labels[i] != -100).sum()
                                                         for i in range(2)]).mean().item(),
            "logits shifted again: the labels are already shifted (labels[t] is the token after t)":
                F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100).item(),
        }
        for mistake, wrong in mistakes.items():
            if abs(value - wrong) <= 1e-9:
                raise JudgeFailure(f"✗ {name}: {mistake}.")
        raise JudgeFailure(f"✗ {name}: received {value:.6f}, not the mean cross-entropy over the "
                           f"{int(scored.sum())} labelled positions.")
    grad = data.get("grad")
    expect(_is_tensor(grad, logits.shape) and bool(grad.abs().sum() > 0), name,
           "no gradient reached the logits: return a tensor of the graph (no .item(), no float()).")
    expect(bool((grad[labels == -100] == 0).all()), name, "positions labelled -100 got a gradient: they must not count.")
    expect(data.get("is_tensor") is True, name, "return the loss as a tensor (loss.backward() is called on it).")
    expect(data.get("inputs_unchanged") is True, name, "sft_loss changed the labels (or logits) it was given in place "
           "(labels[labels == -100] = 0, clamp_, ...): the caller's batch is read again at the next step; work on a "
           "copy (labels.clamp(min=0) makes a new tensor) or use ignore_index=-100.")
    flat = data.get("flat")
    expect(_number(flat) and abs(flat - expected) <= 1e-9, name, "logits of shape (N, vocab) with labels (N,) "
           + (f"raised {flat}" if isinstance(flat, str) else "gave another value") + ": the exercise takes logits "
           "(..., vocab) with any number of leading dimensions.",
           "logits.reshape(-1, logits.shape[-1]) and labels.reshape(-1), not an unpacking B, T, V = logits.shape.")
    strided = data.get("strided")
    expect(_number(strided) and abs(strided - expected) <= 1e-9, name, "logits and labels that are not contiguous in "
           "memory (a slice such as logits[:, :-1], or a transpose) " + (f"raised {strided}" if isinstance(strided, str)
           else "gave another value") + ": .view() needs contiguous memory; .reshape() works on any tensor.")
    expect(isinstance(data.get("empty"), str) and data["empty"].startswith("ValueError"), name,
           f"a batch whose labels are all -100 must raise ValueError (a mean of nothing is NaN); received "
           f"{data.get('empty')!r}.")


# ------------------------------------------------------------------------------------------ LoRA and the step

def _lora_names(model) -> list[str]:
    names = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("q", "k", "v", "out", "gate", "up", "down"):
            names += [f"{name}.A", f"{name}.B"]
    return sorted(names)


def lora_trainable(data) -> None:
    name = "add_lora_adapters"
    expect(isinstance(data, dict), name, "expected the trainable parameters' names.")
    expected = _lora_names(c.tiny_llama(1))
    trainable = data.get("trainable") or []
    base = [n for n in trainable if not n.endswith((".A", ".B"))]
    expect(not base, name, f"base weights would train: {base[:4]} still require gradients. Freeze the whole model "
           "(model.requires_grad_(False)) before wrapping: only the adapters' A and B may train.")
    expect(not any(n.startswith("lm_head") for n in trainable), name, "the output head got an adapter: only the "
           "attention (q, k, v, out) and MLP (gate, up, down) projections of the blocks do.")
    missing = sorted(set(expected) - set(trainable))
    expect(not missing, name, f"{len(missing)} adapter matrices are missing, e.g. {missing[:3]}: wrap every q, k, v, "
           "out, gate, up and down projection of every block.")
    expect(sorted(trainable) == expected, name, f"unexpected trainable parameters: {sorted(set(trainable) - set(expected))[:4]}.")
    expect(sorted(data.get("returned") or []) == expected, name, "return exactly the parameters left to train (each "
           "adapter's A and B), the list the optimiser gets.")
    _check_adapters(data.get("adapters"), name)
    targeted = data.get("targeted")
    wanted = [n for n in expected if n.split(".")[-2] in c.TARGETS]
    expect(isinstance(targeted, list) and sorted(targeted) == wanted, name, f"called with targets={c.TARGETS}, the "
           f"trainable parameters were {sorted(targeted)[:4] if isinstance(targeted, list) else targeted!r}"
           f"{'...' if isinstance(targeted, list) and len(targeted) > 4 else ''}: wrap only the modules whose names "
           "end with one of the targets argument's names (not a fixed list).")


def _check_adapters(adapters, name: str) -> None:
    """Each wrapped layer has A (r, in) and B (out, r) with the r asked for, and adds (alpha / r) x Aᵀ Bᵀ."""
    expect(isinstance(adapters, dict) and adapters, name, "no wrapped layer (with A, B and base) was found.")
    for module, item in sorted(adapters.items()):
        base = c.tiny_llama(1).get_submodule(module)
        r_in, r_out = (c.LORA_R, base.in_features), (base.out_features, c.LORA_R)
        shape_a, shape_b = (tuple(item.get(k) or ()) if isinstance(item, dict) else () for k in "AB")
        if shape_a != r_in or shape_b != r_out:
            raise JudgeFailure(f"✗ {name}: called with r={c.LORA_R}, {module} has A {shape_a} and B "
                               f"{shape_b}, not A (r, in) = {r_in} and B (out, r) = {r_out}: pass r (and "
                               "alpha) on to each LoRALinear(module, r, alpha); LoRALinear(module) takes its default "
                               "rank 8 and alpha 16.")
        A, B = c.adapter_values(module, base.in_features, base.out_features)
        x = c.seeded(f"{module}.x", (3, base.in_features))
        product = x @ A.T @ B.T
        added = item.get("added") if isinstance(item, dict) else None
        if _close(added, c.LORA_ALPHA / c.LORA_R * product, 1e-10):
            continue
        for alpha, mistake in ((16.0, "alpha is not passed on: LoRALinear's default alpha 16 was used; "
                                      "LoRALinear(module, r, alpha)"),
                               (c.LORA_R, "alpha is not passed on (alpha = r, so the scale alpha / r is 1); "
                                          "LoRALinear(module, r, alpha)")):
            if _close(added, alpha / c.LORA_R * product, 1e-10):
                raise JudgeFailure(f"✗ {name}: called with alpha={c.LORA_ALPHA}: {module}: {mistake}.")
        raise JudgeFailure(f"✗ {name}: {module} does not add (alpha / r) · x Aᵀ Bᵀ to its base layer's output "
                           f"(alpha={c.LORA_ALPHA}, r={c.LORA_R}): wrap it in LoRALinear(module, r, alpha).")


def _oracle_steps(accumulate: bool = False, clip: bool = True, masked: bool = True, shifted: bool = False,
                  max_norm: float = c.STEP_NORM) -> tuple[list[float], dict]:
    """The collector's three steps, composed here: the package's LLaMA and LoRALinear, cross-entropy over labelled
    tokens, ``clip_grad_norm_``, ``AdamW``; the keywords make the usual wrong versions."""
    from tfs.align import packed_logits, packing_mask
    from tfs.compress import add_lora

    model = c.tiny_llama(2)
    add_lora(model, ("q", "k", "v", "out", "gate", "up", "down"), c.LORA_R, c.LORA_ALPHA)
    with torch.no_grad():
        for name, module in model.named_modules():
            if hasattr(module, "A") and hasattr(module, "base"):
                A, B = c.adapter_values(name, module.base.in_features, module.base.out_features)
                module.A.copy_(A)
                module.B.copy_(B)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=c.STEP_LR, weight_decay=0.0)
    batch = c.step_batch()
    losses = []
    for _ in range(c.STEPS):
        mask = packing_mask(batch["segment_ids"]) if masked else None
        logits = packed_logits(model, batch["input_ids"], batch["position_ids"], mask)
        labels = batch["labels"]
        if shifted:
            logits, labels = logits[:, :-1], labels[:, 1:]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        if not accumulate:
            optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        optimizer.step()
        losses.append(loss.item())
    return losses, model.state_dict()


def sft_step(data) -> None:
    name = "sft_step"
    expect(isinstance(data, dict) and isinstance(data.get("losses"), list) and len(data["losses"]) == c.STEPS, name,
           f"expected {c.STEPS} losses (one per call).")
    losses, state = data["losses"], data.get("state") or {}
    model = c.tiny_llama(2)
    wanted = {n: ((c.LORA_R, m.in_features), (m.out_features, c.LORA_R)) for n, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) and n.split(".")[-1] in ("q", "k", "v", "out", "gate", "up", "down")}
    ranks = {n: tuple(tuple(s) for s in shapes) for n, shapes in (data.get("ranks") or {}).items()}
    expect(all(ranks.get(n, v) == v for n, v in wanted.items()), "add_lora_adapters", f"called with r={c.LORA_R}, "
           "the adapters' A and B do not have rank r: pass r and alpha on to LoRALinear(module, r, alpha).")
    expect(data.get("adapted") == _lora_names(c.tiny_llama(2)), "add_lora_adapters", "the model it prepared for "
           "sft_step does not train exactly every q, k, v, out, gate, up and down projection's A and B (its own test "
           "says what differs), so the steps cannot be compared with the expected ones.")
    expect(all(_number(x) for x in losses), name, "each call must return the loss as a finite float (loss.item()).")
    expect(data.get("floats") is True, name, "return the loss as a Python float (loss.item()), not a tensor: a tensor "
           "kept in a list of losses keeps each step's whole graph alive.")
    base = c.tiny_llama(2).state_dict()
    for key, value in base.items():
        wrapped = key.replace(".weight", ".base.weight") if f"{key[:-len('.weight')]}.A" in state else key
        got = state.get(wrapped, state.get(key))
        expect(_is_tensor(got, value.shape), name, f"the model has no weight {key} after training.")
        expect(torch.equal(got, value), name, f"the base weight {key} changed: base weights were trained. Only the "
               "adapters may change (the frozen base stays bit-identical).")
    expected_losses, expected_state = _oracle_steps()
    if all(abs(a - b) <= 1e-9 * max(1, abs(b)) for a, b in zip(losses, expected_losses)):
        for key, value in expected_state.items():
            expect(_close(state.get(key), value, 1e-8), name, f"after {c.STEPS} steps {key} differs from the expected "
                   "update.")
        return
    for mistake, wrong in {"the logits and labels were shifted again: the packed batch's labels are already shifted "
                           "(labels[t] is the token after t); pass logits and batch['labels'] to sft_loss as they are":
                               _oracle_steps(shifted=True)[0][0]}.items():
        expect(abs(losses[0] - wrong) > 1e-9 * max(1, abs(wrong)), name, mistake)
    leaky = _oracle_steps(masked=False)[0][0]
    expect(abs(losses[0] - leaky) > 1e-9 * max(1, abs(leaky)), name, "the logits were computed without the packing "
           "mask, so each chat reads the chats packed before it in its row: pass packing_mask(segment_ids) to "
           "packed_logits.")
    expect(abs(losses[0] - expected_losses[0]) <= 1e-9 * max(1, abs(expected_losses[0])), name,
           f"the first loss ({losses[0]:.6f}) is not the expected one: compute the logits with the "
           "block-diagonal mask (packed_logits(model, input_ids, position_ids, packing_mask(segment_ids))) and the "
           "mean cross-entropy over labelled tokens (sft_loss).")
    variants = {"the gradients are not zeroed before backward(): they add up across steps":
                    _oracle_steps(accumulate=True)[0],
                "the gradients are not clipped to max_norm before the step": _oracle_steps(clip=False)[0],
                f"the gradients are clipped to 1.0, not to the max_norm argument ({c.STEP_NORM} here)":
                    _oracle_steps(max_norm=1.0)[0]}
    for mistake, wrong in variants.items():
        if all(abs(a - b) <= 1e-9 * max(1, abs(b)) for a, b in zip(losses, wrong)):
            raise JudgeFailure(f"✗ {name}: {mistake}.")
    expect(not all(abs(x - losses[0]) <= 1e-12 * max(1, abs(losses[0])) for x in losses), name, "the loss is the same "
           "at every step: the adapters never moved. Zero the gradients BEFORE backward() (zeroed after it, the step "
           "has none), and call optimizer.step() after clipping.")
    raise JudgeFailure(f"✗ {name}: the first loss is right but the later ones differ from the expected training "
                       "steps: zero the gradients, backward, clip to max_norm, step.")


# ------------------------------------------------------------------------------------------ merging

def merge_adapter(data) -> None:
    name = "merge_adapter"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        shapes = (" A weight is (out, in) and its update B @ A is (out, r) @ (r, in), the same shape; transposed "
                  "(Aᵀ Bᵀ) it is (in, out).") if "size" in error or "shape" in error else (
                  " Change the weights inside `with torch.no_grad():`: autograd refuses an in-place change of a "
                  "parameter that requires grad.") if "leaf Variable" in error or "in-place" in error else ""
        raise JudgeFailure(f"✗ {name}: your function raised {error.rstrip('.')}.{shapes}")
    expect(isinstance(data, dict) and isinstance(data.get("state"), dict), name, "expected the merged model's weights.")
    model = c.tiny_llama(3)
    shapes = {n: (m.in_features, m.out_features) for n, m in model.named_modules() if n in c.MERGED}
    adapter = c.merge_adapter_values(shapes)
    state = data["state"]
    for key, weight in model.state_dict().items():
        module = key[:-len(".weight")]
        got = state.get(key)
        expect(_is_tensor(got, weight.shape), name, f"{key} is missing or changed shape (expected {tuple(weight.shape)}).")
        if module not in c.MERGED:
            expect(torch.equal(got, weight), name, f"{key} changed, but the adapter has no matrices for {module}.")
            continue
        A, B = adapter[f"{module}.A"], adapter[f"{module}.B"]
        scale = c.LORA_ALPHA / A.shape[0]
        if _close(got, weight + scale * B @ A, 1e-10):
            continue
        mistakes = {"alpha // r, a floor division (6 // 4 = 1, not 1.5): the scale is alpha / r":   # first: at r = 4
                        weight + (c.LORA_ALPHA // A.shape[0]) * B @ A if c.LORA_ALPHA % A.shape[0] else None,
                    "the update is scaled by r / alpha; LoRA scales it by alpha / r": weight + B @ A / scale,
                    "the update is not scaled: add (alpha / r) B A": weight + B @ A,
                    "the update is scaled by alpha, not alpha / r": weight + c.LORA_ALPHA * B @ A,
                    "r is taken as A's columns (its input size); r is A's number of rows: A is (r, in)":
                        weight + (c.LORA_ALPHA / A.shape[1]) * B @ A,
                    "the update is transposed: W (out, in) gets B A, (out, r) @ (r, in)": weight + scale * (B @ A).T
                    if weight.shape[0] == weight.shape[1] else None,
                    "the weight is replaced by the update: W + (alpha / r) B A keeps W": scale * B @ A,
                    "r is fixed at 8 (add_lora_adapters' default): r is each adapter's own rank, A.shape[0]":
                        weight + c.LORA_ALPHA / 8 * B @ A,
                    f"one rank for the whole adapter: {module}'s A has {A.shape[0]} rows, so its own r is "
                    f"{A.shape[0]} (ranks may differ between modules; r = each module's A.shape[0])":
                        weight + c.LORA_ALPHA / c.LORA_R * B @ A if A.shape[0] != c.LORA_R else None,
                    "the weight did not change: add the update in place (weight += ..., or weight.copy_(...)); "
                    "weight = weight + ... only binds a new tensor to a local name": weight}
        for mistake, wrong in mistakes.items():
            if wrong is not None and _close(got, wrong, 1e-10):
                raise JudgeFailure(f"✗ {name}: {module}: {mistake}.")
        raise JudgeFailure(f"✗ {name}: {module}'s weight differs from W + (alpha / r) B A.")
    expect(data.get("returned_model") is True, name, "return the model (merged in place).")
    expect(data.get("adapter_unchanged") is True, name, "merge_adapter changed the adapter it was given (A or B "
           "scaled in place, or a key removed): leave the caller's adapter as it is (it may be merged again, or "
           "saved); compute (alpha / r) * (B @ A) as a new tensor.")


# ------------------------------------------------------------------------------------------ log-probabilities

def sequence_logprobs(data) -> None:
    name = "sequence_logprobs"
    values = data.get("values") if isinstance(data, dict) else None
    logits, labels = c.logprob_inputs()
    expected = torch.zeros(3, dtype=torch.float64)
    for row in range(3):
        for t in range(7):
            if labels[row, t] != -100:
                expected[row] += torch.log_softmax(logits[row, t], -1)[labels[row, t]]
    expect(_is_tensor(values, (3,)), name, f"expected one log-probability per sequence, shape (3,); received "
           f"{tuple(values.shape) if _is_tensor(values) else type(values).__name__}.",
           "sum over the positions (dim=-1) after picking each label's log-probability.")
    if _close(values, expected, 1e-8):
        expect(data.get("inputs_unchanged") is True, name, "sequence_logprobs changed the labels (or logits) it was "
               "given in place (labels[labels == -100] = 0, ...): the caller reads them again (the reference model's "
               "pass uses the same labels); work on a copy (labels.clamp(min=0) makes a new tensor).")
        return
    expect(not bool(torch.isinf(values).any()), name, "a log-probability is -inf where the exact value is finite: "
           "log(softmax(...)) rounds a very small probability to 0 first; log_softmax computes log p without "
           "forming p (stable).")
    log_probs = torch.log_softmax(logits, -1)
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    scored = labels != -100
    counts = scored.sum(1)
    again = log_probs[:, :-1].gather(-1, labels[:, 1:].clamp(min=0)[..., None])[..., 0] * scored[:, 1:]
    mistakes = {"a mean over the response's tokens; a sequence's log-probability is their SUM (the log of the product "
                "of the tokens' probabilities)": expected / counts,
                "a mean over all positions (prompt and padding included); a sequence's log-probability is the SUM "
                "over its response's tokens": expected / labels.shape[1],
                "positions labelled -100 were scored too (as token 0): only the response's tokens count": picked.sum(1),
                "probabilities were summed, not log-probabilities": (picked.exp() * scored).sum(1),
                "a label of token id 0 was not scored: only -100 marks a position that is not scored (labels != -100, "
                "not labels > 0)": (picked * (labels > 0)).sum(1),
                "the logits were shifted again: the labels are already shifted (labels[t] is the token after t)":
                    again.sum(1),
                "position 0 was not scored: every labelled position counts, the first one too (a response may start "
                "at position 0)": (picked * scored)[:, 1:].sum(1),
                "log_softmax over the wrong dimension: normalise over the vocabulary (dim=-1)":
                    (torch.log_softmax(logits, 1).gather(-1, labels.clamp(min=0)[..., None])[..., 0] * scored).sum(1)}
    for mistake, wrong in mistakes.items():
        if _close(values, wrong, 1e-8):
            raise JudgeFailure(f"✗ {name}: {mistake}.")
    raise JudgeFailure(f"✗ {name}: the values differ from the sum of log p(label) over each row's labelled "
                       "positions.")


# ------------------------------------------------------------------------------------------ DPO

def _dpo(pc, pr, rc, rr, beta, sign=1.0, power=1):
    z = sign * ((pc - rc) - (pr - rr))
    return -F.logsigmoid(beta ** power * z).mean()


def dpo_values(data) -> None:
    name = "dpo_loss"
    expect(isinstance(data, list) and len(data) == len(c.BETAS) + 1, name, "expected (loss, chosen_rewards, "
           "rejected_rewards) for each beta, and the loss of a pair ranked wrong by a wide margin.")
    far = data[-1].get("far_loss") if isinstance(data[-1], dict) else None
    data = data[:-1]
    pc, pr, rc, rr = c.dpo_inputs()
    for beta, item in zip(c.BETAS, data):
        value = item.get("loss")
        expect(_number(value), name, f"the loss must be a number; received {value!r}.")
        expect(item.get("inputs_unchanged") is True, name, "dpo_loss changed the log-probabilities it was given in "
               "place (sub_, -=, ...): the caller's tensors (the reference's, computed once) are read again; "
               "compute new tensors (policy_chosen - reference_chosen).")
        expected = _dpo(pc, pr, rc, rr, beta).item()
        if abs(value - expected) > 1e-9:
            mistakes = {
                "the log-ratios' signs are swapped (chosen and rejected, or policy and reference, exchanged): the loss "
                "must fall as the policy raises the chosen response above the reference":
                    _dpo(pc, pr, rc, rr, beta, sign=-1.0).item(),
                "beta is applied twice (beta² in the sigmoid): rewards that already hold beta were multiplied by beta "
                "again": _dpo(pc, pr, rc, rr, beta, power=2).item(),
                "beta is missing: -log sigmoid(beta · (chosen log-ratio - rejected log-ratio))":
                    _dpo(pc, pr, rc, rr, beta, power=0).item(),
                "the reference is ignored: DPO compares the policy's log-ratios to the reference's":
                    -F.logsigmoid(beta * (pc - pr)).mean().item(),
                "the chosen response's reference log-probability is not subtracted: each response's log-ratio is "
                "log pi - log pi_ref": -F.logsigmoid(beta * (pc - (pr - rr))).mean().item(),
                "the rejected response's reference log-probability is not subtracted: each response's log-ratio is "
                "log pi - log pi_ref": -F.logsigmoid(beta * ((pc - rc) - pr)).mean().item(),
                "the mean is taken inside the log-sigmoid (of the margins): average the pairs' losses, "
                "-mean(log sigmoid(beta · margin))": -F.logsigmoid(beta * ((pc - rc) - (pr - rr)).mean()).item(),
                "beta multiplies the log-sigmoid instead of the margin inside it: -log sigmoid(beta · margin)":
                    -beta * F.logsigmoid((pc - rc) - (pr - rr)).mean().item(),
                "a sum over the pairs; the loss is their mean": _dpo(pc, pr, rc, rr, beta).item() * len(pc),
                "the beta argument is ignored (0.1, its default, was used): use the beta passed in":
                    _dpo(pc, pr, rc, rr, 0.1).item() if beta != 0.1 else None,
                "log(sigmoid) written as -log(1 + exp(z)), or a sigmoid without the log: use F.logsigmoid":
                    -torch.sigmoid(beta * ((pc - rc) - (pr - rr))).mean().item(),
            }
            for mistake, wrong in mistakes.items():
                if wrong is not None and abs(value - wrong) <= 1e-9 * max(1.0, abs(wrong)):
                    raise JudgeFailure(f"✗ {name} (beta={beta}): {mistake}.")
            raise JudgeFailure(f"✗ {name} (beta={beta}): received {value:.6f}, not -mean log sigmoid(beta · "
                               "(chosen log-ratio - rejected log-ratio)).")
        for key, policy, reference in (("chosen", pc, rc), ("rejected", pr, rr)):
            reward = item.get(key)
            wanted = beta * (policy - reference)
            expect(_is_tensor(reward, wanted.shape), name, f"{key}_rewards must be a tensor of shape {tuple(wanted.shape)} "
                   "(one per pair).")
            if not _close(reward, wanted, 1e-9):
                other = beta * ((pr - rr) if key == "chosen" else (pc - rc))
                if _close(reward, other, 1e-9):
                    raise JudgeFailure(f"✗ {name}: the rewards are returned in the wrong order: return (loss, "
                                       "chosen_rewards, rejected_rewards).")
                if _close(reward, policy - reference, 1e-9):
                    raise JudgeFailure(f"✗ {name}: the {key} rewards miss beta: the implicit reward is beta · (log pi - "
                                       "log pi_ref).")
                if _close(reward, beta * beta * (policy - reference), 1e-9):
                    raise JudgeFailure(f"✗ {name}: the {key} rewards hold beta twice.")
                raise JudgeFailure(f"✗ {name}: the {key} rewards must be beta · (policy - reference) log-probabilities.")
    pc, pr, rc, rr = (torch.tensor([v], dtype=torch.float64) for v in c.FAR_PAIR)
    wanted = _dpo(pc, pr, rc, rr, c.BETAS[1]).item()
    if isinstance(far, float) and abs(far) == float("inf"):
        raise JudgeFailure(f"✗ {name}: a pair ranked wrong by a wide margin (beta · margin = "
                           f"{c.BETAS[1] * ((pc - rc) - (pr - rr)).item():.0f}) gave an infinite loss: log(sigmoid(x)) "
                           "rounds sigmoid(x) to 0 for a large negative x, and its log is -inf (or 1 + exp(-x) "
                           "overflows); F.logsigmoid computes log sigmoid(x) without forming sigmoid(x) (stable).")
    expect(_number(far) and abs(far - wanted) <= 1e-9 * max(1.0, abs(wanted)), name, "the loss of a pair ranked wrong "
           "by a wide margin is not -log sigmoid(beta · margin): use F.logsigmoid (stable for any margin).")


def dpo_gradient(data) -> None:
    name = "dpo_loss"
    grads = data.get("grads") if isinstance(data, dict) else None
    expect(isinstance(grads, list) and len(grads) == 4, name, "expected the gradients of the four inputs.")
    expect(not any(data.get("rewards_attached") or []), name, "the rewards returned carry gradients: detach them "
           "(they are for reporting; attached, each one kept keeps the graph of the whole step alive).")
    pc, pr, rc, rr = (x.clone().requires_grad_(True) for x in c.dpo_inputs())
    _dpo(pc, pr, rc, rr, c.BETAS[1]).backward()
    for label, got in (("reference_chosen", grads[2]), ("reference_rejected", grads[3])):
        expect(got is None or bool((got == 0).all()), name, f"a gradient reached {label}: the reference is not frozen. "
               "Its log-probabilities are constants (computed once, without gradients): detach them.")
    for label, got, want in (("policy_chosen", grads[0], pc.grad), ("policy_rejected", grads[1], pr.grad)):
        expect(_is_tensor(got, want.shape), name, f"no gradient reached {label}: keep the loss differentiable.")
        if not _close(got, want, 1e-10):
            if bool((got.double() * want < 0).all()):
                raise JudgeFailure(f"✗ {name}: the gradient on {label} has the wrong sign: minimising the loss must raise "
                                   "the chosen log-probability and lower the rejected one.")
            raise JudgeFailure(f"✗ {name}: the gradient on {label} differs from the DPO loss's.")
