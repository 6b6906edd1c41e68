"""Draws docs/images/results-plot.png with `seq2seq-results --plot`: two tiny real runs
(GRU and LSTM, 120 updates each on 3,000 Multi30k pairs, CPU, about a minute each),
validated every 20 updates. Run from the repository root with SEQ2SEQ_DATA set."""

import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path("docs/images/results-plot.png")
COMMON = [
    "+exp=en_de_fixed",
    "data.train_subset=3000",
    "data.dev_subset=100",
    "tokenizer.vocab_size=500",
    "model.decoder=fixed",
    "model.bidirectional=false",
    "model.embedding_size=32",
    "model.hidden_size=64",
    "model.encoder_hidden_size=64",
    "trainer.max_steps=120",
    "trainer.eval_every=20",
    "trainer.eval_sentences=100",
    "trainer.checkpoint_every=0",
    "trainer.log_every=20",
    "trainer.batch_tokens=1500",
    "trainer.lr=0.005",
    "trainer.threads=2",
]

with tempfile.TemporaryDirectory() as root:
    for cell in ("gru", "lstm"):
        run_dir = Path(root) / "runs" / cell
        command = [sys.executable, "-m", "seq2seq.train", *COMMON, f"model.cell={cell}"]
        subprocess.run([*command, f"hydra.run.dir={run_dir}"], check=True)
    subprocess.run(
        [sys.executable, "-m", "seq2seq.commands.results", f"{root}/runs", "--plot", str(OUT)],
        check=True,
    )
