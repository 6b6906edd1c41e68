"""The plugin registry: lookup errors that help, isolation, conflicts, in-process plugins,
option validation, and `python -m seq2seq.plugins`."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field

import pytest
import torch

from seq2seq import registry
from seq2seq.commands import plugins
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.registry import PluginError, PluginOptionError, validate_options
from seq2seq.search import generate
from seq2seq.tokenizers import train_tokenizer

REAL_ENTRY_POINTS = importlib.metadata.entry_points


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class FakeDist:
    name: str
    version: str = "9.9"
    metadata: dict = field(init=False)

    def __post_init__(self) -> None:
        self.metadata = {"Name": self.name}


@dataclass
class FakeEntryPoint:
    """What importlib.metadata gives the registry: name, value, group, dist, load()."""

    name: str
    value: str
    group: str
    dist: FakeDist

    def load(self):
        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module)
        return getattr(obj, attr) if attr else obj


@pytest.fixture
def fake_plugins(monkeypatch):
    """Add fake entry points to the real ones: fake_plugins(group, name, value, dist)."""
    extra: dict[str, list[FakeEntryPoint]] = {}

    def fake_entry_points(group=None, **kwargs):
        return [*REAL_ENTRY_POINTS(group=group, **kwargs), *extra.get(group, [])]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)

    def add(group: str, name: str, value: str, dist: str) -> None:
        extra.setdefault(group, []).append(FakeEntryPoint(name, value, group, FakeDist(dist)))

    return add


@pytest.fixture
def tiny_spec():
    def make(**kwargs) -> ModelSpec:
        base = dict(src_vocab_size=12, tgt_vocab_size=13, embedding_size=4, hidden_size=6)
        return ModelSpec(**{**base, **kwargs})

    return make


# ------------------------------------------------------------------ lookup


def test_unknown_name_lists_names_distributions_and_close_matches():
    with pytest.raises(PluginError) as info:
        registry.load("seq2seq.cells", "lstn")
    message = str(info.value)
    assert "unknown cells 'lstn'" in message
    for name in ("elman", "gru", "lstm"):
        assert f"{name} (seq2seq-rnn)" in message
    assert "Did you mean: lstm" in message


def test_short_group_names_work():
    assert registry.load("cells", "gru") is registry.load("seq2seq.cells", "gru")


def test_only_the_named_plugin_is_imported(fake_plugins):
    fake_plugins("seq2seq.cells", "broken", "seq2seq_no_such_module:cell", "broken-dist")
    # Loading another plugin of the same group never touches the broken one.
    assert registry.load("cells", "gru").__name__ == "gru"


def test_broken_plugin_is_named_and_isolated(fake_plugins):
    fake_plugins("seq2seq.cells", "broken", "seq2seq_no_such_module:cell", "broken-dist")
    fake_plugins("seq2seq.cells", "fine", "seq2seq.cells.gated:gru", "fine-dist")
    with pytest.raises(PluginError) as info:
        registry.load("cells", "broken")
    message = str(info.value)
    assert "'broken'" in message
    assert "seq2seq_no_such_module:cell" in message
    assert "broken-dist" in message
    assert "ModuleNotFoundError" in message
    # The others still work, and the listing shows the broken one without failing.
    assert registry.load("cells", "fine") is registry.load("cells", "gru")
    rows = {row.name: row for row in plugins.collect(("seq2seq.cells",))}
    assert rows["broken"].status == "broken"
    assert rows["broken"].description.startswith("BROKEN: ModuleNotFoundError")
    assert rows["lstm"].status == "ok" and rows["fine"].status == "ok"


def test_plugin_raising_at_import_is_isolated_in_the_listing(fake_plugins, tmp_path, monkeypatch):
    (tmp_path / "explodes_on_import.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_plugins("seq2seq.search", "explodes", "explodes_on_import:search", "boom-dist")
    with pytest.raises(PluginError, match="boom-dist.*RuntimeError: boom at import"):
        registry.load("search", "explodes")
    rows = {row.name: row for row in plugins.collect(("seq2seq.search",))}
    assert rows["explodes"].description == "BROKEN: RuntimeError: boom at import"
    assert rows["greedy"].status == "ok"


def test_two_distributions_claiming_one_name_is_an_error_naming_both(fake_plugins):
    fake_plugins("seq2seq.cells", "twin", "seq2seq.cells.gated:gru", "first-dist")
    fake_plugins("seq2seq.cells", "twin", "seq2seq.cells.gated:lstm", "second-dist")
    with pytest.raises(PluginError) as info:
        registry.load("cells", "twin")
    message = str(info.value)
    assert "first-dist (seq2seq.cells.gated:gru)" in message
    assert "second-dist (seq2seq.cells.gated:lstm)" in message
    assert "more than one distribution" in message
    rows = [row for row in plugins.collect(("seq2seq.cells",)) if row.name == "twin"]
    assert {row.status for row in rows} == {"conflict"}
    assert "also claimed by second-dist" in rows[0].description


def test_one_distribution_seen_twice_is_not_a_conflict(fake_plugins):
    fake_plugins("seq2seq.cells", "dup", "seq2seq.cells.gated:gru", "same-dist")
    fake_plugins("seq2seq.cells", "dup", "seq2seq.cells.gated:gru", "same-dist")
    assert registry.load("cells", "dup") is registry.load("cells", "gru")


# ------------------------------------------------------------------ register()


def test_register_in_process(tiny_spec):
    def tiny_elman(input_size, hidden_size, activation="tanh"):
        """A notebook cell."""
        return registry.load("cells", "elman")(input_size, hidden_size, activation=activation)

    registry.register("cells", "notebook_cell", tiny_elman)
    try:
        assert registry.load("seq2seq.cells", "notebook_cell") is tiny_elman
        info = [i for i in registry.available("cells") if i.name == "notebook_cell"]
        assert info[0].distribution == "in-process"
        with pytest.raises(PluginError, match="already registered in-process"):
            registry.register("cells", "notebook_cell", tiny_elman)
        model = Seq2Seq(tiny_spec(cell="notebook_cell", cell_options={"activation": "relu"}))
        assert model.encoder.rnn.layers[0][0].activation == "relu"
        rows = {row.name: row for row in plugins.collect(("seq2seq.cells",))}
        assert rows["notebook_cell"].description == "A notebook cell."
        assert rows["notebook_cell"].options == "activation='tanh'"
    finally:
        registry.unregister("cells", "notebook_cell")
    with pytest.raises(PluginError, match="unknown cells 'notebook_cell'"):
        registry.load("cells", "notebook_cell")


def test_register_refuses_installed_names_and_unknown_groups():
    with pytest.raises(
        PluginError, match=r"already provided by seq2seq-rnn \(seq2seq.cells.gated:gru"
    ):
        registry.register("cells", "gru", object())
    with pytest.raises(PluginError, match="unknown plugin group 'seq2seq.layers'"):
        registry.register("layers", "x", object())


# ------------------------------------------------------------------ options


def factory(input_size: int, hidden_size: int, gate: str = "sigmoid", scale: float = 1.0):
    return None


def test_unknown_option_is_named_with_close_match_and_accepted_options():
    with pytest.raises(PluginOptionError) as info:
        validate_options("cell", "mine", factory, {"scael": 2.0}, fixed=(3, 4))
    message = str(info.value)
    assert "cell 'mine': unknown option 'scael' (did you mean 'scale'?)" in message
    assert "Accepted options: gate='sigmoid', scale=1.0." in message


def test_option_types_are_checked():
    validate_options("cell", "mine", factory, {"scale": 2, "gate": "tanh"}, fixed=(3, 4))
    with pytest.raises(
        PluginOptionError, match="option 'scale' must be float, got 'big' \\(str\\)"
    ):
        validate_options("cell", "mine", factory, {"scale": "big"}, fixed=(3, 4))
    with pytest.raises(PluginOptionError, match="option 'gate' must be str, got True"):
        validate_options("cell", "mine", factory, {"gate": True}, fixed=(3, 4))


def test_fixed_arguments_are_not_options_and_required_options_are_reported():
    with pytest.raises(PluginOptionError, match="'hidden_size' is set by seq2seq itself"):
        validate_options("cell", "mine", factory, {"hidden_size": 3}, fixed=(3, 4))

    def needs_rank(input_size, hidden_size, *, rank: int):
        return None

    with pytest.raises(PluginOptionError, match="required option 'rank' is not set"):
        validate_options("cell", "low", needs_rank, {}, fixed=(3, 4))
    validate_options("cell", "low", needs_rank, {"rank": 2}, fixed=(3, 4))


def test_factories_with_kwargs_accept_any_option_and_bad_signatures_are_reported():
    validate_options("cell", "open", lambda i, h, **kw: None, {"anything": 1}, fixed=(3, 4))
    with pytest.raises(PluginOptionError, match="cannot take the 2 positional arguments"):
        validate_options("cell", "one", lambda i: None, {}, fixed=(3, 4))
    with pytest.raises(PluginOptionError, match="does not accept 'fused'.*add a 'fused' parameter"):
        validate_options(
            "decoder", "d", lambda *, cell: None, {}, framework={"cell": 1, "fused": 1}
        )


def test_model_reports_bad_cell_and_decoder_options(tiny_spec):
    with pytest.raises(PluginOptionError) as info:
        Seq2Seq(tiny_spec(cell="elman", cell_options={"activaton": "relu"}))
    assert str(info.value) == (
        "cell 'elman' (model.cell_options): unknown option 'activaton' "
        "(did you mean 'activation'?). Accepted options: activation='tanh'."
    )
    with pytest.raises(PluginOptionError, match="option 'forget_bias' must be float or None"):
        Seq2Seq(tiny_spec(cell="lstm", cell_options={"forget_bias": "one"}))
    with pytest.raises(PluginOptionError, match="decoder 'fixed' .*unknown option 'attention'"):
        Seq2Seq(tiny_spec(decoder_options={"attention": "luong"}))


def test_tokenizer_and_search_options_are_validated(tiny_spec):
    with pytest.raises(
        PluginOptionError, match="tokenizer 'sentencepiece' .*'model' .*'model_type'"
    ):
        train_tokenizer("sentencepiece", ["a b c"], 20, model="bpe")
    model = Seq2Seq(tiny_spec()).eval()
    src, lengths = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    with pytest.raises(PluginOptionError, match="search 'beam' .*'beamsize' .*'beam_size'"):
        generate(model, src, lengths, "beam", beamsize=2)
    with pytest.raises(PluginOptionError, match="search 'greedy' .*unknown option 'beam_size'"):
        generate(model, src, lengths, "greedy", beam_size=2, max_length=5)


# ------------------------------------------------------------------ discovery


def test_plugins_command_lists_groups_names_distributions_and_descriptions(capsys):
    assert plugins.main([]) == 0
    out = capsys.readouterr().out
    for group in registry.GROUPS:
        assert f"{group}\n" in out
    lines = out.splitlines()
    elman = next(line for line in lines if line.split()[:1] == ["elman"])
    assert "seq2seq-rnn 0.1.0" in elman and "Factory for the `elman` cell" in elman
    for name in ("gru", "lstm", "sentencepiece", "char", "word", "fixed", "greedy", "beam"):
        assert any(line.split()[:2] == [name, "seq2seq-rnn"] for line in lines), name


def test_plugins_command_verbose_json_and_errors(capsys):
    plugins.main(["cells", "-v"])
    out = capsys.readouterr().out
    assert "seq2seq.tokenizers" not in out
    assert "entry point: seq2seq.cells.elman:elman" in out
    assert "options: activation='tanh'" in out
    plugins.main(["search", "--json"])
    assert '"name": "beam"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        plugins.main(["layers"])
    assert "unknown group 'seq2seq.layers'" in capsys.readouterr().err


def test_plugins_command_exits_1_when_a_plugin_is_broken(fake_plugins, capsys):
    fake_plugins("seq2seq.decoders", "broken", "seq2seq_no_such_module:dec", "broken-dist")
    assert plugins.main(["decoders"]) == 1
    out = capsys.readouterr().out
    assert "broken-dist 9.9" in out and "BROKEN: ModuleNotFoundError" in out
    assert "fixed" in out
