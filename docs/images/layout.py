"""Draws docs/images/layout.png, the package layers (run from the repository root)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

layers = [
    ("commands", ["commands/"], "#d9e7f5", "every command-line tool"),
    (
        "tasks",
        ["training/", "translation/", "lm/"],
        "#dff0d8",
        "training, translating, the character LM",
    ),
    (
        "building blocks",
        ["nn/", "data/", "search/", "cells/", "decoders/", "tokenizers/"],
        "#fcf1d9",
        "networks, corpora, built-in plugins",
    ),
    (
        "foundations",
        ["registry.py", "checkpoint.py", "hardware.py"],
        "#f2dede",
        "plugin registry, checkpoints, CPU settings",
    ),
]
fig, ax = plt.subplots(figsize=(10, 5.6), dpi=120)
ax.set_xlim(0, 10)
ax.set_ylim(0, 5.6)
ax.axis("off")
y = 4.7
for i, (title, boxes, color, caption) in enumerate(layers):
    ax.text(0.1, y + 0.35, title, fontsize=11, fontweight="bold", va="center")
    ax.text(0.1, y + 0.05, caption, fontsize=8, va="center", color="#555")
    n = len(boxes)
    width = min(1.15, 6.6 / n - 0.1)
    total = n * width + (n - 1) * 0.1
    x0 = 3.2 + (6.6 - total) / 2
    for j, name in enumerate(boxes):
        x = x0 + j * (width + 0.1)
        ax.add_patch(
            FancyBboxPatch((x, y), width, 0.6, boxstyle="round,pad=0.02", fc=color, ec="#666")
        )
        ax.text(
            x + width / 2, y + 0.3, name, ha="center", va="center", fontsize=9, family="monospace"
        )
    if i < len(layers) - 1:
        ax.annotate(
            "",
            xy=(6.5, y - 0.45),
            xytext=(6.5, y - 0.05),
            arrowprops=dict(arrowstyle="->", color="#444", lw=1.5),
        )
        ax.text(6.65, y - 0.27, "imports", fontsize=8, color="#444", va="center")
    y -= 1.2
ax.add_patch(
    FancyBboxPatch(
        (3.2, -0.05 + 0.1), 6.6, 0.45, boxstyle="round,pad=0.02", fc="#eeeeee", ec="#999"
    )
)
ax.text(
    6.5,
    0.32,
    "testing/  the plugin author kit (uses nn/ and the registry)",
    ha="center",
    va="center",
    fontsize=8.5,
    family="monospace",
)
ax.set_title("seq2seq/: imports point down", fontsize=12)
fig.tight_layout()
fig.savefig("docs/images/layout.png")
