"""`python -m seq2seq.bench +exp=en_de_ref`: how fast a recipe trains and translates here."""

from seq2seq.commands.bench import main

if __name__ == "__main__":
    main()
