"""Public test sets by name (wmt13, iwslt17, …), through sacreBLEU's own downloader and
cache, so that a score here is computed on exactly the text a paper's sacreBLEU score
was.

The cache is sacreBLEU's: ``$SACREBLEU``, else ``~/.sacrebleu``. A set already there
is read without any network. A missing one is downloaded, unless ``$SEQ2SEQ_OFFLINE``
is set or the download fails; then the error gives the exact ``sacrebleu`` command
that prepares it (run where there is network, with the same ``SACREBLEU``).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from seq2seq.data.reading import CorpusError, read_lines


@dataclass
class NamedTestSet:
    """A test set's source lines and reference streams (one or more, each aligned with
    the source), and the name it is reported under (`wmt13 en-es`)."""

    name: str
    src: list[str]
    refs: list[list[str]]


def cache_dir() -> Path:
    """Where sacreBLEU keeps its test sets (its own rule)."""
    from sacrebleu.utils import SACREBLEU_DIR

    return Path(SACREBLEU_DIR)


def prepare_command(testset: str, langpair: str) -> str:
    """The sacreBLEU command that downloads `testset` into the cache this process reads."""
    prefix = f"SACREBLEU={os.environ['SACREBLEU']} " if os.environ.get("SACREBLEU") else ""
    return f"{prefix}sacrebleu --download {testset} -l {langpair}"


def _dataset(testset: str):
    from sacrebleu.dataset import DATASETS

    if testset not in DATASETS:
        close = difflib.get_close_matches(testset, list(DATASETS), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CorpusError(
            f"--testset {testset}: sacreBLEU knows no such test set{hint}; "
            "`sacrebleu --list` lists them"
        )
    return DATASETS[testset]


def language_pairs(testset: str) -> list[str]:
    """The language pairs sacreBLEU offers for `testset`."""
    return list(_dataset(testset).langpairs)


def load_test_set(testset: str, langpair: str) -> NamedTestSet:
    """Source and references of `testset` for `langpair` (`en-es`), from the cache, or
    downloaded into it. Raises CorpusError naming the preparing command when it can't."""
    dataset = _dataset(testset)
    if langpair not in dataset.langpairs:
        raise CorpusError(
            f"--testset {testset} has no language pair {langpair}; it has: "
            f"{', '.join(dataset.langpairs)}"
        )
    fields = dataset.fieldnames(langpair)
    files = [Path(dataset._get_txt_file_path(langpair, field)) for field in fields]
    cached = all(f.is_file() for f in files)
    if not cached and os.environ.get("SEQ2SEQ_OFFLINE"):
        raise CorpusError(
            f"{testset} {langpair} is not in the sacreBLEU cache {cache_dir()} and "
            f"SEQ2SEQ_OFFLINE is set; prepare it where there is network with:\n  "
            f"{prepare_command(testset, langpair)}"
        )
    try:
        src_file = dataset.get_source_file(langpair)
        ref_files = dataset.get_reference_files(langpair)
    except Exception as error:  # sacreBLEU raises bare Exceptions and URLErrors alike
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise CorpusError(
            f"{testset} {langpair} is not in the sacreBLEU cache {cache_dir()} and could "
            f"not be downloaded ({reason}); prepare it where there is network with:\n  "
            f"{prepare_command(testset, langpair)}"
        ) from None
    src = read_lines(src_file)
    refs = [read_lines(f) for f in ref_files]
    for ref, ref_file in zip(refs, ref_files, strict=True):
        if len(ref) != len(src):
            raise CorpusError(
                f"the sacreBLEU cache is inconsistent: {src_file} has {len(src)} lines but "
                f"{ref_file} has {len(ref)}; delete {Path(src_file).parent} and run "
                f"{prepare_command(testset, langpair)}"
            )
    return NamedTestSet(f"{testset} {langpair}", src, refs)
