#!/usr/bin/env python
"""Download/prepare public corpora into the SEQ2SEQ_DATA layout (= python -m seq2seq.data.prepare).

    python data_scripts/prepare.py {multi30k,tatoeba_en_es,all} --root DIR [--from-dir DIR_OR_FILE]

See ``python data_scripts/prepare.py --help``.
"""

import sys
from pathlib import Path

try:
    from seq2seq.commands.prepare import main
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seq2seq.commands.prepare import main

if __name__ == "__main__":
    sys.exit(main())
