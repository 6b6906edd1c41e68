"""Seeing attention: soft attention matrices, hard alignments and heatmaps.

The attention of a translation is recovered by a forced decode of the chosen
hypothesis: the source is encoded exactly as for translation (ids + EOS), and
the decoder is fed BOS, then the hypothesis' tokens, one `decode_step` at a
time, collecting `model.attention(state)` after every step. Row t of the result
is the attention the decoder used to predict target token t; the last row is
the one that predicted EOS. This works for any model with the search-facing API
(`Seq2Seq`, `Ensemble`: the mean of its members' attention) and any search
strategy, since it only replays the tokens the search chose.

Layout of a matrix: `[T + 1, S + 1]` for a hypothesis of T tokens and a source of
S tokens. Rows: the T target tokens, then the target EOS. Columns: the S source
tokens, then the source EOS the encoder reads. Each row is a distribution
(non-negative, sums to 1) over these columns.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from seq2seq.tokenizers import EOS_ID, Tokenizer
from seq2seq.translation.forced import forced_decode
from seq2seq.translation.output import EOS_LABEL


class AttentionUnavailable(ValueError):
    """The model has no attention to show (a fixed-vector decoder); CLIs exit 2."""


def decoder_names(model) -> list[str]:
    """The decoder name(s) from the model's spec (an ensemble: each member's, once)."""
    members = getattr(model, "members", None) or [model]
    names: list[str] = []
    for member in members:
        name = str(getattr(getattr(member, "spec", None), "decoder", "unknown"))
        if name not in names:
            names.append(name)
    return names


def _unavailable(model, flag: str) -> AttentionUnavailable:
    names = decoder_names(model)
    used = (
        f"this checkpoint uses '{names[0]}'"
        if len(names) == 1
        else "these checkpoints use " + ", ".join(f"'{n}'" for n in names)
    )
    return AttentionUnavailable(
        f"{flag} needs an attention decoder (model.decoder=bahdanau or luong); {used}"
    )


def require_attention(model, flag: str = "--plot-attention") -> None:
    """Raise AttentionUnavailable unless one decode step of `model` yields attention weights.

    Cheap (a one-token source, one step): run it before translating anything.
    """
    if forced_decode(model, [[EOS_ID]], [[]])[0].attention is None:
        raise _unavailable(model, flag)


def attention_matrices(
    model,
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
    flag: str = "--plot-attention",
) -> list[Tensor]:
    """One `[len(tgt) + 1, len(src) + 1]` attention matrix per (source, target) pair.

    `sources` are source ids without EOS (as a tokenizer gives them; EOS is appended
    here, as for translation), `targets` hypothesis tokens without BOS/EOS. Pairs are
    forced-decoded in batches of similar source length; results keep the input order.
    Empty sources are not allowed (an empty line has nothing to attend to).
    """
    if any(len(s) == 0 for s in sources):
        raise ValueError("attention_matrices: every source needs at least one token")
    replays = forced_decode(model, sources, targets, batch_size=batch_size)
    if replays and replays[0].attention is None:
        raise _unavailable(model, flag)
    return [replay.attention for replay in replays]


def attention_matrix(model, src_ids: Sequence[int], tgt_ids: Sequence[int]) -> Tensor:
    """The `[len(tgt_ids) + 1, len(src_ids) + 1]` attention of one translation."""
    return attention_matrices(model, [src_ids], [tgt_ids])[0]


def hard_alignment(matrix: Tensor) -> list[tuple[int, int]]:
    """Pharaoh pairs `(source index, target index)`, 0-based over subword tokens.

    One pair per target token (the EOS row excluded), linking it to the source token
    it attends to most; the source EOS column is excluded from the argmax (as in
    fairseq's `--print-alignment`), so every index is a real token's. In target order.
    """
    tokens, columns = matrix.size(0) - 1, matrix.size(1) - 1
    if tokens <= 0 or columns <= 0:
        return []
    best = matrix[:tokens, :columns].argmax(dim=1).tolist()
    return [(int(i), j) for j, i in enumerate(best)]


def format_alignment(pairs: Sequence[tuple[int, int]]) -> str:
    """Pharaoh format: space-separated `i-j` (source-target); empty when no pairs."""
    return " ".join(f"{i}-{j}" for i, j in pairs)


def token_labels(tokenizer: Tokenizer, ids: Sequence[int]) -> list[str]:
    """The tokenizer's pieces for `ids`, then the EOS label (the matrix's last row/column)."""
    return [*tokenizer.pieces(list(ids)), EOS_LABEL]


def plot_attention(
    matrix: Tensor,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    path: str | Path,
) -> None:
    """Write a heatmap PNG: source tokens across the top, target tokens down the side.

    `src_tokens`/`tgt_tokens` label the matrix's columns/rows (see `token_labels`).
    Uses matplotlib's Agg canvas directly: no display, no global pyplot state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, columns = matrix.shape
    if len(tgt_tokens) != rows or len(src_tokens) != columns:
        raise ValueError(
            f"attention matrix is {rows}x{columns} but got {len(tgt_tokens)} target and "
            f"{len(src_tokens)} source labels"
        )
    # ~0.25 inch per token; long sentences shrink so that an image stays under ~40 inches.
    cell = min(0.25, 40.0 / max(rows, columns))
    fontsize = max(3.0, min(9.0, cell * 36))
    figure = Figure(figsize=(2.0 + cell * columns, 1.5 + cell * rows), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    values = matrix.detach().float().cpu().numpy()
    image = axes.imshow(
        values,
        cmap="Greys",
        vmin=0.0,
        # Black is the largest weight of this sentence (the colour bar gives the scale):
        # a diffuse attention still shows its structure.
        vmax=max(float(values.max(initial=0.0)), 1e-6),
        aspect="equal",
        interpolation="nearest",
    )
    label_style = {"fontsize": fontsize, "parse_math": False}  # '$' in a piece is text
    axes.set_xticks(range(columns))
    axes.set_xticklabels(list(src_tokens), rotation=90, **label_style)
    axes.set_yticks(range(rows))
    axes.set_yticklabels(list(tgt_tokens), **label_style)
    axes.xaxis.tick_top()
    axes.set_xlabel("source", fontsize=fontsize)
    axes.xaxis.set_label_position("top")
    axes.set_ylabel("target", fontsize=fontsize)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02, shrink=0.8)
    colorbar.ax.tick_params(labelsize=fontsize)
    with warnings.catch_warnings():
        # Scripts the default font lacks render as boxes; one warning per glyph is noise.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.savefig(Path(path), format="png", bbox_inches="tight")


def plot_file_name(line_number: int, width: int = 6) -> str:
    """`000042.png` for input line 42 (1-based); wider numbers are written in full."""
    return f"{line_number:0{width}d}.png"
