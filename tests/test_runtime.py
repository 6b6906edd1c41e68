"""The numpy runtime (seq2seq.runtime) against the torch model it replaces: the same
log-probabilities within float32 rounding, the same hypotheses, the same lines out of
`seq2seq-translate`, and no torch imported on its way."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from safetensors.torch import save_model

from seq2seq.commands.translate import main as translate_main
from seq2seq.commands.translate import runtime_arguments
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.nn.recurrent import map_state
from seq2seq.runtime import network
from seq2seq.runtime.network import NumpyModel, Shortlisted, log_softmax, select_state
from seq2seq.runtime.search import STRATEGIES, _top
from seq2seq.search import Hypothesis, generate
from seq2seq.translation.candidates import candidate_set
from seq2seq.translation.shortlist import shortlisted

VOCAB = 40

SPECS = {
    "lstm-bahdanau-onmt": dict(
        cell="lstm",
        bidirectional=True,
        decoder="bahdanau",
        decoder_options={"bridge": "learned_full", "attention_output": "linear"},
    ),
    "lstm-bahdanau-2-layers": dict(
        cell="lstm", bidirectional=True, num_layers=2, decoder="bahdanau"
    ),
    "gru-bahdanau-no-input-feed": dict(
        cell="gru", decoder="bahdanau", decoder_options={"input_feed": False, "bridge": "zero"}
    ),
    "gru-luong-general-tied": dict(
        cell="gru", bidirectional=True, decoder="luong", tie_embeddings="decoder"
    ),
    "lstm-luong-dot-last-tied-all": dict(
        cell="lstm",
        decoder="luong",
        decoder_options={"score": "dot", "bridge": "last"},
        encoder_hidden_size=24,
        tie_embeddings="all",
    ),
}


def _pair(tmp_path: Path, name: str) -> tuple[Seq2Seq, NumpyModel]:
    """A random torch model and the numpy model read from its safetensors file (tied
    tensors saved once, as seq2seq-export writes them)."""
    torch.manual_seed(0)
    options = dict(embedding_size=24, hidden_size=24, dropout=0.0, **SPECS[name])
    model = Seq2Seq(ModelSpec(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, **options)).eval()
    with torch.no_grad():  # larger weights than the init's: decisive, untied argmaxes
        for p in model.parameters():
            p.mul_(3)
    path = tmp_path / "model.safetensors"
    save_model(model, str(path))
    return model, NumpyModel(model.spec.to_dict(), load_file(path))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Four sentences of different lengths, padded, each ending in EOS (3)."""
    rows = [[5, 9, 12, 7, 30, 3], [8, 3], [11, 21, 33, 3], [4, 6, 17, 25, 3]]
    src = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        src[i, : len(row)] = torch.tensor(row)
    return src, torch.tensor([len(r) for r in rows])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_teacher_forced_steps_give_torchs_log_probabilities(tmp_path: Path, name: str):
    _assert_same_steps(*_pair(tmp_path, name))


@pytest.mark.parametrize("key_scale", [1.0, 60.0])
def test_additive_attention_is_factored_only_where_keys_are_bounded(
    tmp_path: Path, key_scale: float
):
    """σ(2(k + q)) as 1 / (1 + e^(−2k)·e^(−2q)) needs |k|, |q| ≤ 40; larger keys take tanh."""
    model, _ = _pair(tmp_path, "lstm-bahdanau-onmt")
    with torch.no_grad():
        model.decoder.attention.key_proj.weight.mul_(key_scale)
    save_model(model, str(tmp_path / "scaled.safetensors"))
    numpy_model = NumpyModel(model.spec.to_dict(), load_file(tmp_path / "scaled.safetensors"))
    assert numpy_model._factored == (key_scale == 1.0)
    _assert_same_steps(model, numpy_model)


def _assert_same_steps(model: Seq2Seq, numpy_model: NumpyModel) -> None:
    src, lengths = _batch()
    enc = model.encode(src, lengths)
    state = model.init_state(enc)
    np_enc, np_state = numpy_model.encode(src.numpy(), lengths.numpy())
    np.testing.assert_allclose(np_enc.states, enc.states.detach().numpy(), atol=1e-5)
    tokens = torch.tensor([2, 2, 2, 2])  # BOS, then a fixed target
    with torch.no_grad():
        for step in range(5):
            logp, state = model.decode_step(tokens, enc, state)
            np_logits, np_state = numpy_model.step_logits(tokens.numpy(), np_enc, np_state)
            np_logp = log_softmax(np_logits)
            np.testing.assert_allclose(np_logp, logp.numpy(), atol=1e-4, rtol=1e-4)
            tokens = torch.tensor([10 + step, 4, 20 - step, 7])
    # Rows leave the batch in any order, as search drops and reorders them.
    rows = np.array([3, 1])
    np_logits, _ = numpy_model.step_logits(
        tokens.numpy()[rows], np_enc.index(rows), select_state(np_state, rows)
    )
    np_logp = log_softmax(np_logits)
    index = torch.from_numpy(rows)
    with torch.no_grad():
        logp, _ = model.decode_step(
            tokens[index],
            enc.index_select(index),
            map_state(lambda s: s.index_select(0, index), state),
        )
    np.testing.assert_allclose(np_logp, logp.numpy(), atol=1e-4, rtol=1e-4)


SEARCHES = {
    "greedy": ("greedy", {}),
    "greedy, short limit": ("greedy", {"max_length": 4}),
    "beam": ("beam", {"beam_size": 4, "nbest": 3}),
    "beam, no length penalty, min length": (
        "beam",
        {"beam_size": 3, "nbest": 2, "length_penalty": 0.0, "min_length": 4},
    ),
    # 2k candidates need more tokens than one beam has: all k rows from the first step
    "beam wider than half the vocabulary": (
        "beam",
        {"beam_size": VOCAB // 2 + 1, "nbest": 2, "min_length": 3},
    ),
}


def _same_hypotheses(found, expected) -> None:
    assert [[h.tokens for h in hyps] for hyps in found] == [
        [h.tokens for h in hyps] for hyps in expected
    ]
    for hyps, want in zip(found, expected, strict=True):
        np.testing.assert_allclose([h.score for h in hyps], [h.score for h in want], atol=1e-4)


@pytest.mark.parametrize("search", sorted(SEARCHES))
@pytest.mark.parametrize("name", ["lstm-bahdanau-onmt", "gru-luong-general-tied"])
def test_searches_find_torchs_hypotheses(tmp_path: Path, name: str, search: str):
    model, numpy_model = _pair(tmp_path, name)
    src, lengths = _batch()
    strategy, options = SEARCHES[search]
    expected = generate(model, src, lengths, strategy, **options)
    found = STRATEGIES[strategy](numpy_model, src.numpy(), lengths.numpy(), **options)
    _same_hypotheses(found, expected)
    assert any(len(hyps[0].tokens) > 1 for hyps in found)  # not a trivially empty decode


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_shortlisted_search_finds_torchs_hypotheses(tmp_path: Path, strategy: str):
    model, numpy_model = _pair(tmp_path, "lstm-bahdanau-onmt")
    src, lengths = _batch()
    rng = np.random.default_rng(0)
    table = rng.integers(4, VOCAB, size=(VOCAB, 6))
    ids, allowed = candidate_set(table, np.array([5, 6, 7]), src.numpy())
    assert ids.size < VOCAB and not allowed.all()  # a real restriction
    options = {"beam_size": 3, "nbest": 2} if strategy == "beam" else {}
    view = shortlisted(model, torch.from_numpy(ids), torch.from_numpy(allowed))
    expected = [
        [Hypothesis(ids[h.tokens].tolist(), h.score) for h in hyps]  # union positions → ids
        for hyps in generate(view, src, lengths, strategy, **options)
    ]
    runtime_view = Shortlisted(numpy_model, ids, allowed)
    assert runtime_view.ids.shape[1] < ids.size  # rows score their own candidates only
    found = [
        [Hypothesis(runtime_view.vocabulary_ids(row, h.tokens), h.score) for h in hyps]
        for row, hyps in enumerate(
            STRATEGIES[strategy](runtime_view, src.numpy(), lengths.numpy(), **options)
        )
    ]
    _same_hypotheses(found, expected)


def test_a_model_the_runtime_cannot_run_is_named(tmp_path: Path):
    torch.manual_seed(0)
    model = Seq2Seq(ModelSpec(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, decoder="fixed"))
    save_model(model, str(tmp_path / "m.safetensors"))
    with pytest.raises(ValueError, match="decoder 'fixed'"):
        NumpyModel(model.spec.to_dict(), load_file(tmp_path / "m.safetensors"))


# -- the command line, on a model trained on real data ---------------------------------


@pytest.fixture(scope="module")
def folder(attention_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real-data model as a model folder, its weights scaled up: 40 updates leave
    near-ties between beam hypotheses that float32 rounding may break either way; the
    scaled model is decisive, and these tests compare numbers, not quality."""
    from seq2seq import Translator

    translator = Translator.from_pretrained(attention_run, precision="fp32")
    with torch.no_grad():
        for p in translator.model.parameters():
            p.mul_(3)
    return translator.save_pretrained(tmp_path_factory.mktemp("runtime") / "model")


@pytest.fixture(scope="module")
def sources(data_root: Path) -> list[str]:
    """The first 60 lines of the real test set."""
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt") as f:
        return f.read().splitlines()[:60]


def _translate(capsys, *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        translate_main(list(args))
    captured = capsys.readouterr()
    assert exit_.value.code == 0, captured.err
    return captured.out


@pytest.mark.parametrize(
    "flags",
    [
        ["--print-scores"],
        ["--shortlist"],
        ["--search", "beam", "--beam-size", "4", "--format", "jsonl"],
        ["--search", "beam", "--shortlist", "--max-length-ratio", "0.5"],
    ],
    ids=["greedy-scores", "greedy-shortlist", "beam-jsonl", "beam-shortlist-short"],
)
def test_the_numpy_engine_writes_torchs_lines(
    folder: Path, sources: list[str], tmp_path: Path, capsys, flags
):
    src = tmp_path / "src.en"
    src.write_text("\n".join([*sources[:30], "", *sources[30:]]) + "\n", encoding="utf-8")
    common = ["--checkpoint", str(folder), "-i", str(src), *flags]
    numpy_out = _translate(capsys, *common, "--engine", "numpy")
    torch_out = _translate(capsys, *common, "--engine", "torch")
    assert numpy_out.count("\n") == 61
    assert len(set(numpy_out.splitlines())) > 30  # real, varied translations
    mine, theirs = (_texts_and_scores(out, flags) for out in (numpy_out, torch_out))
    assert [[text for text, _ in line] for line in mine] == [
        [text for text, _ in line] for line in theirs
    ]
    scores = [[score for line in found for _, score in line] for found in (mine, theirs)]
    np.testing.assert_allclose(*scores, atol=1e-3)


def _texts_and_scores(out: str, flags: list[str]) -> list[list[tuple[str, float]]]:
    """Each line's hypotheses as (text, score) pairs, from text or jsonl output."""
    found = []
    for line in out.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            found.append([(h["text"], h["score"]) for h in record.get("nbest", [record])])
        elif "--print-scores" in flags:
            fields = line.split("\t")
            found.append(list(zip(fields[1::2], map(float, fields[::2]), strict=True)))
        else:
            found.append([(line, 0.0)])
    return found


@pytest.mark.parametrize("search", [["--search", "greedy"], ["--search", "beam", "--shortlist"]])
def test_the_numpy_engines_threads_do_not_change_its_lines(
    folder: Path, sources: list[str], tmp_path: Path, capsys, search
):
    """Batches are shared out over --threads cores; every split gives the same lines."""
    src = tmp_path / "src.en"
    src.write_text("\n".join(sources[:25]) + "\n", encoding="utf-8")
    common = ["--checkpoint", str(folder), "-i", str(src), "--engine", "numpy", *search]
    outs = [
        _translate(capsys, *common, "--print-scores", "--threads", threads, "--batch-size", size)
        for threads, size in (("1", "25"), ("3", "8"), ("2", "128"))
    ]
    found = [_texts_and_scores(out, ["--print-scores"]) for out in outs]
    assert len(found[0]) == 25
    texts = [[[text for text, _ in line] for line in lines] for lines in found]
    for other in found[1:]:  # the same words; scores within float32 rounding
        assert [[text for text, _ in line] for line in other] == texts[0]
        scores = [[score for line in lines for _, score in line] for lines in (other, found[0])]
        np.testing.assert_allclose(*scores, atol=1e-3)


def test_the_python_api_translates_as_torchs_translator(folder: Path, sources: list[str]):
    import seq2seq

    runtime = seq2seq.NumpyTranslator.from_folder(folder)
    translator = seq2seq.Translator.from_pretrained(folder, precision="fp32")
    one = runtime.translate(sources[0])
    assert one.text == translator.translate(sources[0]).text and one.text
    found = runtime.translate(["", *sources[1:6]], search="beam", beam_size=4, nbest=2)
    expected = translator.translate(["", *sources[1:6]], search="beam", beam_size=4, nbest=2)
    assert found[0].text == "" and len(found) == 6
    assert [[h.text for h in r.nbest] for r in found[1:]] == [
        [h.text for h in r.nbest] for r in expected[1:]
    ]
    with pytest.raises(seq2seq.PluginError, match="runs greedy, beam"):
        runtime.translate("A dog.", search="sample")
    with pytest.raises(seq2seq.PluginError, match="beam_siz"):
        runtime.translate("A dog.", search="beam", beam_siz=4)


def test_one_line_needs_no_torch(folder: Path):
    """The auto engine translates greedily from a model folder without importing torch."""
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch imported')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from seq2seq.commands.translate import main\n"
        f"main(['--checkpoint', {str(folder)!r}])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input="A man is riding a bike.\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.strip()
    assert "numpy runtime" in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--print-alignment"], "it does not take --print-alignment"),
        (["--search", "sample"], "--search sample (it runs greedy and beam)"),
        (["--temperature", "0.5", "--search", "sample"], "it does not take --temperature"),
    ],
)
def test_the_numpy_engine_names_what_it_cannot_do(folder: Path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        translate_main(["--checkpoint", str(folder), "--engine", "numpy", *flags])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--engine numpy cannot run this" in err and message in err


def test_the_numpy_engine_asks_for_a_model_folder(attention_run: Path, capsys):
    with pytest.raises(SystemExit) as exit_:
        translate_main(["--checkpoint", str(attention_run), "--engine", "numpy"])
    assert exit_.value.code == 2
    assert "not an exported model folder (seq2seq-export makes one)" in capsys.readouterr().err


def test_auto_falls_back_to_torch_for_what_numpy_cannot_run(
    folder: Path, sources: list[str], tmp_path: Path, capsys
):
    src = tmp_path / "src.en"
    src.write_text("\n".join(sources[:5]) + "\n", encoding="utf-8")
    out = _translate(capsys, "--checkpoint", str(folder), "-i", str(src), "--print-alignment")
    assert len(out.splitlines()) == 5 and all("\t" in line for line in out.splitlines())


@pytest.mark.parametrize(
    "flags", [[], ["--search", "beam"], ["--search", "beam", "--shortlist"]], ids=str
)
def test_auto_runs_a_model_folder_on_numpy(folder: Path, flags: list[str]):
    args, why_not = runtime_arguments(["--checkpoint", str(folder), *flags])
    assert args is not None, why_not


def test_a_damaged_weights_file_is_named(folder: Path, tmp_path: Path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(SystemExit) as exit_:
        translate_main(["--checkpoint", str(broken), "--engine", "numpy"])
    assert exit_.value.code == 2
    assert "model.safetensors" in capsys.readouterr().err


@pytest.mark.parametrize("vocab", [7, 40, 700])
def test_beam_selection_is_a_stable_sort_of_each_sentence(vocab: int):
    """_top's bounded selection equals sorting each sentence's k·V candidates
    score + (logit − lse), largest first, ties by the lower column: with many ties, masked
    tokens, ended beams, and vocabularies under n, under n groups and over them."""
    rng = np.random.default_rng(0)
    live, k = 6, 3
    logits = rng.integers(-6, 0, size=(live * k, vocab)).astype(np.float32)  # many ties
    logits[4] = rng.standard_normal(vocab).astype(np.float32) * 30
    logits[:, 1] = -np.inf  # a token never output
    logits[7, :] = -1.0  # one value everywhere
    logits[15, 4:] = -np.inf  # a best beam with fewer than n tokens left
    lse = (rng.standard_normal(live * k) * 5).astype(np.float32)
    lse[9:12] = 0.0  # rows equal but for their beam: ties across beams
    logits[9:12] = logits[9]
    scores = (-np.abs(rng.standard_normal((live, k))) * 20).astype(np.float32)
    scores[:, 0] = scores.max(axis=1)  # beam 0 the best, as the search keeps it
    scores[1, 1:] = -np.inf  # beams that have ended or were never filled
    scores[3] = scores[3, 0]
    candidates = ((logits - lse[:, None]) + scores.reshape(-1, 1)).reshape(live, -1)
    for n in (1, 4, 10):
        expected = np.argsort(-candidates, axis=1, kind="stable")[:, :n]
        index, values = _top(logits, lse, scores, n)
        np.testing.assert_array_equal(index, expected)
        np.testing.assert_array_equal(values, np.take_along_axis(candidates, expected, 1))


@pytest.mark.parametrize("fast_exp", [True, False])
def test_both_exponentials_give_the_same_softmax(monkeypatch, fast_exp: bool):
    """numpy's exp (AVX-512) and exp2 (elsewhere) softmax alike, -inf entries included."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((5, 300)) * 8).astype(np.float32)
    x[0, 10:] = -np.inf
    x[4, :] = -200.0  # every term far below float32's exp range but the row's own maximum
    monkeypatch.setattr(network, "FAST_EXP", fast_exp)
    exact = torch.from_numpy(x).double()
    np.testing.assert_allclose(
        network.log_sum_exp(x)[:, 0], torch.logsumexp(exact, 1).numpy(), rtol=1e-6, atol=1e-5
    )
    weights = network.softmax(x)
    np.testing.assert_allclose(weights, torch.softmax(exact, 1).numpy(), rtol=1e-5, atol=1e-7)
    assert (weights[0, 10:] < 1e-29).all()
