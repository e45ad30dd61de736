"""The examples in the docstrings run."""

import doctest

import pytest

import eplb
import eplb._live
import eplb.sglang
import eplb.vllm


@pytest.mark.parametrize("module", [eplb, eplb._live, eplb.sglang, eplb.vllm], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
