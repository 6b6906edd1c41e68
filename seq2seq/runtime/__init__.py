"""Translation without torch: the built-in networks and searches in numpy.

`seq2seq-translate` runs an exported model folder (`seq2seq-export`) here by default
when the model and the options allow (`--engine`): importing torch alone takes seconds,
numpy a tenth of one. The numbers are torch's within float32 rounding; the tests hold
the two paths equal.
"""
