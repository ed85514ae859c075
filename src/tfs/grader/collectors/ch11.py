"""Chapter 11 (applications: the encoder-decoder) collectors: run the learner's objects on seeded inputs,
return plain data.

Inputs come from the generators below, which the judges import to rebuild them. Weights are written
into the learner's modules *by parameter name* (``self_attn.qkv.weight``, ``norm3.bias``, ...) from
:func:`seeded`, so the judge knows every weight without trusting the kernel.
"""

from __future__ import annotations

import zlib

import torch

from tfs.grader.judging import answer_on_its_own, raised
from tfs.grader import judging

D_MODEL, N_HEADS, D_FF = 8, 2, 12
SRC_VOCAB, TGT_VOCAB, MAX_LEN = 13, 11, 16
BOS, EOS, PAD = 1, 2, 0
GREEDY_PAD = 2  # the greedy stand-in's config.pad_id: not 0 (a loop that writes 0 shows), and no token it produces
GREEDY_SEED = 112  # GreedyStandIn's weights: greedy outputs vary along a row and between rows, never 0 or 1
EOS_CASES = (4, 9, 8)  # with these weights: a row ending at once, one ending late, every row ending before the limit


def seeded(name: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    generator = judging.generator(seed * 1_000_003 + zlib.crc32(name.encode()))
    values = torch.randn(shape, generator=generator, dtype=torch.float64)
    if "norm" in name:  # LayerNorm: gains near 1, small shifts (large shared shifts make every argmax alike)
        return 1.0 + 0.2 * values if name.endswith(".weight") else 0.05 * values
    return values * (0.5 if name.endswith("bias") else 1.0)


def aliases(shared: bool) -> dict[str, str]:
    """Names that share one table: a shared, tied model's source table and output layer are the target table."""
    return {"src_embed.weight": "tgt_embed.weight", "head.weight": "tgt_embed.weight"} if shared else {}


def fill(module: torch.nn.Module, seed: int = 0, alias: dict[str, str] | None = None) -> list[str]:
    """Cast to float64 and write :func:`seeded` weights by name (``alias`` maps a shared tensor's other names
    to one); return the sorted parameter names, a shared tensor's every name included."""
    module.double()
    alias = alias or {}
    names = []
    with torch.no_grad():
        for name, parameter in module.named_parameters(remove_duplicate=False):
            parameter.copy_(seeded(alias.get(name, name), tuple(parameter.shape), seed))
            names.append(name)
    return sorted(names)


def block_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x (2, 4, 8)``, ``memory (2, 6, 8)`` float64 and the memory's 0/1 ``attention_mask (2, 6)``
    (row 1 has 4 real positions; its padding vectors are far off, so attending to them shows)."""
    x = seeded("x", (2, 4, D_MODEL))
    memory = seeded("memory", (2, 6, D_MODEL))
    mask = torch.ones(2, 6, dtype=torch.int64)
    mask[1, 4:] = 0
    memory = memory + 4.0 * (1 - mask)[..., None]
    return x, memory, mask


def target_mask() -> torch.Tensor:
    """The target's own 0/1 mask ``(2, 4)`` for ``tgt_mask``: row 1 blocks position 2, which position 3 would see under
    the causal mask alone (a mask at the end of a row would change nothing: causality already hides it)."""
    mask = torch.ones(2, 4, dtype=torch.int64)
    mask[1, 2] = 0
    return mask


def _bool_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S), True = may attend


BLOCK_EPS = 0.5  # a LayerNorm eps far from the default 1e-5, so that an eps not passed on shows
BLOCK_DROPOUT = 0.3  # a block built with dropout, run in evaluation mode: it must compute what dropout 0 does


def _block_outputs(DecoderBlock, norm_first: bool) -> dict:
    block = DecoderBlock(D_MODEL, N_HEADS, D_FF, norm_first=norm_first)
    names = fill(block)
    x, memory, mask = block_inputs()
    with torch.no_grad():
        out = block.eval()(x, memory, None, _bool_mask(mask))
        with_target_mask = block(x, memory, _bool_mask(target_mask()), _bool_mask(mask))
    gelu = DecoderBlock(D_MODEL, N_HEADS, D_FF, norm_first=norm_first, activation="gelu")
    fill(gelu)
    wide_eps = DecoderBlock(D_MODEL, N_HEADS, D_FF, norm_first=norm_first, eps=BLOCK_EPS)
    fill(wide_eps)
    with_dropout = DecoderBlock(D_MODEL, N_HEADS, D_FF, norm_first=norm_first, dropout=BLOCK_DROPOUT)
    fill(with_dropout)
    with torch.no_grad():
        out_gelu = gelu.eval()(x, memory, None, _bool_mask(mask))
        out_eps = wide_eps.eval()(x, memory, None, _bool_mask(mask))
        out_dropout = with_dropout.eval()(x, memory, None, _bool_mask(mask))
    return {"names": names, "out": out, "with_target_mask": with_target_mask, "gelu": out_gelu, "eps": out_eps,
            "dropout_eval": out_dropout}


def decoder_block_structure(DecoderBlock) -> dict:
    block = DecoderBlock(D_MODEL, N_HEADS, D_FF)
    x, memory, _ = block_inputs()
    with torch.no_grad():
        out = block.double().eval()(x, memory)
    return {"names": sorted(n for n, _ in block.named_parameters()), "shape": list(out.shape)}


def decoder_block_post_ln(DecoderBlock) -> dict:
    return _block_outputs(DecoderBlock, norm_first=False)


def decoder_block_pre_ln(DecoderBlock) -> dict:
    return _block_outputs(DecoderBlock, norm_first=True)


# ------------------------------------------------------------------------------------- the encoder-decoder

def config_kwargs(shared: bool, tie_head: bool | None = None) -> dict:
    """Keyword arguments of ``Seq2SeqConfig`` for the two graded models (separate, or shared and tied; ``tie_head``
    given: the structure test's other two combinations, shared untied and separate tied)."""
    vocab = (TGT_VOCAB, TGT_VOCAB) if shared else (SRC_VOCAB, TGT_VOCAB)
    # the shared model also varies what the separate one leaves at its default: unequal depths, pre-LN, another eps,
    # GELU (the separate model has the default ReLU)
    stacks = dict(n_encoder_layers=1, n_decoder_layers=3, norm_first=True, eps=1e-3, activation="gelu") if shared \
        else dict(n_encoder_layers=2, n_decoder_layers=2)
    return dict(src_vocab_size=vocab[0], tgt_vocab_size=vocab[1], d_model=D_MODEL, n_heads=N_HEADS, d_ff=D_FF,
                max_len=MAX_LEN, shared_embeddings=shared, tie_head=shared if tie_head is None else tie_head, **stacks)


def model_inputs(shared: bool = False) -> tuple[torch.Tensor, ...]:
    """``src (3, 7)``, ``tgt (3, 5)`` ids and their 0/1 attention masks (source rows 0 and 2 padded, with
    non-zero ids under the padding; target row 1 masks position 2, which later positions would see without it)."""
    generator = judging.generator(11 + shared)
    src = torch.randint(3, TGT_VOCAB if shared else SRC_VOCAB, (3, 7), generator=generator)
    tgt = torch.randint(3, TGT_VOCAB, (3, 5), generator=generator)
    src_mask = torch.ones_like(src)
    src_mask[0, 5:] = 0
    src_mask[2, 3:] = 0
    tgt_mask = torch.ones_like(tgt)
    tgt_mask[1, 2] = 0
    return src, tgt, src_mask, tgt_mask


class DecoderBlockStandIn(torch.nn.Module):
    """Exercise 1's block under the course's part names (chapters 02-03's ``MultiHeadAttention``, ``FeedForward``,
    ``LayerNorm``) with ``nn.TransformerDecoderLayer`` as its forward (the package's ``DecoderBlock`` is hidden while
    chapter 11 is graded): what the learner's ``EncoderDecoder`` is built with while it is judged."""

    def __init__(self, d_model, n_heads, d_ff, norm_first=False, eps=1e-5, dropout=0.0, activation="relu"):
        from tfs.nn import FeedForward, LayerNorm, MultiHeadAttention

        super().__init__()
        self.sizes, self.norm_first, self.eps, self.activation = (d_model, n_heads, d_ff), norm_first, eps, activation
        self.self_attn, self.cross_attn = MultiHeadAttention(d_model, n_heads), MultiHeadAttention(d_model, n_heads)
        self.ff = FeedForward(d_model, d_ff, activation)
        self.norm1, self.norm2, self.norm3 = (LayerNorm(d_model, eps) for _ in range(3))

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        from tfs.convert.seq2seq import copy_decoder_block_to_torch

        layer = torch.nn.TransformerDecoderLayer(*self.sizes, dropout=0.0, activation=self.activation,
                                                 layer_norm_eps=self.eps, batch_first=True, norm_first=self.norm_first,
                                                 dtype=x.dtype)
        copy_decoder_block_to_torch(self, layer).train()  # dropout 0; keeps off the fused fast path
        (batch, length), heads = x.shape[:2], self.sizes[1]
        allowed = torch.ones(length, length, dtype=torch.bool).tril()
        allowed = allowed if tgt_mask is None else allowed & tgt_mask

        def blocked(mask, keys):  # course mask (True = may attend) -> torch's (B * heads, T, keys), True = blocked
            return ~mask.expand(batch, heads, length, keys).reshape(batch * heads, length, keys)

        return layer(x, memory, tgt_mask=blocked(allowed, length),
                     memory_mask=None if memory_mask is None else blocked(memory_mask, memory.shape[1]))


# While a collector runs the learner's ``EncoderDecoder``, the name ``DecoderBlock`` in its namespace means
# :class:`DecoderBlockStandIn`: exercise 2 is graded on its own, whatever the learner's exercise 1 does (exercise 1 is
# graded apart). The learner's block is put back afterwards.
_with_reference_blocks = answer_on_its_own(DecoderBlock=DecoderBlockStandIn)


def _build(EncoderDecoder, Seq2SeqConfig, shared: bool, tie_head: bool | None = None):
    return EncoderDecoder(Seq2SeqConfig(**config_kwargs(shared, tie_head)))


def _model(EncoderDecoder, Seq2SeqConfig, shared: bool):
    model = _build(EncoderDecoder, Seq2SeqConfig, shared)
    return model, fill(model, alias=aliases(shared))


STRUCTURES = {"separate": (False, None), "shared": (True, None), "separate_tied": (False, True),
              "shared_untied": (True, False)}  # key: (shared_embeddings, tie_head; None: as shared_embeddings)


@_with_reference_blocks
def encoder_decoder_structure(EncoderDecoder, Seq2SeqConfig) -> dict:
    out = {}
    for key, (shared, tie_head) in STRUCTURES.items():
        model = _build(EncoderDecoder, Seq2SeqConfig, shared, tie_head)
        out[key] = {
            "names": sorted(n for n, _ in model.named_parameters()),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "head_is_tgt_embed": model.head.weight is model.tgt_embed.weight,
            "head_shares_tgt_values": model.head.weight.shape == model.tgt_embed.weight.shape
            and bool(torch.equal(model.head.weight.detach(), model.tgt_embed.weight.detach())),
            "src_is_tgt_embed": model.src_embed is model.tgt_embed}
    return out


@_with_reference_blocks
def encoder_decoder_logits(EncoderDecoder, Seq2SeqConfig) -> dict:
    out = {}
    for shared in (False, True):
        model, names = _model(EncoderDecoder, Seq2SeqConfig, shared)
        src, tgt, src_mask, tgt_mask = model_inputs(shared)
        with torch.no_grad():
            out["shared" if shared else "separate"] = {"names": names,
                                                       "logits": model.eval()(src, tgt, src_mask, tgt_mask)}
    return out


@_with_reference_blocks
def encoder_decoder_source_padding(EncoderDecoder, Seq2SeqConfig) -> dict:
    model, names = _model(EncoderDecoder, Seq2SeqConfig, False)
    src, tgt, src_mask, _ = model_inputs()
    other = src.clone()
    other[src_mask == 0] = 4  # other tokens under the padding
    with torch.no_grad():
        model.eval()
        return {"names": names, "logits": model(src, tgt, src_mask), "other_pad": model(other, tgt, src_mask),
                "no_mask": model(src[1:2], tgt[1:2])}


# ------------------------------------------------------------------------------------------ shift_right

def shift_cases() -> list[tuple[torch.Tensor, int, int]]:
    """``(labels, bos_id, pad_id)``: with -100 padding, without, with both and a pad_id other than 0, length 1."""
    return [(torch.tensor([[5, 6, 7, 2, -100], [8, 2, -100, -100, -100], [3, 4, 5, 6, 2]]), 1, 0),
            (torch.tensor([[9, 3, 2], [4, 4, 2]]), 7, 5),
            (torch.tensor([[9, 3, 2, -100], [4, 2, -100, -100]]), 7, 5),
            (torch.tensor([[2], [6]]), 1, 0)]


def shift_right(shift_right) -> dict:
    """The decoder inputs, and whether each call changed the labels it was given (they must come back unchanged)."""
    cases = shift_cases()
    given = [labels.clone() for labels, _, _ in cases]
    outputs = [shift_right(labels, bos, pad) for labels, (_, bos, pad) in zip(given, cases)]
    return {"outputs": outputs, "labels_changed": [not torch.equal(after, labels) for after, (labels, _, _) in
                                                   zip(given, cases)]}


# ------------------------------------------------------------------------------------------ greedy decoding

class GreedyStandIn(torch.nn.Module):
    """What the learner's ``greedy_decode`` decodes: a seeded model called as ``EncoderDecoder`` is (``forward``,
    ``encode``, ``decode``, ``config``) but with none of its code, which is hidden while chapter 11 is graded. Its
    memory is the source's embeddings; its decoder, one causal block of chapter 03 over the target plus the mean of
    the real source positions. Only the decoding loop is graded on it: the logits depend on the whole target prefix
    and on the source mask."""

    def __init__(self):
        super().__init__()
        from tfs.models.seq2seq import Seq2SeqConfig
        from tfs.nn import TransformerBlock

        self.config = Seq2SeqConfig(**config_kwargs(False), pad_id=GREEDY_PAD)
        self.source = torch.nn.Embedding(SRC_VOCAB, D_MODEL)
        self.target = torch.nn.Embedding(TGT_VOCAB, D_MODEL)
        self.position = torch.nn.Embedding(MAX_LEN, D_MODEL)
        self.mixer = TransformerBlock(D_MODEL, N_HEADS, D_FF, norm_first=True, causal=True)
        self.out = torch.nn.Linear(D_MODEL, TGT_VOCAB, bias=False)

    def encode(self, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.source(src_ids)  # (B, S, d)

    def decode(self, tgt_ids: torch.Tensor, memory: torch.Tensor, src_attention_mask: torch.Tensor | None = None,
               tgt_attention_mask: torch.Tensor | None = None, cache=None) -> torch.Tensor:
        if cache is not None:
            raise ValueError("the grader's model decodes without a KV cache: call it on the whole prefix")
        real = (torch.ones(memory.shape[:2], dtype=memory.dtype) if src_attention_mask is None
                else src_attention_mask.to(memory.dtype))                                         # (B, S)
        summary = (memory * real[..., None]).sum(1) / real.sum(1, keepdim=True)                   # (B, d)
        x = self.target(tgt_ids) + self.position.weight[:tgt_ids.shape[1]] + summary[:, None]     # (B, T, d)
        return self.out(self.mixer(x))                                                             # (B, T, V)

    def forward(self, src_ids, tgt_ids, src_attention_mask=None, tgt_attention_mask=None) -> torch.Tensor:
        return self.decode(tgt_ids, self.encode(src_ids, src_attention_mask), src_attention_mask)


def greedy_model() -> GreedyStandIn:
    """:class:`GreedyStandIn` with seeded weights (float64), in evaluation mode: the model is given, the decoding
    loop is the learner's. The same in every grading run (run seed 0): :data:`EOS_CASES` rely on these weights."""
    model = GreedyStandIn()
    with judging.seeded_run(0):
        fill(model, seed=GREEDY_SEED)
    return model.eval()


def greedy_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The same in every grading run, as :func:`greedy_model`."""
    with judging.seeded_run(0):
        src, _, src_mask, _ = model_inputs()
    return src, src_mask


OTHER_BOS = 3  # a start token other than 1 (a loop that writes 1 shows); the stand-in's 3 is a token like any other


def greedy_decode(greedy_decode) -> dict:
    model = greedy_model()
    src, src_mask = greedy_inputs()
    with torch.no_grad():
        long = greedy_decode(model, src, src_mask, BOS, 99, 8)   # an EOS that never comes: 8 steps
        short = greedy_decode(model, src, src_mask, BOS, 99, 1)
        other_bos = greedy_decode(model, src, src_mask, OTHER_BOS, 99, 3)
        no_steps = _attempt(greedy_decode, model, src, src_mask, BOS, 99, 0)   # n = 0 <= max_new_tokens: BOS alone
    return {"long": long, "short": short, "other_bos": other_bos, "no_steps": no_steps}


def greedy_decode_eos(greedy_decode) -> dict:
    model = greedy_model()
    src, src_mask = greedy_inputs()
    out = {}
    with torch.no_grad():
        for eos in EOS_CASES:
            out[str(eos)] = greedy_decode(model, src, src_mask, BOS, eos, 8)
    return out


# ------------------------------------------------------------------------------ Part 2: labels, entities, spans

def align_cases() -> list[tuple[list, list]]:
    """``(word_ids, word_labels)`` as a fast tokenizer's ``word_ids()`` gives them (``None`` = special token)."""
    return [([None, 0, 1, 1, 1, 2, 3, 3, None], [3, 0, 1, 0]),
            ([None, 0, 0, 0, None], [2]),
            ([None, 0, 1, 2, None, 3, 3, None], [1, 1, 0, 2]),    # a pair: [SEP] between, labels over both
            ([None, 0, 1, 1, None, None], [4, 5, 6, 7])]          # truncated: words 2-3 cut off


def _attempt(function, *args):
    """``function(*args)``, or the error line of what it raised: one case's error is data, as in :func:`raised`,
    and the judge names the case."""
    try:
        return function(*args)
    except Exception as error:
        return judging.error_line(error)


def _returned(value) -> str:
    """``"list of int"``, or what ``align_labels`` returned instead (its type, or its elements' types)."""
    if not isinstance(value, list):
        return type(value).__name__
    kinds = sorted({type(v).__name__ for v in value})
    return "list of int" if kinds == ["int"] else "list of " + ", ".join(kinds)


def align_labels(align_labels) -> dict:
    results = [_attempt(lambda *case: list(align_labels(*case)), list(ids), list(labels)) for ids, labels in align_cases()]
    ids, labels = align_cases()[0]
    return {"results": results, "too_few_labels": raised(align_labels, [None, 0, 1, 2, None], [1, 0]),
            "returned": _attempt(lambda: _returned(align_labels(list(ids), list(labels))))}


def entity_cases() -> list[tuple[list[list[str]], list[list[str]]]]:
    """``(true tag sequences, predicted tag sequences)``: exact, boundary errors, type errors, I- after O."""
    t1 = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "B-PER", "O", "O"]]
    p1 = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "B-PER", "O", "O"]]
    t2 = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-PER"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
    p2 = [["B-PER", "O", "O", "B-PER", "O", "B-PER"], ["B-ORG", "I-ORG", "I-ORG", "B-PER"]]
    t3 = [["O", "I-PER", "I-PER", "O", "B-PER", "B-PER"], ["O", "O", "O"]]
    p3 = [["O", "B-PER", "I-PER", "O", "B-PER", "I-PER"], ["B-LOC", "O", "O"]]
    t4 = [["O", "O"], ["B-PER", "O"]]
    p4 = [["O", "O"], ["O", "O"]]
    t5 = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["O", "B-LOC", "I-LOC"]]  # an I- of another type: a new entity
    p5 = [["B-PER", "I-LOC", "O", "B-LOC", "I-PER"], ["O", "B-LOC", "I-LOC"]]
    t6 = [["O", "O", "O"], ["O", "O"]]  # no true entity: recall is 0/0
    p6 = [["O", "B-PER", "O"], ["O", "O"]]
    t7 = [["B-LOC", "I-LOC", "O"]]  # the right span with the wrong type
    p7 = [["B-PER", "I-PER", "O"]]
    return [(t1, p1), (t2, p2), (t3, p3), (t4, p4), (t5, p5), (t6, p6), (t7, p7), ([], [])]


def entity_scores(entity_scores) -> list:
    """Per case the scores and whether the call changed the tag lists it was given (``inputs_changed``), or the error
    line of what it raised."""
    out = []
    for true, pred in entity_cases():
        given = [list(s) for s in true], [list(s) for s in pred]
        scores = _attempt(entity_scores, *given)
        out.append({**{k: float(scores[k]) for k in ("precision", "recall", "f1")}, "inputs_changed": given != (true, pred)}
                   if isinstance(scores, dict) else scores if isinstance(scores, str) else None)
    return out


def span_cases() -> list[dict]:
    """Start/end logits over 12 tokens: ``[CLS] q q [SEP] c ... c [SEP]``, with offsets and a context mask."""
    cases = []
    offsets = [[0, 0], [0, 3], [4, 7], [0, 0]] + [[5 * i, 5 * i + 4] for i in range(7)] + [[0, 0]]
    mask = torch.tensor([0, 0, 0, 0] + [1] * 7 + [0])
    for seed, max_len in ((0, 3), (1, 2), (2, 5), (3, 1)):
        start = seeded(f"start{seed}", (12,))
        end = seeded(f"end{seed}", (12,))
        start[0] = end[0] = -10.0
        cases.append({"start": start, "end": end, "offsets": offsets, "mask": mask, "max_len": max_len})
    trap = {"start": torch.full((12,), -5.0, dtype=torch.float64), "end": torch.full((12,), -5.0, dtype=torch.float64),
            "offsets": offsets, "mask": mask, "max_len": 3}
    trap["start"][[1, 6, 9]] = torch.tensor([9.0, 3.0, 4.0], dtype=torch.float64)  # a question token; start after end
    trap["end"][[2, 7, 5]] = torch.tensor([9.0, 2.5, 3.5], dtype=torch.float64)
    cases.append(trap)
    no_answer = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in cases[0].items()}
    no_answer["start"][0] = no_answer["end"][0] = 10.0
    cases.append(no_answer)
    edge = {"start": torch.full((12,), -5.0, dtype=torch.float64), "end": torch.full((12,), -5.0, dtype=torch.float64),
            "offsets": offsets, "mask": mask, "max_len": 3}
    edge["start"][5] = 3.0
    edge["end"][[5, 8, 9]] = torch.tensor([1.0, 2.0, 2.5], dtype=torch.float64)  # spans of 1, 4 and 5 tokens
    cases.append(edge)  # the best allowed span is one token; one token longer than the limit scores more
    no_context = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in cases[0].items()}
    no_context["mask"] = torch.zeros_like(mask)  # a window without a context token: no span is allowed
    cases.append(no_context)
    tie = {"start": torch.full((12,), -5.0, dtype=torch.float64), "end": torch.full((12,), -5.0, dtype=torch.float64),
           "offsets": offsets, "mask": mask, "max_len": 3}
    tie["start"][5], tie["end"][6] = 3.0, 2.0
    tie["start"][0] = tie["end"][0] = 2.5  # [CLS] scores 5, as the best span: it does not beat it
    cases.append(tie)
    past = {"start": torch.full((12,), -5.0, dtype=torch.float64), "end": torch.full((12,), -5.0, dtype=torch.float64),
            "offsets": offsets, "mask": mask, "max_len": 3}
    past["start"][10], past["end"][10], past["end"][11] = 4.0, 1.0, 5.0  # the best end is the [SEP] after the context
    cases.append(past)
    return cases


def extract_answer(extract_answer) -> list:
    out = []
    for case in span_cases():
        answer = extract_answer(case["start"].clone(), case["end"].clone(), [list(o) for o in case["offsets"]],
                                case["mask"].clone(), case["max_len"])
        out.append(None if answer is None else [int(answer[0]), int(answer[1])])
    return out
