"""Corpus reading, named corpora with their splits, and download/prepare of public corpora."""
