"""Writes solutions/07-generation/generation.ipynb (the nbgrader source) from the cells below."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = []


def md(text):
    cells.append(new_markdown_cell(text.strip("\n")))


def code(text):
    cells.append(new_code_cell(text.strip("\n")))


def solution(grade_id, text):
    cell = new_code_cell(text.strip("\n"))
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                                 "solution": True, "task": False}
    cells.append(cell)


def test(grade_id, points, text):
    cell = new_code_cell(text.strip("\n"))
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                                 "schema_version": 3, "solution": False, "task": False}
    cells.append(cell)


md(r"""
# Chapter 07 — Generation

**What you will build.** The decoding loop that turns a language model into a text generator, on the course's GPT:

1. `top_k_filter` and `top_p_filter` — the two filters that decide which tokens sampling may pick,
2. `generate` — greedy decoding and sampling (temperature, top-k, top-p), stopping at an end-of-sequence token, on **left-padded batches**, reusing past keys and values from a **KV cache**,

each checked token for token against `transformers`' `model.generate` on the same weights.

**What you will measure.** Tokens per second with and without the cache, and the time per token against its position; your `generate` against `model.generate`; the memory a cache needs; that greedy decoding does not find the most likely sequence (beam search does better); a repetition loop and the penalty that breaks it.
""")

code(r"""
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from tfs import seed_everything
from tfs.convert.gpt import to_hf_model
from tfs.data import load_corpus
from tfs.generate import beam_search, kv_cache_bytes, left_pad, process_logits
from tfs.generate import generate as reference_generate
from tfs.grader.judging import judge
from tfs.models.gpt import GPT, GPTConfig
from tfs.nn import KVCache
from tfs.teaching.checks import call, check_close, check_shape, check_true
from tfs.train import TrainConfig, train

import transformers
transformers.logging.set_verbosity_error()  # the converted char-level model has no GPT-2 BOS/EOS ids: silence that notice

seed_everything(0)
torch.set_num_threads(1)  # decoding runs one small step at a time: one thread avoids hand-off costs (see STACK-NOTES)
%matplotlib inline
""")

md(r"""
## 1. A small GPT to decode with

Generation needs a trained model. Chapter 06 trains the course's GPT; here a small character-level GPT (3 layers, 96 wide) learns Shakespeare for 200 steps: enough for frequent words, not for sense (its repetitions serve section 4). Its vocabulary is the characters of the corpus; any character can serve as an end-of-sequence token (a space: stop at the end of a word).
""")

code(r"""
text = load_corpus("train")[:1_000_000]
chars = sorted(set(load_corpus("all")))
stoi = {c: i for i, c in enumerate(chars)}
encode = lambda s: [stoi[c] for c in s]
decode = lambda ids: "".join(chars[i] for i in ids)
NEWLINE = stoi["\n"]
data = torch.tensor(encode(text))
split = int(0.9 * len(data))
config = GPTConfig(vocab_size=len(chars), block_size=128, n_layer=3, n_head=4, n_embd=96)
gpt = GPT(config)
history = train(gpt, data[:split], data[split:], TrainConfig(max_steps=200, batch_size=12, block_size=64, lr=3e-3,
                warmup_steps=20, eval_interval=200, eval_steps=5))
gpt.eval()
print(f"vocabulary {len(chars)} characters, {gpt.num_params():,} parameters")
print(f"loss: first step {history['loss'][0]:.2f} (ln {len(chars)} = {torch.log(torch.tensor(float(len(chars)))):.2f}), "
      f"validation after 200 steps {history['val_loss'][-1]:.2f}")
""")

md(r"""
## 2. From logits to a choice: filters (3 points)

At each step the model gives one logit per token of the vocabulary for the next position. **Greedy** decoding takes the arg-max. **Sampling** draws from $p = \operatorname{softmax}(z / T)$, where the **temperature** $T$ sharpens ($T<1$) or flattens ($T>1$) the distribution. Sampling from the full distribution sometimes picks one of the thousands of unlikely tokens, and one bad token derails a text; so the tail is cut first:

- **top-k** keeps the $k$ largest logits;
- **top-p** (nucleus sampling, Holtzman et al. 2020) keeps the smallest set of most likely tokens whose probabilities add up to at least $p$: few tokens when the model is sure, many when it is not.

A filtered token gets the logit $-\infty$, so the softmax gives it probability exactly 0. Write `top_k_filter`. Ties with the $k$-th largest logit are kept (as in `transformers`); a `top_k` larger than the vocabulary keeps everything; `top_k < 1` is an error (`ValueError`).
""")

solution("top_k_filter", r"""
def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    '''Keep the top_k largest logits of each row, set the others to -inf.

    logits: (batch, vocab) -> (batch, vocab), same dtype. Ties with the k-th largest are kept.
    Raises ValueError for top_k < 1.
    '''
    ### BEGIN SOLUTION
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, received {top_k}")
    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth, float("-inf"))
    ### END SOLUTION
""")

test("test_top_k_values", 1, r"""
z = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.5, -1.0, 4.0, 2.0]])
inf = float("-inf")
expected = torch.tensor([[inf, 3.0, 2.0, inf], [inf, inf, 4.0, 2.0]])
mistakes = {"filtered tokens set to 0 instead of -inf": torch.where(torch.isinf(expected), 0.0, z),
            "the k smallest logits kept instead of the largest": torch.tensor([[1.0, inf, inf, 0.0], [0.5, -1.0, inf, inf]]),
            "k + 1 tokens kept (off by one)": torch.tensor([[1.0, 3.0, 2.0, inf], [0.5, inf, 4.0, 2.0]])}
check_close(call(top_k_filter, z.clone(), 2), expected, "top_k_filter(z, 2)", op="exact", mistakes=mistakes)
print("✓ the 2 largest logits of each row kept, the rest -inf")
""")

test("test_top_k_edges", 1, r"""
z = torch.tensor([[1.0, 3.0, 3.0, 0.0]], dtype=torch.float64)
check_close(call(top_k_filter, z, 1), torch.tensor([[float("-inf"), 3.0, 3.0, float("-inf")]], dtype=torch.float64),
            "top_k_filter(z, 1) with a tie at the top", op="exact",
            hint="compare every logit with the k-th largest value (keep >=), so tied tokens stay")
check_close(call(top_k_filter, z, 10), z, "top_k_filter(z, 10), k larger than the vocabulary", op="exact",
            hint="min(top_k, vocab)")
try:
    top_k_filter(z, 0)
    raised = False
except ValueError:
    raised = True
check_true(raised, "top_k_filter(z, 0)", "expected a ValueError for top_k < 1.")
print("✓ ties kept, k > vocab keeps all, top_k = 0 is refused")
""")

test("test_top_k_hidden", 1, r"""
### BEGIN HIDDEN TESTS
judge("ch07.top_k", top_k_filter=top_k_filter)
### END HIDDEN TESTS
""")

md(r"""
### Top-p (3 points)

Write `top_p_filter`. Sort the probabilities; a token is dropped when it and all less likely tokens together have probability $\le 1 - p$ (that is `transformers`' rule, and the most likely token is always kept). `top_p = 1` keeps every token; `top_p` outside $(0, 1]$ is an error (`ValueError`).
""")

solution("top_p_filter", r"""
def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    '''Nucleus filter: keep the most likely tokens whose probabilities reach top_p, set the rest to -inf.

    logits: (batch, vocab) -> (batch, vocab), same dtype. The most likely token is always kept.
    Raises ValueError unless 0 < top_p <= 1.
    '''
    ### BEGIN SOLUTION
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1], received {top_p}")
    sorted_logits, order = torch.sort(logits, dim=-1)                 # ascending
    tail = sorted_logits.softmax(dim=-1).cumsum(dim=-1)              # mass of this token and all less likely
    drop_sorted = tail <= 1 - top_p
    drop_sorted[..., -1] = False                                     # the most likely token stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)               # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))
    ### END SOLUTION
""")

test("test_top_p_values", 1, r"""
probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]], dtype=torch.float64)
z = probs.log()
inf = float("-inf")
for p, keep in ((0.6, [False, True, False, True]), (0.4, [False, True, False, False]), (0.9, [True, True, False, True])):
    expected = torch.where(torch.tensor([keep]), z, torch.tensor(inf, dtype=torch.float64))
    mistakes = {"kept until the mass exceeds p, without the token that crosses it":
                torch.where(torch.tensor([[False, True, False, False]]), z, torch.tensor(inf, dtype=torch.float64)),
                "filtered tokens set to 0 instead of -inf": torch.where(torch.tensor([keep]), z, torch.zeros(()).double())}
    check_close(call(top_p_filter, z.clone(), p), expected, f"top_p_filter(log [0.15, 0.5, 0.05, 0.3], {p})",
                op="exact", mistakes=mistakes if p == 0.6 else None,
                hint="the nucleus is the fewest most likely tokens whose probabilities add up to at least p")
print("✓ p = 0.6 keeps {0.5, 0.3}; p = 0.4 keeps {0.5}; p = 0.9 keeps {0.5, 0.3, 0.15}")
""")

test("test_top_p_edges", 1, r"""
z = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
check_close(call(top_p_filter, z, 1.0), z, "top_p_filter(z, 1.0)", op="exact", hint="p = 1 keeps every token")
tiny = call(top_p_filter, z, 1e-9)
check_true(torch.equal(torch.isfinite(tiny).sum(-1), torch.ones(3, dtype=torch.long)) and
           torch.equal(tiny.argmax(-1), z.argmax(-1)), "top_p_filter(z, 1e-9)",
           "expected exactly the most likely token kept in each row.")
for bad in (0.0, 1.5, -0.2):
    try:
        top_p_filter(z, bad)
        raised = False
    except ValueError:
        raised = True
    check_true(raised, f"top_p_filter(z, {bad})", "expected a ValueError for top_p outside (0, 1].")
print("✓ p = 1 keeps all, a tiny p keeps the arg-max, p outside (0, 1] is refused")
""")

test("test_top_p_hidden", 1, r"""
### BEGIN HIDDEN TESTS
judge("ch07.top_p", top_p_filter=top_p_filter)
### END HIDDEN TESTS
""")

md(r"""
### What the filters do to a real distribution

The next character after `"ROMEO:\nI will "` under the trained model, before and after temperature 0.8, top-k 10 and top-p 0.9 (your filters, composed in `transformers`' order: temperature, then top-k, then top-p):
""")

code(r"""
def filtered_distribution(prompt, temperature=1.0, top_k=None, top_p=None):
    with torch.no_grad():
        logits = gpt(torch.tensor([encode(prompt)]))[0][:, -1].double()
    before = logits.softmax(-1)[0]
    z = logits / temperature
    z = top_k_filter(z, top_k) if top_k else z
    z = top_p_filter(z, top_p) if top_p else z
    return before, z.softmax(-1)[0]

def show_distribution(prompt, temperature=1.0, top_k=None, top_p=None, n=15):
    before, after = filtered_distribution(prompt, temperature, top_k, top_p)
    order = before.argsort(descending=True)[:n]
    labels = [repr(chars[i])[1:-1] for i in order]
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.bar(torch.arange(n) - 0.2, before[order], width=0.4, label="model")
    ax.bar(torch.arange(n) + 0.2, after[order], width=0.4, label=f"T={temperature}, top-k={top_k}, top-p={top_p}")
    ax.set_xticks(range(n), labels)
    ax.set_ylabel("probability"); ax.set_title(f"next character after {prompt!r}"); ax.legend()
    plt.show()
    return before, after

before, after = show_distribution("ROMEO:\nI will ", temperature=0.8, top_k=10, top_p=0.9)
print(f"tokens with probability > 0: before {int((before > 0).sum())}, after {int((after > 0).sum())}")
""")

md(r"""
In a live notebook, move the sliders (the static figure above is the same plot):
""")

code(r"""
try:
    import ipywidgets as widgets
    widgets.interact(lambda prompt, temperature, top_k, top_p: show_distribution(prompt, temperature, top_k, top_p),
                     prompt=widgets.Text("ROMEO:\nI will "), temperature=widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1),
                     top_k=widgets.IntSlider(value=20, min=1, max=len(chars)), top_p=widgets.FloatSlider(value=0.9, min=0.05, max=1.0, step=0.05))
except ImportError:
    print("ipywidgets is not installed: the static figure above shows the same plot")
""")

md(r"""
## 3. The decoding loop (5 points)

Write `generate(model, input_ids, max_new_tokens, ...)`: append one token at a time.

- **greedy** when `temperature == 0` (the arg-max: temperature 0 is the limit of sharpening, not a division by zero), otherwise **sample** from the softmax of the filtered logits $z / T$ with `torch.multinomial(..., generator=generator)`, so a seeded `torch.Generator` gives the same text every time;
- **stop**: a row that has produced `eos_token_id` is finished; it is continued with `eos_token_id` only, and the loop may stop when every row is finished;
- **left padding**: prompts of different lengths share a batch by padding on the **left** (`attention_mask` 0 there), so every prompt ends in the last column. Padding must change nothing: it is hidden from attention by the mask, and each token's position is its index *among the real tokens*, `attention_mask.cumsum(-1) - 1`, not its column;
- **KV cache**: the package's GPT is called as `model(ids, attention_mask=mask, cache=cache, position_ids=positions) -> (logits, loss)`. With a `tfs.nn.KVCache()`, run the prompt once, then feed **only the new token**: each layer appends its keys and values to the cache and attends over all of them. The mask always covers every position so far (cached and new).

The model is the package's `GPT`, so only the loop is yours.
""")

solution("generate", r"""
def generate(model, input_ids, max_new_tokens, attention_mask=None, temperature=0.0, top_k=None, top_p=None,
             eos_token_id=None, generator=None):
    '''Continue input_ids (batch, T), left-padded with attention_mask (batch, T) (1 = token), by up to
    max_new_tokens tokens using a KV cache. Returns (batch, T + n) token ids, n <= max_new_tokens.'''
    ### BEGIN SOLUTION
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    ids, mask, new = input_ids, attention_mask, input_ids
    cache = KVCache()
    finished = torch.zeros(ids.shape[0], dtype=torch.bool)
    for _ in range(max_new_tokens):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]      # (batch, new)
        with torch.no_grad():
            logits = model(new, attention_mask=mask, cache=cache, position_ids=positions)[0][:, -1, :]
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            z = logits / temperature
            z = top_k_filter(z, top_k) if top_k is not None else z
            z = top_p_filter(z, top_p) if top_p is not None else z
            token = torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(-1)
        if eos_token_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished = finished | (token == eos_token_id)
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        new = token[:, None]
        if eos_token_id is not None and finished.all():
            break
    return ids
    ### END SOLUTION
""")

test("test_generate_greedy", 1, r"""
hf = to_hf_model(gpt)            # the same weights in transformers' GPT2LMHeadModel
hf.generation_config.pad_token_id = NEWLINE
prompt = torch.tensor([encode("KING:\nWhat ")])
received = call(generate, gpt, prompt, 30)
expected = hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=30)
check_shape(received, expected.shape, "generate(gpt, prompt, 30)")
check_true(torch.equal(received, expected), "generate(gpt, prompt, 30)",
           f"greedy text differs from model.generate:\n  yours   {decode(received[0].tolist())!r}\n  expected {decode(expected[0].tolist())!r}",
           hint="temperature 0: take the arg-max of the LAST position's logits, append it, repeat")
print("✓ greedy, token for token as model.generate:", repr(decode(received[0].tolist())))
""")

test("test_generate_left_padding", 1, r"""
texts = ["HAMLET:\nTo be", "I ", "Good morrow, sir"]
ids, mask = left_pad([encode(t) for t in texts], pad_token_id=0)
received = call(generate, gpt, ids, 20, attention_mask=mask)
check_shape(received, (3, ids.shape[1] + 20), "generate(gpt, left-padded batch, 20)")
for row, t in enumerate(texts):
    alone = generate(gpt, torch.tensor([encode(t)]), 20)[0, len(t):]
    check_true(torch.equal(received[row, ids.shape[1]:], alone), f"row {row} of a left-padded batch",
               f"continues as {decode(received[row, ids.shape[1]:].tolist())!r}; alone the prompt gives {decode(alone.tolist())!r}.",
               hint="pass attention_mask (extended by a 1 per new token) and position_ids = mask.cumsum(-1) - 1")
print("✓ each padded prompt generates exactly what it generates alone")
""")

test("test_generate_uses_the_cache", 1, r"""
class Recorder(torch.nn.Module):
    '''The GPT, recording how many tokens each call feeds and whether it got a cache.'''
    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []
    def forward(self, ids, **kwargs):
        self.calls.append((ids.shape[1], kwargs.get("cache") is not None))
        return self.model(ids, **kwargs)

recorder = Recorder(gpt)
prompt = torch.tensor([encode("ROMEO:\n")])
call(generate, recorder, prompt, 5)
check_true(len(recorder.calls) == 5 and all(cached for _, cached in recorder.calls), "generate's calls to the model",
           f"expected 5 calls, each with cache=...; received {recorder.calls} (tokens fed, cache given).")
check_true([n for n, _ in recorder.calls] == [prompt.shape[1]] + [1] * 4, "generate's calls to the model",
           f"tokens fed per call {[n for n, _ in recorder.calls]}; expected the prompt once, then 1 token per step.",
           hint="keep one KVCache for the whole loop and feed only the last token after the first step")
print("✓ the prompt is run once, then one token per step through the cache")
""")

test("test_generate_sampling_and_eos", 1, r"""
prompt = torch.tensor([encode("ROMEO:\nI will ")] * 2)
a = call(generate, gpt, prompt, 25, temperature=0.9, top_k=20, top_p=0.95, generator=torch.Generator().manual_seed(1))
b = call(generate, gpt, prompt, 25, temperature=0.9, top_k=20, top_p=0.95, generator=torch.Generator().manual_seed(1))
check_true(torch.equal(a, b), "two samples with the same seed", "differ: draw with torch.multinomial(..., generator=generator)")
check_true(not torch.equal(a[0], a[1]), "two rows of one sample", "are identical: are you sampling, or taking the arg-max?")
greedy = generate(gpt, prompt[:1], 25)
check_true(torch.equal(call(generate, gpt, prompt[:1], 25, temperature=0.7, top_k=1,
                            generator=torch.Generator().manual_seed(2)), greedy),
           "sampling with top_k=1", "differs from greedy: top-k 1 leaves only the arg-max to sample.")
SPACE = stoi[" "]
stopped = call(generate, gpt, torch.tensor([encode("KING:\nWhat ")]), 40, eos_token_id=SPACE)
new = stopped[0, len("KING:\nWhat "):].tolist()
check_true(SPACE in new and new.index(SPACE) == len(new) - 1, "generate(..., eos_token_id=space)",
           f"expected generation to stop at the first space; received {decode(new)!r}.")
print("✓ seeded sampling is reproducible, top_k=1 is greedy, generation stops at EOS:", repr(decode(new)))
""")

test("test_generate_hidden", 1, r"""
### BEGIN HIDDEN TESTS
judge("ch07.generate", generate=generate)
### END HIDDEN TESTS
""")

md(r"""
## 4. Misconceptions, shown by computation

**`model.generate(**inputs)` wants a dict.** A tokenizer returns a dict-like `BatchEncoding` (`input_ids` *and* `attention_mask`), which `**` unpacks into keyword arguments. A bare tensor cannot be unpacked with `**`, and passing `input_ids` alone drops the mask: with padding, the model then attends to pad tokens (unless `generate` can guess the mask from a `pad_token_id`, which it does here only when told one).
""")

code(r"""
odd = stoi[chars[-1]]                                        # pad with a rare character, so the difference shows
ids_odd, mask_odd = left_pad([encode(t) for t in texts], pad_token_id=odd)
inputs = {"input_ids": ids_odd, "attention_mask": mask_odd}  # what tokenizer(texts, return_tensors="pt", padding=True) gives
try:
    hf.generate(**ids_odd, max_new_tokens=10)
except TypeError as error:
    print("generate(**tensor) ->", type(error).__name__, ":", error)
with torch.no_grad():
    with_mask = hf(**inputs).logits[:, -1]
    without_mask = hf(input_ids=ids_odd).logits[:, -1]
print(f"padding character {chars[-1]!r}; padded rows: {[i for i in range(3) if mask_odd[i].min() == 0]}")
print("max |next-token logit difference| with vs without the mask, per row:",
      [round(v, 3) for v in (with_mask - without_mask).abs().amax(-1).tolist()])
""")

md(r"""
**Temperature 0 is greedy, not an error.** As $T \to 0$, $\operatorname{softmax}(z/T)$ puts all its mass on the arg-max:
""")

code(r"""
z = torch.tensor([2.0, 1.5, 0.3])
for T in (1.0, 0.5, 0.1, 0.01):
    print(f"T = {T:<5} softmax(z / T) = {[round(p, 4) for p in (z / T).softmax(-1).tolist()]}")
print("T = 0 (the package's generate):", torch.equal(reference_generate(gpt, prompt[:1], 20, temperature=0), greedy[:, :prompt.shape[1] + 20]))
""")

md(r"""
**Greedy decoding is not "the most likely sequence".** Each greedy step takes the best next token, but a slightly worse token now can lead to a much likelier continuation. Beam search keeps the `num_beams` best partial sequences at every step. The package's `tfs.generate.beam_search` (it matches `model.generate(num_beams=...)`) against greedy, scored by the sum of log-probabilities of the new tokens:
""")

code(r"""
def new_logprob(seq, n_prompt):
    with torch.no_grad():
        logp = gpt(seq)[0][0, :-1].log_softmax(-1)
    return logp[torch.arange(n_prompt - 1, seq.shape[1] - 1), seq[0, n_prompt:]].sum().item()

better = 0
prompts_ = ["ROMEO:\nI", "KING:\nWhat", "First Citizen:\nWe", "HAMLET:\nAy", "Nurse:\nO", "JULIET:\nThe"]
for text in prompts_:
    p = torch.tensor([encode(text)])
    g = reference_generate(gpt, p, 12)
    b = beam_search(gpt, p, 12, num_beams=4, length_penalty=0.0)
    lg, lb = new_logprob(g, p.shape[1]), new_logprob(b, p.shape[1])
    better += lb > lg + 1e-6
    print(f"{text!r:24} greedy {lg:7.2f} {decode(g[0, p.shape[1]:].tolist())!r:18} beam {lb:7.2f} {decode(b[0, p.shape[1]:].tolist())!r}")
print(f"beam search found a likelier 12-character continuation than greedy for {better} of {len(prompts_)} prompts")
""")

md(r"""
**Greedy decoding loops; a repetition penalty breaks the loop.** A greedy model that once enters a frequent pattern keeps choosing it. The penalty (CTRL, Keskar et al. 2019) divides the logit of every token already in the text by $\theta$ (multiplies it when negative), so repeats become less attractive:
""")

code(r"""
def repeated_fraction(ids, n=8):
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return 1 - len(set(grams)) / len(grams)

p = torch.tensor([encode("And ")])
for penalty in (None, 1.3):
    out = reference_generate(gpt, p, 120, repetition_penalty=penalty)[0, p.shape[1]:].tolist()
    print(f"penalty {penalty}: repeated 8-grams {repeated_fraction(out):.0%}  {decode(out)[:90]!r}")
""")

md(r"""
## 5. What the cache buys

Without a cache, step $t$ runs the model over all $t$ tokens again: the work per token grows with its position and the whole generation is quadratic. With the cache, each step runs one token against $t$ stored keys: nearly flat. Measured with your `generate` on a 4-layer, 192-wide GPT (random weights: speed does not depend on training) at 256 new tokens; the no-cache version is the same loop feeding the whole sequence every step:
""")

code(r"""
def generate_no_cache(model, ids, max_new_tokens, times):
    for _ in range(max_new_tokens):
        start = time.perf_counter()
        with torch.no_grad():
            token = model(ids)[0][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, token], dim=1)
        times.append(time.perf_counter() - start)
    return ids

class Timer(torch.nn.Module):
    '''Times each forward call of the model.'''
    def __init__(self, model):
        super().__init__()
        self.model, self.times = model, []
    def forward(self, ids, **kwargs):
        start = time.perf_counter()
        out = self.model(ids, **kwargs)
        self.times.append(time.perf_counter() - start)
        return out

torch.manual_seed(0)
big = GPT(GPTConfig(vocab_size=len(chars), block_size=272, n_layer=4, n_head=4, n_embd=192)).eval()
start_ids = torch.tensor([encode("ROMEO:\n")])
N = 256
timed = Timer(big)
t0 = time.perf_counter(); cached = generate(timed, start_ids, N); t_cache = time.perf_counter() - t0
plain_times = []
t0 = time.perf_counter(); uncached = generate_no_cache(big, start_ids, N, plain_times); t_plain = time.perf_counter() - t0
hf_big = to_hf_model(big)
t0 = time.perf_counter(); theirs = hf_big.generate(input_ids=start_ids, attention_mask=torch.ones_like(start_ids),
                                                  do_sample=False, max_new_tokens=N, pad_token_id=0); t_hf = time.perf_counter() - t0
print(f"same tokens with and without the cache: {torch.equal(cached, uncached)}; same as model.generate: {torch.equal(cached, theirs)}")
print(f"{'':28}{'tokens/s':>10}")
print(f"{'your generate, no cache':28}{N / t_plain:10.0f}")
print(f"{'your generate, KV cache':28}{N / t_cache:10.0f}   ({t_plain / t_cache:.1f}x faster than no cache)")
print(f"{'model.generate, KV cache':28}{N / t_hf:10.0f}   (yours / theirs = {t_hf / t_cache:.2f})")
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(range(len(plain_times)), [1e3 * t for t in plain_times], label="no cache")
ax.plot(range(len(timed.times) - 1), [1e3 * t for t in timed.times[1:]], label="KV cache")
ax.set_xlabel("generated token"); ax.set_ylabel("ms per token"); ax.legend(); ax.set_title("time per token against position")
plt.show()
""")

md(r"""
In the plot the no-cache time per token climbs with the position (each step redoes the whole prefix) while the cached one stays nearly flat, so the speed-up grows with the number of tokens. On a model this small the fixed cost of each call (Python, launching each layer's operations) is a large part of a cached step; that is also what separates your loop from `model.generate`, which does more bookkeeping per step (logits processors, stopping criteria, cache objects) on the same matrix products. A wider model spends more of each step in the matrix products and shows a larger cache speed-up (`benchmarks/generation_speed.py`).

### The memory of a cache

Every layer stores a key and a value vector per head and position: $2 \times n_\text{layer} \times \text{batch} \times n_\text{kv heads} \times T \times d_\text{head} \times \text{bytes}$. Checked against the tensors the cache holds:
""")

code(r"""
cache = KVCache()
with torch.no_grad():
    big(start_ids.repeat(2, 1), cache=cache)
    for _ in range(9):
        big(torch.zeros(2, 1, dtype=torch.long), cache=cache)
formula = kv_cache_bytes(n_layer=4, n_kv_heads=4, d_head=192 // 4, length=len(cache), batch=2)
print(f"{len(cache)} positions, batch 2: formula {formula:,} bytes, tensors {cache.nbytes():,} bytes")
gpt2_xl = kv_cache_bytes(n_layer=48, n_kv_heads=25, d_head=64, length=1024, dtype=torch.float16)
print(f"GPT-2 XL (48 layers, 25 heads of 64), 1024 tokens, float16: {gpt2_xl / 2**20:.0f} MiB per sequence")
""")

md(r"""
> **Multi-query and grouped-query attention.** The cache grows with the number of *key/value* heads. Multi-query attention (Shazeer 2019) keeps many query heads but one shared key/value head, shrinking the cache by $n_\text{heads}$; grouped-query attention (Ainslie et al. 2023, used by Llama 2 70B and later) shares each key/value head among a group of query heads, e.g. 8 KV heads for 64 query heads: 8× smaller, with quality close to full multi-head attention.

## Summary

- Decoding is a loop: logits → processors (repetition penalty, temperature, top-k, top-p) → a choice (arg-max or a seeded sample) → append, until EOS or a length.
- Batches are padded on the left; the mask hides the padding and the positions come from its cumulative sum, so a padded prompt generates exactly what it generates alone.
- The KV cache turns a quadratic loop into a linear one: run the prompt once, then one token per step.

**Questions to think about.** Why does top-p adapt to the model's certainty where top-k does not? What would go wrong with **right** padding in a decoder? Beam search maximises likelihood: why do sampled texts often read better? How large is the cache of a 70-billion-parameter model at 32k tokens, with and without grouped-query attention?

**Pointers.** Holtzman et al., *The Curious Case of Neural Text Degeneration* (2020); Keskar et al., *CTRL* (2019); Shazeer, *Fast Transformer Decoding: One Write-Head is All You Need* (2019); Ainslie et al., *GQA* (2023); `transformers`' `generation/utils.py`.
""")

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "version": "3.11.7"}})
out = Path(__file__).resolve().parents[1] / "solutions" / "07-generation" / "generation.ipynb"
out.parent.mkdir(parents=True, exist_ok=True)
nbformat.write(nb, out)
print("wrote", out)
