"""Decoder networks: how the decoder RNN consumes the encoder (`seq2seq.decoders`).

A decoder is built by `factory(embedding_size=, encoder_size=, hidden_size=, cell=,
cell_options=, num_layers=, dropout=, fused=, **options)` and offers:

- `output_size`: size of the feature vector fed to the output projection;
- `init_state(enc) -> state`: decoder state from an `EncoderOutput` (a Tensor or
  nested tuples/lists of Tensors, batch first, so search can reorder it);
- `forward(emb [B,T,E], enc, state) -> features [B,T,output_size]` (teacher forcing);
- `step(emb [B,E], enc, state) -> (features [B,output_size], state)` (generation);
- optionally `attention_weights(state) -> Tensor [B, S]`: the attention of the last
  `step` (attention decoders keep it in their state, so search reorders it too);
  used for coverage penalties, attention plots and alignments.
"""
