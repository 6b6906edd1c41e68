"""`python -m seq2seq.plugins`: list the installed plugins (seq2seq.commands.plugins)."""

from seq2seq.commands.plugins import main

if __name__ == "__main__":
    main()
