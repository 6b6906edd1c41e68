"""Decoder networks: how the decoder RNN consumes the encoder (`seq2seq.decoders`).

The contract every decoder honours is written once, in `seq2seq.contracts.DecoderFactory`
(what seq2seq passes to the factory), `seq2seq.contracts.Decoder` and
`seq2seq.contracts.AttentionDecoder` (what the built module offers).
"""
