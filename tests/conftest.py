"""Shared test fixtures.

Real corpora are found through ONE location: the environment variable
``SEQ2SEQ_DATA``. When it is unset, it defaults to ``../shared/data`` beside the
repository root (where CI keeps them); it is then exported so that code under
test (e.g. ``data.root``'s default) and subprocesses see the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()

if not os.environ.get("SEQ2SEQ_DATA"):
    os.environ["SEQ2SEQ_DATA"] = str(DEFAULT_DATA)


def _register_hypothesis_profile() -> None:
    """Property tests run SEQ2SEQ_HYPOTHESIS_EXAMPLES generated examples each (default
    150, fast enough for CI); e.g. SEQ2SEQ_HYPOTHESIS_EXAMPLES=3000 for a long hunt.
    Tests that pass their own settings() inherit this count unless they set one."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is only needed by the property tests
        return
    raw = os.environ.get("SEQ2SEQ_HYPOTHESIS_EXAMPLES", "150")
    try:
        examples = int(raw)
    except ValueError:
        raise pytest.UsageError(
            f"SEQ2SEQ_HYPOTHESIS_EXAMPLES must be a whole number >= 1, got {raw!r}"
        ) from None
    if examples < 1:
        raise pytest.UsageError(f"SEQ2SEQ_HYPOTHESIS_EXAMPLES must be >= 1, got {examples}")
    settings.register_profile(
        "seq2seq",
        max_examples=examples,
        deadline=None,  # a translation can take a while; time is not the property
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.load_profile("seq2seq")


_register_hypothesis_profile()


@pytest.fixture(scope="session", autouse=True)
def no_native_bf16():
    """Precision `auto` chooses as on a CPU without native bf16 (fp32), so that tests
    comparing two code paths get the same numbers on a CI machine whose CPU has AMX or
    AVX512-BF16. Tests of the choice inject CPU flags (tests/test_precision_choice.py)."""
    from seq2seq import hardware

    real = hardware.cpu_flags

    def flags(*args):
        found = real(*args)
        return None if found is None else found - hardware.NATIVE_BF16_FLAGS

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hardware, "cpu_flags", flags)
        yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holds seq2seq/, data_scripts/, tests/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder holding the real corpora (``multi30k/``, ``en_es/``), from ``$SEQ2SEQ_DATA``."""
    root = Path(os.environ["SEQ2SEQ_DATA"]).expanduser().resolve()
    expected = [root / "multi30k" / "train.en.gz", root / "en_es"]
    missing = [str(p) for p in expected if not p.exists()]
    if missing:
        pytest.fail(
            f"real corpora not found: SEQ2SEQ_DATA={root} lacks {', '.join(missing)}. "
            f"Set SEQ2SEQ_DATA to the shared data folder (default: {DEFAULT_DATA}), or "
            "prepare one with `python data_scripts/prepare.py all --root DIR`.",
            pytrace=False,
        )
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: extra intra-op threads only add overhead (and contention)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def attention_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A tiny attention model trained on real Multi30k en→de, shared by the tests that
    only read it (translate, align, export, score); its run folder holds best.pt."""
    import torch
    from _models import train_tiny

    threads = torch.get_num_threads()
    try:
        run = train_tiny(
            tmp_path_factory.mktemp("attention_run"),
            ["trainer.threads=1", "model.decoder=bahdanau"],
        )
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def fixed_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A tiny fixed-vector model (the sentence as one vector, no attention) trained on real
    Multi30k en→de with tests/_models.py's TINY settings, shared by the tests that only
    read it (search, ensembles, the translate and bleu commands, hostile input); its run
    folder holds best.pt and last.pt. Write nothing into it."""
    import torch
    from _models import train_tiny

    threads = torch.get_num_threads()
    try:
        run = train_tiny(tmp_path_factory.mktemp("fixed_run"), ["trainer.threads=1"])
    finally:
        torch.set_num_threads(threads)
    return run
