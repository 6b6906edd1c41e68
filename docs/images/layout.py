"""Draws docs/images/layout.png: the package tree, one line per folder, coloured by the
layer it belongs to (imports only point to a lower layer). Run from the repository root."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch

LAYERS = {
    "commands": ("#d9e7f5", "command-line tools"),
    "tasks": ("#dff0d8", "tasks"),
    "config": ("#e8dff5", "config schema"),
    "blocks": ("#fcf1d9", "building blocks and built-in plugins"),
    "foundations": ("#f2dede", "foundations"),
    "kit": ("#eeeeee", "plugin author kit"),
}

TREE = [
    ("seq2seq/", None, "the package"),
    ("├── commands/", "commands", "every command-line tool (train, translate, bleu, ...)"),
    ("├── serving/", "tasks", "the HTTP server: routes, dynamic batching, limits, web page"),
    ("├── training/", "tasks", "the training loop and its units: schedule, checkpoints, ..."),
    ("├── translation/", "tasks", "Translator: any saved model → scored translations"),
    ("├── lm/", "tasks", "the character language model and truncated BPTT"),
    ("├── config/", "config", "the typed config schema and its checks"),
    ("├── nn/", "blocks", "the networks: Seq2Seq, encoder, recurrent stack, dropout"),
    ("├── data/", "blocks", "reading, cleaning, tokenizing and batching corpora"),
    ("│   └── corpora/", "blocks", "one module per known corpus (Multi30k, Tatoeba, files)"),
    ("├── cells/", "blocks", "built-in cells: elman, gru, lstm, layer-normalised"),
    ("├── decoders/", "blocks", "built-in decoders: fixed, bahdanau, luong"),
    ("├── search/", "blocks", "built-in search: greedy, beam, sample"),
    ("├── tokenizers/", "blocks", "built-in tokenizers: sentencepiece, char, word"),
    ("├── testing/", "kit", "checks for plugin authors, one per contract clause"),
    ("└── registry, contracts,", "foundations", "plugin lookup, plugin Protocols,"),
    ("    checkpoint, hardware", "foundations", "safe checkpoint files, CPU settings"),
]

fig, ax = plt.subplots(figsize=(10, 6.2), dpi=120)
ax.set_xlim(0, 10)
ax.set_ylim(0, len(TREE) + 1.5)
ax.axis("off")
for row, (name, layer, caption) in enumerate(TREE):
    y = len(TREE) - row + 0.5
    if layer:
        color = LAYERS[layer][0]
        ax.add_patch(plt.Rectangle((0.1, y - 0.42), 9.8, 0.84, fc=color, ec="none"))
    ax.text(0.25, y, name, va="center", fontsize=10, family="monospace", fontweight="bold")
    ax.text(3.6, y, caption, va="center", fontsize=9, color="#333")
ax.legend(
    handles=[Patch(fc=color, label=label) for color, label in LAYERS.values()],
    loc="lower center",
    bbox_to_anchor=(0.5, -0.02),
    ncol=3,
    fontsize=8,
    frameon=False,
)
ax.set_title("seq2seq/: one folder per concern; imports point down the layers", fontsize=12)
fig.tight_layout()
fig.savefig("docs/images/layout.png")
