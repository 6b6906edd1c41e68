"""`python -m seq2seq.diagnose gradients|clipping`: recurrent-training diagnostics."""

import sys

from seq2seq.commands.diagnose import main

if __name__ == "__main__":
    sys.exit(main())  # its exit status: 2 for a mistake
