"""Seeding, device selection and the environment report used in chapter 00."""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every GPU) so a notebook reruns identically.

    ``PYTHONHASHSEED`` is also set, which fixes string hashing in *subprocesses* started afterwards
    (data-loader workers, say); this interpreter's own hashing was fixed when it started.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    os.environ["PYTHONHASHSEED"] = str(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The device the course runs on: ``prefer`` if given, else CUDA, else MPS, else CPU.

    Set the environment variable ``TFS_DEVICE=cpu`` to force one without editing a notebook.
    """
    choice = prefer or os.environ.get("TFS_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but PyTorch sees no CUDA GPU here.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but the MPS backend is not available here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def environment_report() -> dict[str, str]:
    """Versions and device, as printed by ``python -m tfs env`` and chapter 00."""
    import matplotlib
    import transformers

    device = get_device()
    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
        "cpu threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    return report
