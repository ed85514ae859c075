"""Chapter 00's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

MUTANTS = [
    Mutant("sample-std", "standardize", "correction=0", "correction=1", r"population|correction|unbiased|n - 1"),
    Mutant("rows-not-columns", "standardize", "dim=0, keepdim=True)                  #",
           "dim=1, keepdim=True)                  #", r"column|dim"),
    Mutant("no-eps", "standardize", "var + eps", "var", r"constant column|zero variance|var(iance)? \+ eps", "rare"),
    Mutant("mean-not-subtracted", "standardize", "return (x - mean) /", "return x /", r"subtract|centr|mean"),
    Mutant("std-of-whole-tensor", "standardize", "x.var(dim=0, correction=0, keepdim=True)",
           "x.var(correction=0)", r"whole|all (the )?elements|every element|per column|each column"),
    Mutant("eps-outside-sqrt", "standardize", "torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)",
           r"inside the square root|under the square root|sqrt\(var(iance)? \+ eps\)|eps.*(inside|under)", "rare"),
    Mutant("keys-not-transposed", "batched_scores", "keys.transpose(-2, -1)", "keys.transpose(0, 1)",
           r"transpose|swap|last two"),
    Mutant("keys-dot-T", "batched_scores", "keys.transpose(-2, -1)", "keys.T", r"\.T\b|\.mT|every dim|reverse"),
    Mutant("scores-transposed", "batched_scores", "return queries @ keys.transpose(-2, -1)",
           "return keys @ queries.transpose(-2, -1)", r"transposed|\(batch, n_keys, n_queries\)|keys @ queries|order"),
    Mutant("scaled-scores", "batched_scores", "return queries @ keys.transpose(-2, -1)",
           "return queries @ keys.transpose(-2, -1) / queries.shape[-1] ** 0.5", r"scal|sqrt", "rare"),
    Mutant("grad-not-zeroed", "fit_line", "        w.grad.zero_()\n        b.grad.zero_()\n", "",
           r"zero|accumulat"),
    Mutant("loss-after-update", "fit_line", "        losses.append(loss.item())\n", "", r"losses|length|steps"),
    Mutant("loss-tensor-not-float", "fit_line", "losses.append(loss.item())", "losses.append(loss)",
           r"\.item\(\)|python float|tensor"),
    Mutant("gradient-ascent", "fit_line", "w -= lr * w.grad\n            b -= lr * b.grad",
           "w += lr * w.grad\n            b += lr * b.grad", r"against the gradient|sign|ascent|diverg|went up|did not go down"),
    Mutant("intercept-not-updated", "fit_line", "            b -= lr * b.grad\n", "",
           r"intercept|\bb\b.*(update|step)|update.*\bb\b"),
    Mutant("sum-not-mean", "fit_line", "** 2).mean()", "** 2).sum()", r"mean squared|\.mean\(\)|sum"),
    Mutant("one-step-short", "fit_line", "range(steps)", "range(steps - 1)", r"length|\bsteps\b|one per step", "rare"),
]
