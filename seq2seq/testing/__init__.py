"""The plugin author kit: contract checks to call from a plugin's own pytest.

    from seq2seq.testing import check_cell
    from mycell import mycell

    def test_mycell_honours_the_cell_contract():
        check_cell(mycell)                       # default options
        check_cell(mycell, gate_bias=1.0)        # options are passed to the factory

`check_cell`, `check_decoder`, `check_tokenizer` and `check_search` test a plugin
against its contract (the Protocols in `seq2seq.contracts`), one named clause at
a time, on small random inputs (a few hundred milliseconds). The first clause
that fails raises a `ContractError` (an AssertionError, so pytest shows it as a
test failure) whose message names the clause, says what is wrong and how to fix it.
"""

from seq2seq.testing.cells import BUILTIN_CELL_SETTINGS, CELL_CLAUSES, check_cell
from seq2seq.testing.common import (
    CellContractError,
    ContractError,
    DecoderContractError,
    SearchContractError,
    TokenizerContractError,
)
from seq2seq.testing.decoders import DECODER_CLAUSES, check_decoder
from seq2seq.testing.search import SEARCH_CLAUSES, check_search
from seq2seq.testing.tokenizers import SAMPLE_TEXTS, TOKENIZER_CLAUSES, check_tokenizer

__all__ = [
    "BUILTIN_CELL_SETTINGS",
    "CELL_CLAUSES",
    "DECODER_CLAUSES",
    "SAMPLE_TEXTS",
    "SEARCH_CLAUSES",
    "TOKENIZER_CLAUSES",
    "CellContractError",
    "ContractError",
    "DecoderContractError",
    "SearchContractError",
    "TokenizerContractError",
    "check_cell",
    "check_decoder",
    "check_search",
    "check_tokenizer",
]
