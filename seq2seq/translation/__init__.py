"""Translating with a trained model: loading, decoding lines in order, attention alignments."""
