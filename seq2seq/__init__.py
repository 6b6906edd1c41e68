"""seq2seq: recurrent neural machine translation with pluggable cells, tokenizers,
decoders and search strategies."""

__version__ = "0.1.0"
