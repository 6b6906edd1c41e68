"""`python -m seq2seq.plugins`: list the installed plugins (seq2seq.commands.plugins)."""

import sys

from seq2seq.commands.plugins import main

if __name__ == "__main__":
    sys.exit(main())  # its exit status, e.g. 1 when a plugin is broken
