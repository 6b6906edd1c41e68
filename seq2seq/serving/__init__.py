"""Serving translations over HTTP: the FastAPI app, dynamic batching, request limits,
Prometheus metrics and the web page (`seq2seq-serve`)."""
