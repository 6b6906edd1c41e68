"""`python -m seq2seq.train +exp=en_es`: train a model (seq2seq.commands.train)."""

from seq2seq.commands.train import main

if __name__ == "__main__":
    main()
