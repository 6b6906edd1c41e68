"""`python -m seq2seq.diagnose gradients|clipping`: recurrent-training diagnostics."""

from seq2seq.commands.diagnose import main

if __name__ == "__main__":
    main()
