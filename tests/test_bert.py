"""The package's BERT (tfs.models.bert) against transformers, and its weight conversion (tfs.convert.bert)."""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn import functional as F

from tfs.convert.bert import bert_from_hf, bert_to_hf, hf_to_course_state_dict, load_hf_bert
from tfs.models.bert import BertConfig, BertEmbeddings, BertForPreTraining, BertModel
from tfs.models.bert_pretraining import make_nsp_pairs, mask_tokens

SENTENCES = ["The cat sat on the mat.", "A transformer reads the whole sentence at once, in both directions.",
             "Hello!"]


@pytest.fixture(scope="module")
def minilm():
    from transformers import BertModel as HFBertModel

    from tfs.data import bert_path, load_bert_tokenizer

    hf = HFBertModel.from_pretrained(bert_path(), attn_implementation="eager").eval()
    return hf, load_bert_tokenizer()


def tiny_config(**changes) -> BertConfig:
    return BertConfig(**({"vocab_size": 50, "max_position": 16, "d_model": 16, "n_heads": 4, "n_layers": 2,
                          "d_ff": 32, "dropout": 0.0, "eps": 1e-12} | changes))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_minilm_parity_on_a_padded_batch(minilm, dtype, tolerance):
    hf, tokenizer = minilm
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any(), "the batch must hold padding"
    ours = bert_from_hf(hf, dtype)
    hf_typed = hf.to(dtype)
    with torch.no_grad():
        expected = hf_typed(**batch)
        hidden, pooled = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    hf.float()
    real = batch["attention_mask"].bool()
    assert (hidden - expected.last_hidden_state)[real].abs().max().item() <= tolerance
    assert (pooled - expected.pooler_output).abs().max().item() <= tolerance


def test_padding_does_not_change_real_tokens(minilm):
    hf, tokenizer = minilm
    ours = bert_from_hf(hf, torch.float64)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        padded, _ = ours(**batch)
        for row, sentence in enumerate(SENTENCES):
            alone = tokenizer(sentence, return_tensors="pt")
            hidden, _ = ours(**alone)
            length = alone["input_ids"].shape[1]
            assert (padded[row, :length] - hidden[0]).abs().max().item() < 1e-10


def test_round_trip_through_transformers_names():
    from transformers import BertForMaskedLM, BertModel as HFBertModel

    torch.manual_seed(0)
    model = BertModel(tiny_config())
    hf = HFBertModel(model.config.to_hf(), add_pooling_layer=True)
    missing, unexpected = hf.load_state_dict(bert_to_hf(model), strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing)
    back = bert_from_hf(hf)
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key

    pretraining = BertForPreTraining(tiny_config(), nsp=False)
    with torch.no_grad():
        pretraining.mlm.bias.normal_()
    mlm = BertForMaskedLM(pretraining.config.to_hf())
    missing, unexpected = mlm.load_state_dict(bert_to_hf(pretraining), strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing)
    ids = torch.randint(50, (2, 7))
    with torch.no_grad():
        assert (mlm.eval()(input_ids=ids).logits - pretraining.eval()(ids)[0]).abs().max() < 1e-5
    back = bert_from_hf(mlm)
    assert back.mlm.decoder.weight is back.bert.embeddings.token.weight, "the decoder must stay tied"
    assert torch.equal(back.mlm.bias, pretraining.mlm.bias)


def test_mlm_head_is_tied_and_has_its_own_bias():
    model = BertForPreTraining(tiny_config())
    assert model.mlm.decoder.weight is model.bert.embeddings.token.weight
    names = [name for name, _ in model.named_parameters()]
    assert "mlm.bias" in names and "mlm.decoder.weight" not in names  # shared: listed once


def test_errors_name_the_key_and_shapes():
    model = BertModel(tiny_config())
    state = bert_to_hf(model)
    broken = dict(state)
    del broken["encoder.layer.1.attention.self.key.weight"]
    with pytest.raises(KeyError, match=r"encoder\.layer\.1\.attention\.self\.key\.weight"):
        load_hf_bert(BertModel(tiny_config()), broken)
    with pytest.raises(KeyError, match="unexpected key 'encoder.layer.0.surprise.weight'"):
        load_hf_bert(BertModel(tiny_config()), state | {"encoder.layer.0.surprise.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="missing key 'pooler.weight'"):
        load_hf_bert(BertModel(tiny_config()), {k: v for k, v in state.items() if not k.startswith("pooler")})
    wrong = state | {"embeddings.word_embeddings.weight": torch.zeros(51, 16)}
    with pytest.raises(ValueError, match=r"embeddings\.token\.weight.*\(50, 16\).*\(51, 16\)"):
        load_hf_bert(BertModel(tiny_config()), wrong)
    # the int64 buffer transformers keeps is skipped
    load_hf_bert(BertModel(tiny_config()), state | {"embeddings.position_ids": torch.arange(16)[None]})


def test_bad_input_gives_clear_errors():
    model = BertModel(tiny_config())
    ids = torch.randint(50, (2, 5))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(ids + 50)
    with pytest.raises(ValueError, match="max_position=16"):
        model(torch.randint(50, (1, 17)))
    with pytest.raises(ValueError, match=r"attention_mask must have the shape of input_ids \(2, 5\)"):
        model(ids, torch.ones(2, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="attention_mask must be 0/1 integers or bool"):
        model(ids, torch.ones(2, 5))
    with pytest.raises(TypeError, match="integer tensor"):
        model(ids.float())


def test_embeddings_match_functional_oracle():
    torch.manual_seed(1)
    embeddings = BertEmbeddings(tiny_config(eps=1e-5)).double()
    with torch.no_grad():
        embeddings.norm.weight.normal_()
        embeddings.norm.bias.normal_()
    ids, types = torch.randint(50, (3, 6)), torch.randint(2, (3, 6))
    expected = F.layer_norm(embeddings.token.weight[ids] + embeddings.position.weight[:6] + embeddings.segment.weight[types],
                            (16,), embeddings.norm.weight, embeddings.norm.bias, 1e-5)
    assert (embeddings(ids, types) - expected).abs().max() < 1e-12


def test_post_ln_matches_transformers_on_random_weights():
    from transformers import BertModel as HFBertModel

    torch.manual_seed(2)
    hf = HFBertModel(tiny_config().to_hf()).double().eval()
    ours = bert_from_hf(hf, torch.float64)
    ids, mask = torch.randint(50, (2, 9)), torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        received, _ = ours(ids, mask)
    assert (received - expected)[mask.bool()].abs().max() < 1e-10


def test_mask_tokens_proportions_and_invariants():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 128), generator=generator)
    ids[:, 0], ids[:, -1], ids[:, 100:] = 2, 3, 0  # [CLS], [SEP], [PAD]
    masked, labels = mask_tokens(ids, [0, 2, 3], 4, 1000, generator=generator)
    maskable = ~torch.isin(ids, torch.tensor([0, 2, 3]))
    chosen = labels != -100
    assert not (chosen & ~maskable).any()
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])
    assert abs(chosen.sum() / maskable.sum() - 0.15) < 0.01
    share_mask = (masked[chosen] == 4).float().mean()
    share_same = (masked[chosen] == ids[chosen]).float().mean()
    assert abs(share_mask - 0.8) < 0.02 and abs(share_same - 0.1) < 0.015


def test_nsp_pairs_layout_and_balance():
    rng = random.Random(0)
    passages = [[[10 * p + s, 1000 + s] for s in range(6)] for p in range(50)]
    pairs = make_nsp_pairs(passages, cls_id=2, sep_id=3, rng=rng)
    assert len(pairs) == 50 * 5
    labels = [pair["next_sentence_label"] for pair in pairs]
    assert 0.4 < sum(labels) / len(labels) < 0.6
    for pair in pairs:
        ids, types = pair["input_ids"], pair["token_type_ids"]
        assert ids[0] == 2 and ids[3] == 3 and ids[-1] == 3 and types == [0, 0, 0, 0, 1, 1, 1]
        a, b = ids[1] // 10, ids[4] // 10  # passage of A and of B
        assert (a == b) == (pair["next_sentence_label"] == 0)
        if pair["next_sentence_label"] == 0:
            assert ids[4] == ids[1] + 1


def test_fill_mask_checkpoint_loads_offline_and_checks_its_files(tmp_path, monkeypatch):
    import shutil

    import tfs.data
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    folder = tfs.data.bert_mlm_path()
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 6_000_000, f"the checkpoint is {size / 1e6:.1f} MB (its budget: 6 MB of the course's 25)"
    model = AutoModelForMaskedLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    ours = bert_from_hf(model)  # the package's model reads it back: same logits
    batch = tokenizer(["to be or not to [MASK] .", "a [MASK] movie"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
        received, _ = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    assert (received - expected)[real].abs().max() < 1e-4
    results = pipeline("fill-mask", model=str(folder), device="cpu")("to be or not to [MASK].")
    assert len(results) == 5 and all("token_str" in r for r in results)

    copy = tmp_path / "assets" / "checkpoints" / "bert-mlm"
    shutil.copytree(folder, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    monkeypatch.setenv("TFS_ASSETS_DIR", str(tmp_path / "assets"))
    with pytest.raises(tfs.data.AssetError, match="config.json is corrupted"):
        tfs.data.bert_mlm_path()


def _train_script():
    import importlib.util

    from course import REPO

    spec = importlib.util.spec_from_file_location("train_bert_mlm", REPO / "scripts" / "train_bert_mlm.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


TINY_RUN = ["--every-line", "50", "--vocab", "300", "--d-model", "16", "--layers", "1", "--heads", "2",
            "--batch", "4", "--long-batch", "2", "--long-every", "2", "--steps", "2", "--warmup", "1",
            "--eval-every", "0", "--log-every", "1"]


def test_train_script_refuses_a_folder_that_holds_files(tmp_path, capsys):
    script = _train_script()
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as stopped:
        script.main(["--out", str(tmp_path), *TINY_RUN])
    assert stopped.value.code == 2
    assert "already holds files" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "keep me"


def test_train_script_tiny_run_writes_a_checkpoint_that_loads(tmp_path, capsys):
    import hashlib

    from transformers import AutoModelForMaskedLM, AutoTokenizer

    script = _train_script()
    out = tmp_path / "bert-mlm"
    threads = torch.get_num_threads()
    try:
        result = script.main(["--out", str(out), *TINY_RUN])
        printed = capsys.readouterr().out
        (out / "notes.txt").write_text("not the script's")
        again = script.main(["--out", str(out), "--overwrite", *TINY_RUN])
    finally:
        torch.set_num_threads(threads)  # the script runs on one thread
    assert "step 1/2: train loss" in printed and "step 2/2: train loss" in printed  # plain lines: stdout is no TTY
    names = set(result["names"])
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "train_log.json", "SHA256SUMS"} <= names
    assert names | {"notes.txt"} == {p.name for p in out.iterdir()}
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    card = (out / "README.md").read_text()
    header = card.split("---")[1]
    for field in ("license:", "language:", "library_name: transformers", "pipeline_tag: fill-mask", "tags:"):
        assert field in header
    model = AutoModelForMaskedLM.from_pretrained(out, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tokenizer) and model.config.hidden_size == 16
    after = result["after"]
    assert sum(after[kind]["n"] for kind in script.KINDS) == after["all"]["n"] > 0
    assert after["unchanged"]["baseline_accuracy"] == 1.0 and after["random"]["baseline_accuracy"] == 0.0
    assert (out / "notes.txt").read_text() == "not the script's"  # --overwrite replaced only the script's files
    assert set(again["names"]) == names and "notes.txt" not in (out / "SHA256SUMS").read_text()


def test_train_script_scores_a_context_free_model_at_the_unigram_baseline():
    """A model whose logits are the training log-frequencies whatever the input is the unigram baseline itself on
    [MASK] positions: same loss, same top-1 accuracy."""
    from torch import nn

    script = _train_script()
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(5, 60, (40, 12), generator=generator)
    rows[:, 0], rows[:, -1] = 2, 3
    specials = [0, 1, 2, 3, 4]
    unigram = script.unigram_log_probs(rows[:30], 60, specials)

    class ContextFree(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.bert = lambda ids: (torch.zeros(*ids.shape, 1), None)
            self.mlm = lambda hidden: unigram.float().clamp(min=-1e4).expand(len(hidden), -1) * self.scale

    report = script.evaluate(ContextFree(), rows[30:], specials, 4, unigram, 0.5, seed=1, batch=4)
    assert report["mask"]["n"] > 0
    assert report["mask"]["loss"] == pytest.approx(report["mask"]["baseline_loss"], abs=1e-5)
    assert report["mask"]["accuracy"] == pytest.approx(report["mask"]["baseline_accuracy"])


def test_shipped_checkpoint_scores_what_its_card_says():
    """The validation numbers in the shipped log, recomputed from the shipped files (float16 weights) with the
    script's own split, masks and baselines; and the bar they were trained to clear: [MASK] top-1 >= 0.25."""
    import json
    import re

    import tfs.data
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    script = _train_script()
    folder = tfs.data.bert_mlm_path()
    log = json.loads((folder / "train_log.json").read_text())
    recorded = log["evaluations"][-1]
    seed = int(re.search(r"--seed (\d+)", log["command"]).group(1)) if "--seed" in log["command"] else 0
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = bert_from_hf(AutoModelForMaskedLM.from_pretrained(folder, dtype=torch.float32)).eval()
    stream = script.token_stream(tokenizer, script.sentences())
    train_ids, val_ids = script.split_stream(stream, script.VAL_BLOCK, script.val_blocks(stream), seed)
    cls, sep, mask, specials = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id,
                                tokenizer.all_special_ids)
    train_short = script.rows_of(train_ids, 16, cls, sep)
    unigram = script.unigram_log_probs(train_short, len(tokenizer), specials)
    share = script.copy_share(train_short, specials, mask, len(tokenizer), seed + 3)
    assert share == pytest.approx(log["copy_share"])
    val_rows = script.rows_of(val_ids, model.config.max_position, cls, sep)
    report = script.evaluate(model, val_rows, specials, mask, unigram, share, seed + 2)
    for kind in (*script.KINDS, "all"):
        assert report[kind]["n"] == recorded[kind]["n"]
        assert report[kind]["baseline_loss"] == pytest.approx(recorded[kind]["baseline_loss"], abs=1e-6)
        assert report[kind]["loss"] == pytest.approx(recorded[kind]["loss"], abs=0.01)  # float16 weights
        assert report[kind]["accuracy"] == pytest.approx(recorded[kind]["accuracy"], abs=0.005)
    assert report["mask"]["accuracy"] >= 0.25 and report["mask"]["loss"] < report["mask"]["baseline_loss"] - 1.0
