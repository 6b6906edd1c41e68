"""Seeing attention: forced-decode attention matrices, hard alignments, heatmaps, CLI flags.

One tiny Bahdanau model is trained on real Multi30k for the module; a fixed-vector
checkpoint is derived from it (same tokenizers, fresh weights) for the error path.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.commands.translate import main as translate_main
from seq2seq.hardware import autocast
from seq2seq.nn.ensemble import Ensemble
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import length_limits
from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID
from seq2seq.translation.alignment import (
    AttentionUnavailable,
    attention_matrices,
    attention_matrix,
    format_alignment,
    hard_alignment,
    plot_file_name,
)
from seq2seq.translation.translator import Translator

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(attention_run: Path, one_thread) -> Path:
    return attention_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def fixed_checkpoint(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    payload = load_checkpoint(checkpoint)
    spec = dict(payload["model_spec"], decoder="fixed", decoder_options={})
    payload["model_spec"] = spec
    payload["model"] = Seq2Seq(ModelSpec(**spec)).state_dict()
    path = tmp_path_factory.mktemp("fixed_run") / "fixed.pt"
    save_checkpoint(path, payload)
    return path


@pytest.fixture(scope="module")
def translator(checkpoint: Path) -> Translator:
    return Translator.from_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def sentences(data_root: Path) -> list[str]:
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(12)]


@pytest.fixture(scope="module")
def decoded(translator: Translator, sentences: list[str]):
    """(source ids, greedy tokens, attention matrix) of each sentence, batched."""
    sources = [translator.src_tokenizer.encode(s) for s in sentences]
    targets = [hyps[0].tokens for hyps in translator.hypotheses(sentences)]
    matrices = attention_matrices(translator.model, sources, targets, batch_size=5)
    return sources, targets, matrices


def test_rows_are_distributions_over_the_real_source_tokens(decoded) -> None:
    sources, targets, matrices = decoded
    assert any(targets), "the model translates nothing: the test would prove little"
    for src, tgt, matrix in zip(sources, targets, matrices, strict=True):
        # Rows: target tokens + EOS; columns: source tokens + the source EOS (no padding).
        assert matrix.shape == (len(tgt) + 1, len(src) + 1)
        assert torch.isfinite(matrix).all()
        assert (matrix >= 0).all()
        torch.testing.assert_close(matrix.sum(dim=1), torch.ones(len(tgt) + 1))


def test_bf16_rows_still_sum_to_one(translator: Translator, decoded) -> None:
    """Under bf16 autocast (the default where the CPU has it) the matrices users see are
    float32 softmaxes: bf16 weights would sum to 1 only within about 1e-3."""
    sources, targets, fp32 = decoded
    with autocast("cpu", "bf16"):
        matrices = attention_matrices(translator.model, sources, targets, batch_size=5)
    for matrix, exact in zip(matrices, fp32, strict=True):
        assert matrix.dtype == torch.float32
        torch.testing.assert_close(matrix.sum(dim=1), torch.ones(len(matrix)), atol=1e-5, rtol=0)
        torch.testing.assert_close(matrix, exact, atol=0.05, rtol=0)  # bf16 scores, same picture


def test_batching_does_not_change_the_matrix(translator: Translator, decoded) -> None:
    sources, targets, matrices = decoded
    for i in (0, 7):
        alone = attention_matrix(translator.model, sources[i], targets[i])
        torch.testing.assert_close(alone, matrices[i], atol=1e-5, rtol=1e-5)


def test_hard_alignment_is_the_argmax_over_real_source_tokens(decoded) -> None:
    sources, targets, matrices = decoded
    for src, tgt, matrix in zip(sources, targets, matrices, strict=True):
        pairs = hard_alignment(matrix)
        expected = [(int(matrix[j, :-1].argmax()), j) for j in range(len(tgt))]
        assert pairs == expected
        assert all(0 <= i < len(src) and 0 <= j < len(tgt) for i, j in pairs)
    # By hand: the source EOS column (last) never wins; the EOS row (last) is left out.
    matrix = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8], [0, 0, 1.0]])
    assert hard_alignment(matrix) == [(1, 0), (0, 1), (0, 2)]
    assert format_alignment(hard_alignment(matrix)) == "1-0 0-1 0-2"
    assert hard_alignment(torch.ones(1, 3) / 3) == []  # an empty translation
    assert plot_file_name(7) == "000007.png" and plot_file_name(1234567) == "1234567.png"


def greedy_with_attention(model, src_ids: list[int], max_len: int):
    """A hand-written greedy loop that keeps the attention the search used at each step."""
    src = torch.tensor([src_ids + [EOS_ID]])
    lengths = torch.tensor([len(src_ids) + 1])
    limit = int(length_limits(lengths, max_len, 2.0)[0])
    with torch.inference_mode():
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        token, tokens, rows = torch.tensor([BOS_ID]), [], []
        for _ in range(limit):
            logp, state = model.decode_step(token, enc, state)
            rows.append(model.attention(state)[0].clone())
            logp[:, PAD_ID] = logp[:, BOS_ID] = -float("inf")
            token = logp.argmax(dim=-1)
            if int(token) == EOS_ID:
                break
            tokens.append(int(token))
    return tokens, torch.stack(rows)


def test_forced_decode_equals_the_attention_of_greedy_search(
    translator: Translator, sentences: list[str]
) -> None:
    model = translator.model
    ensemble = Ensemble([model, model]).eval()  # the mean of two equal members: the same
    for sentence in sentences[:4]:
        src = translator.src_tokenizer.encode(sentence)
        tokens, seen = greedy_with_attention(model, src, 200)
        assert tokens == translator.hypotheses([sentence])[0][0].tokens
        # One row per step; a hypothesis cut by the length limit has no EOS step (row).
        assert len(seen) in (len(tokens), len(tokens) + 1)
        forced = attention_matrix(model, src, tokens)
        torch.testing.assert_close(forced[: len(seen)], seen, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(attention_matrix(ensemble, src, tokens), forced)


# ---------------------------------------------------------------- CLI


def run_translate(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        translate_main(args)
    return exit_info.value.code


@pytest.fixture(scope="module")
def input_file(sentences: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real sentences, two empty lines and a blank one; no final newline."""
    lines = [sentences[0], "", sentences[1], "  \t ", sentences[2], "", sentences[3]]
    path = tmp_path_factory.mktemp("align_in") / "in.en"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def input_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def output_lines(path: Path, expected: int) -> list[str]:
    data = path.read_bytes()
    assert data.count(b"\n") == expected and data.endswith(b"\n")
    return data.decode("utf-8").split("\n")[:-1]


def test_plot_attention_writes_one_png_per_non_empty_line(
    checkpoint: Path, input_file: Path, tmp_path: Path
) -> None:
    import matplotlib.image

    lines = input_lines(input_file)
    plain, plotted = tmp_path / "plain.de", tmp_path / "plotted.de"
    base = ["--checkpoint", str(checkpoint), "-i", str(input_file)]
    assert run_translate([*base, "-o", str(plain)]) == 0
    plots = tmp_path / "plots" / "nested"  # created, parents too
    flags = ["--plot-attention", str(plots), "--chunk-lines", "3", "--batch-size", "2"]
    assert run_translate([*base, "-o", str(plotted), *flags]) == 0
    # Plotting changes nothing in the translations.
    assert output_lines(plotted, len(lines)) == output_lines(plain, len(lines))
    expected = {plot_file_name(n) for n, line in enumerate(lines, 1) if line.strip()}
    assert {p.name for p in plots.iterdir()} == expected  # numbering runs across chunks
    for name in expected:
        path = plots / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def test_print_alignment_one_line_per_input_line(
    checkpoint: Path, input_file: Path, translator: Translator, tmp_path: Path
) -> None:
    lines = input_lines(input_file)
    base = ["--checkpoint", str(checkpoint), "-i", str(input_file)]
    plain, aligned = tmp_path / "plain.de", tmp_path / "aligned.de"
    assert run_translate([*base, "-o", str(plain)]) == 0
    assert (
        run_translate([*base, "-o", str(aligned), "--print-alignment", "--chunk-lines", "4"]) == 0
    )
    hyps = translator.hypotheses(lines)
    rows = zip(
        lines, output_lines(aligned, len(lines)), output_lines(plain, len(lines)), hyps, strict=True
    )
    for number, (line, out, ref, hyp) in enumerate(rows, 1):
        text, sep, alignment = out.partition("\t")
        assert sep and "\t" not in alignment, f"line {number}: {out!r}"
        assert text == ref
        if not line.strip():
            assert alignment == "", f"line {number}: empty input gave {out!r}"
            continue
        n_src, n_tgt = len(translator.src_tokenizer.encode(line)), len(hyp[0].tokens)
        pairs = [tuple(map(int, pair.split("-"))) for pair in alignment.split()]
        assert all(0 <= i < n_src and 0 <= j < n_tgt for i, j in pairs), out
        assert [j for _, j in pairs] == list(range(n_tgt))  # every target token, in order
        matrix = attention_matrix(
            translator.model, translator.src_tokenizer.encode(line), hyp[0].tokens
        )
        assert alignment == format_alignment(hard_alignment(matrix))


def test_print_alignment_with_nbest(checkpoint: Path, input_file: Path, tmp_path: Path) -> None:
    lines = input_lines(input_file)
    out = tmp_path / "nbest.de"
    flags = ["--search", "beam", "--beam-size", "3", "--nbest", "2", "--print-alignment"]
    args = ["--checkpoint", str(checkpoint), "-i", str(input_file), "-o", str(out), *flags]
    assert run_translate(args) == 0
    for line, got in zip(lines, output_lines(out, len(lines)), strict=True):
        fields = got.split("\t")
        # translation, alignment[, translation, alignment]: each hypothesis has its own.
        assert len(fields) == (4 if line.strip() else 2), got
        for alignment in fields[1::2]:
            assert all(p.count("-") == 1 for p in alignment.split())


@pytest.mark.parametrize("flag", ["--plot-attention", "--print-alignment"])
def test_fixed_vector_checkpoint_is_a_clear_error(
    fixed_checkpoint: Path, input_file: Path, tmp_path: Path, capsys, flag: str
) -> None:
    out, plots = tmp_path / "out.de", tmp_path / "plots"
    extra = [flag, str(plots)] if flag == "--plot-attention" else [flag]
    args = ["--checkpoint", str(fixed_checkpoint), "-i", str(input_file), "-o", str(out)]
    assert run_translate([*args, *extra]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {flag} needs an attention decoder (model.decoder=bahdanau or luong); "
        "this checkpoint uses 'fixed'"
    ], err
    assert "Traceback" not in err
    assert not out.exists() and not plots.exists()  # nothing translated, nothing written
    # The library raises the same error (a ValueError) when asked directly.
    fixed = Translator.from_checkpoint(fixed_checkpoint)
    with pytest.raises(AttentionUnavailable, match="--plot-attention needs an attention"):
        attention_matrix(fixed.model, [5, 6], [7])
