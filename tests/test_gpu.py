"""The CUDA paths: training in fp32/fp16/bf16, and decoding on the GPU.

They need a CUDA GPU, so on a machine without one (CI included) they are skipped with
that reason; everything they build on is covered by the CPU suite. Run them on a GPU
machine with `python -m pytest -q tests/test_gpu.py`.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import PINNED_TINY_MODEL, train_tiny
from test_attention import batch, tiny_model
from test_distributed import train_losses

from seq2seq.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

NO_RANDOMNESS = ["model.dropout=0", "trainer.log_every=1"]


def losses(run_dir: Path) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return train_losses([json.loads(line) for line in lines])


def translate(checkpoint: Path, lines: list[str], *flags: str) -> list[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq.commands.translate",
            "--checkpoint",
            str(checkpoint),
            *("--precision", "fp32"),  # not auto (bf16 on most GPUs); a later one in flags wins
            *flags,
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("cpu"), [*PINNED_TINY_MODEL, *NO_RANDOMNESS])


def test_cuda_training_follows_the_cpu_loss_curve(cpu_run: Path, tmp_path: Path) -> None:
    """Same seed, same batches: fp32 on the GPU differs from the CPU only by rounding."""
    gpu_run = train_tiny(
        tmp_path / "gpu", [*PINNED_TINY_MODEL, *NO_RANDOMNESS, "trainer.device=cuda"]
    )
    cpu, gpu = losses(cpu_run), losses(gpu_run)
    assert sorted(gpu) == sorted(cpu)
    for step, loss in cpu.items():
        assert gpu[step] == pytest.approx(loss, rel=2e-3), step


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_training_learns(precision: str, tmp_path: Path) -> None:
    run = train_tiny(
        tmp_path / precision,
        [
            *NO_RANDOMNESS,
            "model.embedding_size=64",  # tied embeddings: equal to the decoder's output
            "trainer.device=cuda",
            f"trainer.precision={precision}",
        ],
        exp="en_de",
    )
    curve = losses(run)
    first, last = curve[min(curve)], curve[max(curve)]
    assert last < first - 0.5, curve
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    scaler = state.get("scaler")
    if precision == "fp16":  # the loss scale is part of the resumable state
        assert scaler and scaler["scale"] > 0
    else:
        assert not scaler


def test_gpu_decoding_equals_cpu_decoding(cpu_run: Path) -> None:
    source = [
        "A man is riding a bicycle.",
        "Two dogs play in the snow.",
        "A woman in a red dress is singing on a stage.",
        "Children are sitting on the grass.",
    ]
    checkpoint = cpu_run / "checkpoints" / "last.pt"
    for search in (["--search", "greedy"], ["--search", "beam", "--beam-size", "5"]):
        on_cpu = translate(checkpoint, source, *search, "--device", "cpu")
        on_gpu = translate(checkpoint, source, *search, "--device", "cuda")
        assert on_gpu == on_cpu, search
    fp16 = translate(checkpoint, source, "--device", "cuda", "--precision", "fp16")
    assert len(fp16) == len(source)


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_input_feeding_decoder_on_cuda_equals_cpu(cell: str, monkeypatch) -> None:
    """The split input projection hands a per-row bias to the cell, which CUDA's fused
    LSTM/GRU kernels refuse; the cells then use their plain gate math (logits and
    gradients equal)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compare full fp32
    src, lengths, tgt = batch()
    results = []
    for device in ("cpu", "cuda"):
        model = copy.deepcopy(tiny_model("bahdanau", {}, cell=cell, dropout=0.0)).to(device)
        logits = model(src.to(device), lengths, tgt.to(device))
        logits.pow(2).mean().backward()
        grads = [p.grad.cpu() for p in model.parameters() if p.grad is not None]
        results.append((logits.detach().cpu(), grads))
    (cpu, cpu_grads), (gpu, gpu_grads) = results
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
    for a, b in zip(gpu_grads, cpu_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
