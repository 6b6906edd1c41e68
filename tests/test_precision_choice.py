"""Which precision runs on which hardware: bf16 where the CPU has it, refused where it has
none, and `auto` choosing for the CPU it finds. The CPU flags are injected, so every
branch runs on any machine."""

from __future__ import annotations

import logging
from argparse import Namespace

import pytest
from _models import PINNED_TINY_MODEL, TINY, make_config

import seq2seq
from seq2seq import hardware
from seq2seq.commands.common import decoding_precision, load_translator
from seq2seq.hardware import blas_pinned_below_cpu, cpu_bf16, cpu_flags, resolve_precision
from seq2seq.training.trainer import Trainer

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
AVX512_BF16 = AVX512 | {"avx512_bf16"}
AMX = AVX512 | {"amx_tile", "amx_bf16"}


@pytest.mark.parametrize(
    "flags,kind",
    [(AVX2, "none"), (AVX512, "emulated"), (AVX512_BF16, "native"), (AMX, "native")],
    ids=["avx2", "avx512", "avx512_bf16", "amx"],
)
def test_how_a_cpu_runs_bf16_follows_its_flags(flags, kind):
    assert cpu_bf16(flags) == kind


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nflags : other\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    "flags,chosen", [(AVX2, "fp32"), (AVX512, "fp32"), (AVX512_BF16, "bf16"), (AMX, "bf16")]
)
def test_auto_chooses_bf16_only_where_the_cpu_has_it_natively(flags, chosen, caplog):
    with caplog.at_level(logging.INFO, logger="seq2seq.hardware"):
        assert resolve_precision("cpu", "auto", "trainer.precision", flags) == chosen
    native = "has native bf16" if chosen == "bf16" else "has no native bf16"
    assert f"trainer.precision=auto: {chosen}, because this CPU {native}" in caplog.text


def test_bf16_is_refused_without_bf16_and_warned_where_only_emulated(caplog):
    with pytest.raises(ValueError, match=r"^--precision=bf16: this CPU has no bf16 .*=auto\.$"):
        resolve_precision("cpu", "bf16", "--precision", AVX2)
    with caplog.at_level(logging.WARNING, logger="seq2seq.hardware"):
        assert resolve_precision("cpu", "bf16", "--precision", AVX512) == "bf16"
    assert "bf16 is emulated and likely slower than fp32" in caplog.text
    caplog.clear()
    assert resolve_precision("cpu", "bf16", "--precision", AMX) == "bf16"
    assert caplog.text == ""
    for flags in (AVX2, AMX):
        assert resolve_precision("cpu", "fp32", "--precision", flags) == "fp32"
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        resolve_precision("cpu", "fp16", "--precision", AMX)


def test_auto_is_the_default():
    from seq2seq.serving.settings import ModelEntry

    assert seq2seq.load_config().trainer.precision == "auto"
    assert ModelEntry(checkpoint="model").precision == "auto"


def test_int8_quantization_makes_auto_fp32_and_refuses_bf16(caplog):
    with caplog.at_level(logging.INFO):
        assert decoding_precision("cpu", "auto", "int8", AMX) == "fp32"
        assert decoding_precision("cpu", "auto", "none", AMX) == "bf16"
    assert "--precision=auto: fp32, because --quantize int8 needs fp32" in caplog.text
    assert decoding_precision("cpu", "fp32", "int8", AMX) == "fp32"
    for precision in ("bf16", "fp16"):
        with pytest.raises(
            ValueError, match=f"^--quantize int8 needs --precision fp32 .*{precision}$"
        ):
            decoding_precision("cpu", precision, "int8", AMX)


@pytest.fixture
def tiny(tmp_path):
    return make_config([*TINY, *PINNED_TINY_MODEL, "trainer.precision=auto"])


def test_the_trainer_and_translate_resolve_auto_for_the_cpu_they_find(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: AVX2)
    trainer = Trainer(tiny, tmp_path / "avx2")
    trainer.setup()
    assert trainer.precision == trainer.updater.precision == "fp32"
    trainer.save("last.pt")
    checkpoint = str(tmp_path / "avx2" / "checkpoints" / "last.pt")
    args = Namespace(checkpoint=[checkpoint], device="cpu", precision="auto", threads=None)
    assert load_translator(args).precision == "fp32"

    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: AMX)
    trainer = Trainer(tiny, tmp_path / "amx")
    trainer.setup()
    assert trainer.precision == trainer.updater.precision == "bf16"
    assert load_translator(args).precision == "bf16"


def test_the_trainer_refuses_bf16_on_a_cpu_without_it(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: AVX2)
    cfg = make_config([*TINY, *PINNED_TINY_MODEL, "trainer.precision=bf16"])
    with pytest.raises(ValueError, match="trainer.precision=bf16: this CPU has no bf16"):
        Trainer(cfg, tmp_path).train()


def test_an_openblas_core_older_than_the_cpu_is_named():
    avx512 = frozenset({"avx2", "avx512f"})
    note = blas_pinned_below_cpu({"OPENBLAS_CORETYPE": "Haswell"}, avx512)
    assert note is not None and "OPENBLAS_CORETYPE=Haswell" in note
    assert blas_pinned_below_cpu({"OPENBLAS_CORETYPE": "SkylakeX"}, avx512) is None
    assert blas_pinned_below_cpu({}, avx512) is None
    # an AVX2 CPU loses nothing to a Haswell kernel
    assert blas_pinned_below_cpu({"OPENBLAS_CORETYPE": "Haswell"}, frozenset({"avx2"})) is None
