"""The network: the encoder–decoder model, the recurrent stack that runs any cell over time,
dropout, initialisation and ensembles."""
