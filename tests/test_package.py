"""Seeding, device selection, the environment report, plots and the reference blocks."""

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn.functional as F

from tfs.nn import attention as blocks
from tfs.teaching import plots
from tfs.__main__ import main
from tfs.teaching.checks import check_close
from tfs.utils import environment_report, get_device, seed_everything

REPO = Path(__file__).resolve().parents[1]


def test_seed_everything_repeats_random_draws():
    seed_everything(123)
    first = torch.randn(5)
    seed_everything(123)
    assert torch.equal(first, torch.randn(5))


def test_get_device_defaults_to_an_available_device(monkeypatch):
    monkeypatch.delenv("TFS_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert get_device().type == expected


def test_get_device_honours_environment(monkeypatch):
    monkeypatch.setenv("TFS_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_get_device_refuses_missing_cuda():
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        get_device("cuda")


def test_environment_report_and_cli(capsys):
    report = environment_report()
    assert report["torch"] == torch.__version__
    assert main(["env"]) == 0
    assert "torch" in capsys.readouterr().out


def test_plot_attention_labels_and_annotations():
    weights = torch.softmax(torch.randn(3, 4), -1)
    ax = plots.plot_attention(weights, ["a", "b", "c"], ["w", "x", "y", "z"], title="t")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert len(ax.texts) == 12 and ax.get_title() == "t"


def test_plot_attention_rejects_bad_input():
    with pytest.raises(ValueError, match="one \\(queries, keys\\) matrix"):
        plots.plot_attention(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="2 labels for 3"):
        plots.plot_attention(torch.zeros(3, 3), ["a", "b"])


def test_plot_losses_draws_each_curve():
    ax = plots.plot_losses({"train": [3, 2, 1], "valid": [3, 2.5, 2]})
    assert len(ax.lines) == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_attention_matches_pytorch(dtype):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, dtype=dtype) for _ in range(3))
    mask = blocks.causal_mask(6)
    out, weights = blocks.scaled_dot_product_attention(q, k, v, mask)
    check_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), "attention", op="attention")
    check_close(weights.sum(-1), torch.ones(2, 3, 6, dtype=dtype), "row sums", op="softmax")


def test_reference_attention_fully_masked_row_is_zero():
    q, k, v = (torch.randn(1, 3, 4) for _ in range(3))
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    out, weights = blocks.scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(out[0, 1], torch.zeros(4)) and torch.equal(weights[0, 1], torch.zeros(3))
    check_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), "attention", op="attention")


def test_reference_softmax_matches_pytorch_and_survives_large_logits():
    x = torch.tensor([[1000.0, 0.0], [1.0, 0.0]])
    check_close(blocks.softmax(x), torch.softmax(x, -1), "softmax", op="softmax")
    check_close(blocks.softmax(x, temperature=2.0), torch.softmax(x / 2.0, -1), "softmax", op="softmax")


def test_the_grader_host_and_the_sandbox_launcher_do_not_import_torch():
    """nbgrader's process (the course configuration and its preprocessors) and ``python -m tfs.grader.isolation`` start
    for every grading run and every kernel: importing torch there cost 1.3-2.2 s each time and judged nothing."""
    code = ("import sys\nfrom traitlets.config.loader import PyFileConfigLoader\n"
            f"PyFileConfigLoader('nbgrader_config.py', path={str(REPO / 'autograder')!r}).load_config()\n"
            "import tfs, tfs.grader.isolation, tfs.grader.judged, tfs.grader.grading, tfs.grader.parallel\n"
            "print(sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the grader's host side imported {result.stdout.strip()}"
