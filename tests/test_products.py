"""The oneDNN float32 product equals torch's plain product up to rounding, in every
layout the output layer gives it, and is chosen by the CPU's vendor."""

import pytest
import torch

from seq2seq.hardware import cpu_vendor
from seq2seq.nn import products


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "transposed weight", "transposed both"])
def test_onednn_linear_equals_the_plain_product(monkeypatch, bias, layout):
    torch.manual_seed(0)
    x, weight = torch.randn(67, 40), torch.randn(301, 40)
    b = torch.randn(301) if bias else None
    if layout != "contiguous":
        weight = weight.t().contiguous().t()  # the same matrix, as a transposed view
    if layout == "transposed both":
        x = x.t().contiguous().t()
    want = x @ weight.t() + (b if bias else 0)
    monkeypatch.setattr(products, "onednn_fp32", lambda: True)
    got = products.linear(x, weight, b)
    assert got.shape == (67, 301)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_empty_and_other_dtypes_take_the_plain_product(monkeypatch):
    monkeypatch.setattr(products, "onednn_fp32", lambda: True)
    assert products.linear(torch.randn(0, 8), torch.randn(5, 8)).shape == (0, 5)
    x, w = torch.randn(3, 8, dtype=torch.bfloat16), torch.randn(5, 8, dtype=torch.bfloat16)
    assert products.linear(x, w).dtype == torch.bfloat16


def test_the_vendor_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2\n")
    assert cpu_vendor(str(info)) == "AuthenticAMD"
    assert cpu_vendor(str(tmp_path / "missing")) is None
