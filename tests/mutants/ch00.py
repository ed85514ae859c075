"""Chapter 00's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

MUTANTS = [
    Mutant("sample-std", "standardize", "correction=0", "correction=1", r"population|correction|unbiased|n - 1"),
    Mutant("rows-not-columns", "standardize", "dim=0, keepdim=True)                  #",
           "dim=1, keepdim=True)                  #", r"column|dim"),
    Mutant("no-eps", "standardize", "var + eps", "var", r"constant column|zero variance|var(iance)? \+ eps", "rare"),
    Mutant("keys-not-transposed", "batched_scores", "keys.transpose(-2, -1)", "keys.transpose(0, 1)",
           r"transpose|swap|last two"),
    Mutant("grad-not-zeroed", "fit_line", "        w.grad.zero_()\n        b.grad.zero_()\n", "",
           r"zero|accumulat"),
    Mutant("loss-after-update", "fit_line", "        losses.append(loss.item())\n", "", r"losses|length|steps"),
]
