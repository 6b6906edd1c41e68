"""int8 model folders (`seq2seq-export --quantize int8`) against the fp32 folder they
replace: a quarter of the size, each weight within half a step of its fp32 value, the
exact weights the export scored loaded back by both engines, and the same lines out of
both engines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.checkpoint import CheckpointError
from seq2seq.commands.export import main as export_main
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.runtime.translator import NumpyTranslator
from seq2seq.translation.forced import forced_decode
from seq2seq.translation.int8_weights import (
    SCALE_SUFFIX,
    dequantize_rows,
    dequantize_weights,
    quantize_rows,
    quantize_weights,
)
from seq2seq.translation.metrics import corpus_scores
from seq2seq.translation.model_folder import (
    WEIGHTS_NAME,
    int8_round_trip,
    read_model_folder,
    read_tensors,
    write_model_folder,
)
from seq2seq.translation.translator import Translator

SENTENCES = 100


def _matrix(seed: int) -> np.ndarray:
    """Rows of very different magnitudes, one all zero, one with a single spike."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((64, 48)) * 10.0 ** rng.uniform(-6, 3, (64, 1))
    rows[5] = 0.0
    rows[9, 3] = -1e4
    return rows.astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_each_weight_is_within_half_a_step(seed: int):
    matrix = _matrix(seed)
    q, scale = quantize_rows(matrix)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (64,)
    assert np.abs(q.astype(int)).max(axis=1)[scale > 0].min() == 127  # each row's full range
    error = np.abs(dequantize_rows(q, scale) - matrix)
    assert (error <= scale[:, None] * 0.5001).all()
    assert (dequantize_rows(q, scale)[5] == 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_quantizing_the_dequantized_weights_changes_nothing(seed: int):
    q, scale = quantize_rows(_matrix(seed))
    again_q, again_scale = quantize_rows(dequantize_rows(q, scale))
    np.testing.assert_array_equal(again_q, q)
    np.testing.assert_array_equal(again_scale, scale)


def test_only_matrices_are_quantized_and_scales_are_checked():
    state = {"w": _matrix(0), "b": np.ones(4, np.float32), "table": np.ones((2, 2), np.int32)}
    stored = quantize_weights(state)
    assert stored["w"].dtype == np.int8 and "w" + SCALE_SUFFIX in stored
    assert stored["b"] is state["b"] and stored["table"] is state["table"]
    assert sorted(dequantize_weights(stored, "f")) == ["b", "table", "w"]
    del stored["w" + SCALE_SUFFIX]
    with pytest.raises(ValueError, match="f: int8 tensor 'w' has no scale"):
        dequantize_weights(stored, "f")


@pytest.fixture(scope="module")
def pairs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first test pairs of Multi30k, as files."""
    tmp = tmp_path_factory.mktemp("pairs")
    paths = []
    for lang in ("en", "de"):
        with gzip.open(data_root / "multi30k" / f"test_2016_flickr.{lang}.gz", "rt") as f:
            lines = f.read().splitlines()[:SENTENCES]
        paths.append(tmp / f"test.{lang}")
        paths[-1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths[0], paths[1]


def _export(run: Path, folder: Path, pairs, *extra: str) -> None:
    src, ref = pairs
    argv = [str(run), "-o", str(folder), "--src", str(src), "--ref", str(ref), *extra]
    with pytest.raises(SystemExit) as done:
        export_main([*argv, "--max-length", "40"])
    assert done.value.code == 0


@pytest.fixture(scope="module")
def folders(attention_run: Path, pairs, tmp_path_factory: pytest.TempPathFactory):
    """(fp32 folder, int8 folder) exported from the same run."""
    tmp = tmp_path_factory.mktemp("folders")
    _export(attention_run, tmp / "fp32", pairs)
    _export(attention_run, tmp / "int8", pairs, "--quantize", "int8")
    return tmp / "fp32", tmp / "int8"


def test_the_int8_folder_is_a_quarter_of_the_size(folders):
    fp32, int8 = ((f / WEIGHTS_NAME).stat().st_size for f in folders)
    assert int8 < 0.3 * fp32  # the tiny model's biases and row scales stay float32
    config = json.loads((folders[1] / "config.json").read_text(encoding="utf-8"))
    assert config["weights"] == "int8"
    assert "| weights | int8" in (folders[1] / "README.md").read_text(encoding="utf-8")
    assert "| weights | float32 |" in (folders[0] / "README.md").read_text(encoding="utf-8")


def test_the_folder_loads_the_weights_the_export_scored(folders):
    fp32_model = read_model_folder(folders[0])[0]
    int8_model = read_model_folder(folders[1])[0]
    int8_round_trip(fp32_model)
    for (name, a), b in zip(
        fp32_model.state_dict().items(), int8_model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_the_card_scores_what_the_folder_translates(folders, pairs):
    src, ref = (p.read_text(encoding="utf-8").splitlines() for p in pairs)
    scores = []
    for folder in folders:
        card = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        translator = Translator.from_pretrained(folder, precision="fp32")
        hyps = [t.text for t in translator.translate(src, max_length=40)]
        bleu = corpus_scores(hyps, [ref])["BLEU"]["score"]
        assert card["metadata"]["scores"][0]["BLEU"]["score"] == pytest.approx(bleu, abs=1e-9)
        scores.append(bleu)
    assert scores[0] != scores[1]  # so the card could not pass with the fp32 weights' score


def test_int8_weights_stay_close_to_fp32(folders, pairs):
    """Per reference token, log-probabilities move by under 0.05 nats; some do move."""
    src, ref = (p.read_text(encoding="utf-8").splitlines() for p in pairs)
    plain, rounded = (Translator.from_pretrained(f) for f in folders)
    ids = [[plain._source_ids(s) for s in src], [plain.tgt_tokenizer.encode(r) for r in ref]]
    exact = forced_decode(plain.model, *ids)
    near = forced_decode(rounded.model, *ids)
    gaps = [
        (a.token_logprobs - b.token_logprobs).abs().max().item()
        for a, b in zip(exact, near, strict=True)
    ]
    assert max(gaps) < 0.05 and max(gaps) > 0


def test_both_engines_read_the_same_weights_from_an_int8_folder(folders, pairs):
    """The numpy runtime builds its network from read_tensors; the torch loader's state is
    the same numbers (test_runtime holds the two engines equal on the same weights)."""
    loaded = read_model_folder(folders[1])[0].state_dict()
    stored = read_tensors(folders[1] / WEIGHTS_NAME)
    assert stored and all(v.dtype == np.float32 for v in stored.values())
    for name, array in stored.items():
        np.testing.assert_array_equal(array, loaded[name].numpy(), err_msg=name)
    src = pairs[0].read_text(encoding="utf-8").splitlines()[:10]
    found = NumpyTranslator.from_folder(folders[1]).translate(src, search="beam", beam_size=4)
    assert len(found) == len(src) and all(t.text for t in found)


def test_exporting_an_int8_folder_again_writes_the_same_weights(folders, pairs, tmp_path):
    _export(folders[1], tmp_path / "again", pairs, "--quantize", "int8", "--no-scores")
    assert (tmp_path / "again" / WEIGHTS_NAME).read_bytes() == (
        folders[1] / WEIGHTS_NAME
    ).read_bytes()


def test_tied_embeddings_are_stored_once_and_load_tied(folders, tmp_path):
    """A model whose target embedding is its output layer: one int8 copy, both tied again."""
    source = Translator.from_pretrained(folders[0])
    spec = ModelSpec(
        src_vocab_size=source.src_tokenizer.vocab_size,
        tgt_vocab_size=source.tgt_tokenizer.vocab_size,
        embedding_size=32,
        hidden_size=32,
        tie_embeddings="decoder",
    )
    torch.manual_seed(0)
    model = Seq2Seq(spec).eval()
    tokenizers = (source.tokenizer_type, source.src_tokenizer, source.tgt_tokenizer)
    write_model_folder(tmp_path, model, tokenizers, source.config, {}, weights="int8")
    stored = read_tensors(tmp_path / WEIGHTS_NAME)
    assert len(stored) < len(model.state_dict())  # the tied matrix once
    loaded = read_model_folder(tmp_path)[0]
    assert loaded.output_layer.weight.data_ptr() == loaded.tgt_embedding.weight.data_ptr()
    int8_round_trip(model)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_damaged_weights_file_is_named(folders, tmp_path):
    path = tmp_path / WEIGHTS_NAME
    path.write_bytes((folders[1] / WEIGHTS_NAME).read_bytes()[:300])
    with pytest.raises(CheckpointError, match=str(path)):
        read_tensors(path)


def test_a_translator_quantized_for_decoding_is_not_saved_half_way(folders, tmp_path):
    translator = Translator.from_pretrained(folders[0], precision="fp32").quantize("int8")
    with pytest.raises(ValueError, match="save it before quantizing"):
        translator.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()
