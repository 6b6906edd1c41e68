"""Built-in recurrent cells. Each module exposes a factory registered in `seq2seq.cells`."""
