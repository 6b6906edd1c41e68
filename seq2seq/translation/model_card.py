"""The model card (`README.md`) of an exported model folder.

It says what a reader needs before using a model: the language pair and data, the
architecture, how it was trained, its scores with their sacreBLEU signatures (so
they can be compared), and how to load it. The YAML header is the Hugging Face Hub's
model-card metadata.
"""

from __future__ import annotations

from typing import Any

WEIGHT_TEXT = {
    "fp32": "float32",
    "int8": "int8, one float32 scale per row (loaded as float32; scores measured so)",
}
LANGUAGE_NAMES = {
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
}


def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code or "", code or "?")


def model_card(description: dict[str, Any], parameters: int) -> str:
    """Markdown for a model folder's README.md from its config.json content."""
    src, tgt = description.get("source_language"), description.get("target_language")
    spec = description["model_spec"]
    config = description.get("training_config", {})
    metadata = description.get("metadata", {})
    corpus = config.get("data", {}).get("corpus", "?")
    pair = f"{language_name(src)}→{language_name(tgt)}"
    lines = [
        "---",
        "language:",
        *(f"- {code}" for code in (src, tgt) if code),
        "library_name: seq2seq",
        "pipeline_tag: translation",
        "tags:",
        "- translation",
        "- rnn",
        "- seq2seq",
        "---",
        "",
        f"# {pair} recurrent translation model ({corpus})",
        "",
        f"A recurrent encoder-decoder (cell `{spec.get('cell')}`, decoder "
        f"`{spec.get('decoder')}`) trained with seq2seq {description.get('seq2seq_version', '')} "
        f"on the `{corpus}` corpus ({src}→{tgt}).",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| cell | {spec.get('cell')} ({spec.get('num_layers')} layer(s), "
        f"{'bidirectional' if spec.get('bidirectional') else 'unidirectional'} encoder) |",
        f"| decoder | {spec.get('decoder')} |",
        f"| embedding / hidden size | {spec.get('embedding_size')} / {spec.get('hidden_size')} |",
        f"| vocabulary (source / target) | {spec.get('src_vocab_size')} / "
        f"{spec.get('tgt_vocab_size')} |",
        f"| parameters | {parameters:,} |",
        f"| weights | {WEIGHT_TEXT.get(description.get('weights', 'fp32'), '?')} |",
        "",
        "## Training",
        "",
    ]
    if metadata.get("trained_with"):
        lines += ["Trained with:", "", "```bash", metadata["trained_with"], "```", ""]
    summary = metadata.get("run_summary") or {}
    if summary:
        lines.append(
            f"{summary.get('updates', '?')} updates in {summary.get('wall_s', 0) / 60:.1f} "
            f"minutes; stopped because: {summary.get('stop_reason', '?')}."
        )
        lines.append("")
    lines += ["## Results", ""]
    scores = metadata.get("scores") or []
    if scores:
        lines += ["| test set | search | BLEU | chrF | sacreBLEU signatures |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for row in scores:
            lines.append(
                f"| {row['test_set']} | {row['search']} | {row['BLEU']['score']:.2f} | "
                f"{row['chrF2']['score']:.2f} | `{row['BLEU']['signature']}`<br>"
                f"`{row['chrF2']['signature']}` |"
            )
    else:
        lines.append("Not measured at export.")
    lines += [
        "",
        "## How to use",
        "",
        "```bash",
        'echo "A man is riding a bike." | seq2seq-translate --checkpoint THIS_FOLDER',
        "```",
        "",
        "```python",
        "import seq2seq",
        "",
        'translator = seq2seq.Translator.from_pretrained("THIS_FOLDER")',
        'print(translator.translate("A man is riding a bike.", search="beam", beam_size=5).text)',
        "```",
        "",
        "Replace `THIS_FOLDER` with this folder's path (or its Hub repository id with "
        "`from_pretrained`). The folder holds `model.safetensors`, `config.json` (shape, "
        "languages, training config, scores) and `tokenizer/`.",
        "",
    ]
    return "\n".join(lines)
