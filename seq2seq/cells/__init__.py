"""Built-in recurrent cells; each module's factory is registered in `seq2seq.cells`.

The contract every cell honours is `seq2seq.contracts.CellFactory` and `seq2seq.contracts.Cell`.
"""
