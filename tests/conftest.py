"""Fixtures shared by test files."""

import pytest
from recipe_run import _run


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """The whole recipe once: simulate -> describe -> tiny models -> SFT -> y_a -> ref -> ALLD."""
    root = tmp_path_factory.mktemp("alld")
    out = root / "exp"
    proc = _run({"output_folder": out, "corpus_folder": root / "corpus"}, root)
    return out, root, proc
