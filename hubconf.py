"""torch.hub entry points, for loading a model from a checkout of this repository:

import torch
translator = torch.hub.load("path/to/seq2seq", "translator", "MODEL_FOLDER", source="local")
print(translator.translate("A man is riding a bike.").text)
"""

dependencies = ["torch", "sentencepiece", "safetensors", "huggingface_hub"]


def translator(path: str, device: str = "cpu", precision: str = "auto"):
    """A `seq2seq.Translator` from an exported model folder, a run folder or a checkpoint."""
    from seq2seq import Translator

    return Translator.from_pretrained(path, device=device, precision=precision)
