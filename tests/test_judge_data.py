"""Judges against data written by hand instead of a collector: NaN, partial structures, deflate bombs.

A collector can be replaced in the student's kernel, so a judge may receive any plain data. Each attack here was
found to pass (or to blow up the judge's memory) before the judges validated their data; the honest data of the
reference code must still pass beside it."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from tfs.grader import judging, run_judge


# ------------------------------------------------------------------------------------------ deflate bombs

def deflate_bomb(path, nbytes: int) -> None:
    """A torch.save archive of ``nbytes`` zero bytes, its members deflated (a few KiB on disk per MiB)."""
    buffer = io.BytesIO()
    torch.save(torch.zeros(nbytes, dtype=torch.uint8), buffer)
    saved = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w") as bomb:
        for member in saved.infolist():
            bomb.writestr(member.filename, saved.read(member), compress_type=zipfile.ZIP_DEFLATED)


def test_a_deflate_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(judging, "MAX_DATA_BYTES", 2**20)  # 1 MiB here stands for the real 256 MiB
    deflate_bomb(tmp_path / "k.pt", 8 * 2**20)
    assert (tmp_path / "k.pt").stat().st_size < 2**20 // 16
    loads = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: loads.append(args))
    verdict = run_judge.verdict("ch06.batches", tmp_path / "k.pt", tmp_path / "k.error")
    assert not verdict["passed"] and "8 MiB once unpacked" in verdict["message"], verdict
    assert loads == [], "torch.load ran on the bomb"


def test_data_that_is_not_a_torch_archive_is_refused(tmp_path):
    (tmp_path / "k.pt").write_bytes(b"\x80\x02}q\x00.")  # a bare pickle
    verdict = run_judge.verdict("ch06.batches", tmp_path / "k.pt", tmp_path / "k.error")
    assert not verdict["passed"] and "not a torch.save archive" in verdict["message"], verdict


def test_honest_data_under_the_cap_is_read(tmp_path):
    data = {"x": torch.arange(6.0).reshape(2, 3), "names": ["a", "b"], "n": 3}
    judging.write_data(data, tmp_path / "k.pt")
    read = judging.read_data(tmp_path / "k.pt")
    assert torch.equal(read["x"], data["x"]) and read["names"] == ["a", "b"] and read["n"] == 3
