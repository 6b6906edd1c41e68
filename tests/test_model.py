"""Model construction: initialisation schemes reach the recurrent weights."""

import torch

from seq2seq.nn.model import ModelSpec, Seq2Seq


def test_model_init_scheme_reaches_encoder_and_decoder_cells():
    spec = dict(src_vocab_size=30, tgt_vocab_size=30, cell="gru", embedding_size=8, hidden_size=16)
    torch.manual_seed(0)
    default = Seq2Seq(ModelSpec(**spec))
    torch.manual_seed(0)
    gaussian = Seq2Seq(ModelSpec(**spec, init="gaussian", init_std=1.0))
    for model, expected_std in ((default, None), (gaussian, 1.0)):
        for rnn in (model.encoder.rnn, model.decoder.rnn):
            weight = rnn.layers[0][0].rnn.weight_hh_l0
            if expected_std is None:
                assert weight.abs().max() <= 1 / 16**0.5 + 1e-6  # torch's uniform(±1/sqrt(H))
            else:
                assert 0.8 < weight.std() < 1.2
    assert torch.equal(default.src_embedding.weight, gaussian.src_embedding.weight)


def test_checkpoints_from_before_the_output_layer_rename_still_load():
    """Older checkpoints call the output layer `generator`; loading renames the keys."""
    torch.manual_seed(0)
    model = Seq2Seq(ModelSpec(src_vocab_size=30, tgt_vocab_size=40, hidden_size=16))
    old = {k.replace("output_layer.", "generator.", 1): v for k, v in model.state_dict().items()}
    assert "generator.weight" in old
    fresh = Seq2Seq(ModelSpec(src_vocab_size=30, tgt_vocab_size=40, hidden_size=16))
    fresh.load_state_dict(old)
    for name, tensor in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
