"""The learner-friendly checks: what they accept, and what their failure messages say."""

import math

import pytest
import torch
import torch.nn.functional as F

from tfs.teaching.checks import CheckError, check_close, check_shape, check_true, tolerance
from tfs.teaching.probes import attention_mistakes, softmax_mistakes


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(CheckError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_check_error_is_an_assertion_error():
    assert issubclass(CheckError, AssertionError)


def test_passes_on_equal_tensors():
    x = torch.randn(3, 4)
    check_close(x.clone(), x, "x")


def test_none_says_forgotten_return():
    message = failure(check_close, None, torch.zeros(2), "f(x)")
    assert "received None" in message and "return" in message


def test_non_tensor_is_named():
    message = failure(check_close, [1.0, 2.0], torch.zeros(2), "f(x)")
    assert "expected a torch.Tensor, received a list" in message


def test_shape_mismatch_reports_both_shapes_and_transpose_hint():
    message = failure(check_close, torch.zeros(4, 3), torch.zeros(3, 4), "f(x)")
    assert "expected (3, 4), received (4, 3)" in message
    assert "transpose" in message


def test_shape_mismatch_extra_singleton_dimension():
    message = failure(check_shape, torch.zeros(3, 1, 4), (3, 4), "f(x)")
    assert "extra dimension of size 1" in message


def test_dtype_mismatch():
    message = failure(check_close, torch.zeros(2, dtype=torch.float32), torch.zeros(2, dtype=torch.float64), "f(x)")
    assert "expected torch.float64, received torch.float32" in message


def test_worst_element_index_and_values():
    expected = torch.zeros(2, 3)
    received = expected.clone()
    received[1, 2] = 0.5
    received[0, 0] = 0.1
    message = failure(check_close, received, expected, "f(x)", hint="look at the last column")
    assert "2 of 6 elements differ" in message
    assert "at index (1, 2): expected 0, received 0.5" in message
    assert "Hint: look at the last column" in message


def test_nan_is_reported_as_overflow_suspect():
    expected = torch.tensor([0.5, 0.5])
    message = failure(check_close, torch.tensor([float("nan"), 0.5]), expected, "softmax")
    assert "at index (0,)" in message and "NaN" in message


def test_matching_nan_and_inf_pass():
    x = torch.tensor([float("nan"), float("inf"), float("-inf"), 1.0])
    check_close(x.clone(), x, "x")


def test_inf_where_finite_expected_fails():
    message = failure(check_close, torch.tensor([float("inf")]), torch.tensor([1.0]), "x")
    assert "1 of 1 elements differ" in message


def test_check_true_message_and_hint():
    message = failure(check_true, False, "mask", "must be bool", hint="use torch.bool")
    assert message.startswith("✗ mask: must be bool") and "Hint: use torch.bool" in message
    check_true(True, "mask", "never shown")


def test_unknown_tolerance_name():
    with pytest.raises(KeyError, match="unknown operation"):
        tolerance("nope", torch.float32)


# Correct code written another way must never fail its check.

def softmax_logsumexp(x, dim=-1):
    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_written_another_way_passes(dtype):
    torch.manual_seed(0)
    x = torch.randn(8, 16, 33, dtype=dtype) * 10
    check_close(softmax_logsumexp(x), torch.softmax(x, -1), "softmax", op="softmax")


def attention_einsum_rsqrt(q, k, v):
    scores = torch.einsum("...qd,...kd->...qk", q, k) * torch.rsqrt(torch.tensor(q.shape[-1], dtype=q.dtype))
    return torch.einsum("...qk,...kd->...qd", scores.softmax(-1), v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d_k", [8, 64, 256])
def test_attention_written_another_way_passes(dtype, d_k):
    torch.manual_seed(1)
    q, k, v = (torch.randn(4, 3, 50, d_k, dtype=dtype) for _ in range(3))
    check_close(attention_einsum_rsqrt(q, k, v), F.scaled_dot_product_attention(q, k, v), "attention", op="attention")


def test_diagnosis_names_softmax_over_wrong_dim():
    x = torch.randn(3, 5)
    message = failure(check_close, torch.softmax(x, 0), torch.softmax(x, -1), "softmax", mistakes=softmax_mistakes(x, -1))
    assert "softmax over dim=0 instead of dim=1" in message


def test_diagnosis_names_missing_scale():
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 4, 16) for _ in range(3))
    unscaled = torch.softmax(q @ k.transpose(-2, -1), -1) @ v
    message = failure(check_close, unscaled, F.scaled_dot_product_attention(q, k, v), "attention",
                      op="attention", mistakes=attention_mistakes(q, k, v))
    assert "no scaling" in message and math.sqrt(16) == 4


def test_a_mistake_the_input_cannot_tell_apart_is_not_named():
    """Found by the third held-out list (chapter 12): a float32 step on float64 inputs was named "eps outside the
    root", a mistake whose result equals the right answer on that input. Such a mistake must not be blamed."""
    x = torch.randn(4, 6, dtype=torch.float64)
    expected = x * 2
    received = (x.float() * 2).double() + 1e-6  # a float32-level miss, nothing else
    message = failure(check_close, received, expected, "f(x)",
                      mistakes={"the same answer on this input": expected + 1e-9, "the doubled answer": expected * 2})
    assert "the same answer on this input" not in message, message
    named = failure(check_close, expected * 2, expected, "f(x)",
                    mistakes={"the same answer on this input": expected + 1e-9, "the doubled answer": expected * 2})
    assert "diagnosis this looks like the doubled answer" in named


def test_failed_check_in_a_notebook_shows_the_message_not_the_internals():
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[
        new_code_cell("import torch\nfrom tfs.teaching.checks import check_close"),
        new_code_cell('check_close(torch.zeros(2), torch.ones(2), "my_function(x)", hint="look again")'),
        new_code_cell('print("still running")'),
    ])
    NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True).execute()
    error = notebook.cells[1].outputs[0]
    assert error.output_type == "error" and error.ename == "CheckError"
    shown = "\n".join(error.traceback)
    assert "✗ my_function(x): values differ" in shown and "Hint: look again" in shown
    assert 'check_close(torch.zeros(2), torch.ones(2), "my_function(x)"' in shown  # the learner's own line
    assert "checks.py" not in shown
    assert notebook.cells[2].outputs[0].text == "still running\n"
    nbformat.validate(notebook)


def test_call_turns_a_crash_inside_the_learner_function_into_a_message():
    from tfs.teaching.checks import call

    def batched_scores(queries, keys):
        return queries @ keys  # forgot the transpose

    with pytest.raises(CheckError) as info:
        call(batched_scores, torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), hint="transpose the keys")
    message = str(info.value)
    assert "✗ batched_scores: your function raised RuntimeError when called with ((2, 3, 4), (2, 5, 4))" in message
    assert "Hint: transpose the keys" in message


def test_call_names_a_raising_module_without_a_name_by_its_class():
    from tfs.teaching.checks import call

    class Head(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(CheckError) as info:
        call(Head(), torch.zeros(3, 4))
    assert str(info.value).startswith("✗ Head: your function raised RuntimeError when called with ((3, 4)).")


def test_call_lets_an_unanswered_exercise_through():
    from tfs.teaching.checks import call

    def stub():
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        call(stub)


def test_unpack_names_what_came_back():
    from tfs.teaching.checks import unpack

    assert unpack((1, 2), 2, "f()") == (1, 2)
    message = failure(unpack, torch.zeros(3), 2, "attention(q, k, v)", hint="return weights @ v, weights")
    assert "expected a tuple of 2 values, received a tensor of shape (3,)" in message


def test_a_diagnosis_replaces_the_generic_hint():
    x = torch.randn(3, 5)
    message = failure(check_close, torch.softmax(x, 0), torch.softmax(x, -1), "softmax", op="softmax",
                      mistakes=softmax_mistakes(x, -1), hint="generic advice")
    assert "softmax over dim=0" in message and "generic advice" not in message


def test_a_failing_check_names_the_notebook_cell_not_a_temporary_file():
    """JupyterLab shows ``In [7]`` beside a cell, not ipykernel's ``/tmp/ipykernel_<pid>/<hash>.py``."""
    from IPython.core.compilerop import CachingCompiler

    from tfs.teaching.checks import _show_check_error

    compiler = CachingCompiler()
    source = "from tfs.teaching.checks import check_true\n\ncheck_true(False, 'softmax', 'rows do not sum to 1.')\n"
    filename = compiler.cache(source, number=7)  # what IPython does for the cell run as In[7]
    shown = []

    class Shell:
        compile = compiler

        def _showtraceback(self, etype, value, lines):
            shown.extend(lines)

    try:
        exec(compile(source, filename, "exec"), {})
    except CheckError as error:
        _show_check_error(Shell(), CheckError, error, error.__traceback__)
    text = "".join(shown)
    assert "Cell In[7], line 3" in text and filename not in text, text
    assert "check_true(False, 'softmax'" in text and "✗ softmax: rows do not sum to 1." in text, text
    assert "tfs/teaching" not in text, text


def test_the_closest_of_several_matching_mistakes_is_named():
    """Moved from chapter 12's own visible checks into check_close: of two known mistakes that both match, the one
    the received values are nearest to is named, whatever their order."""
    x = torch.randn(3, 4, dtype=torch.float64)
    expected = x * 2
    mistakes = {"the coarse neighbour": x * 3 + 1e-4, "the exact mistake": x * 3}
    message = failure(check_close, x * 3, expected, "f(x)", mistakes=mistakes)
    assert "this looks like the exact mistake" in message, message


def test_a_float64_miss_at_float32_rounding_is_named_a_float32_step():
    """Moved from chapter 12's own visible checks into check_close: a float64 result off by float32's rounding, with
    no known mistake that explains it, is named a float32 step; a float32 result or a larger miss is not."""
    from tfs.teaching.checks import FLOAT32_STEP

    x = torch.randn(4, 6, dtype=torch.float64)
    expected = torch.exp(x)
    received = torch.exp(x.float()).double()                      # one step in float32
    message = failure(check_close, received, expected, "exp(x)", hint="generic advice")
    assert FLOAT32_STEP in message and "generic advice" not in message, message
    assert FLOAT32_STEP not in failure(check_close, expected + 1e-3, expected, "exp(x)")
    assert FLOAT32_STEP not in failure(check_close, torch.exp(x.float()) + 1e-5, torch.exp(x.float()), "exp(x)")
    named = failure(check_close, received, expected, "exp(x)", mistakes={"exp in float32": received})
    assert "this looks like exp in float32" in named and FLOAT32_STEP not in named, named
