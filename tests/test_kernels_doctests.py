"""The examples in the kernels' docstrings run and print what they show."""
import doctest
import importlib

import pytest

pytestmark = pytest.mark.kernels

MODULES = ["nnprune.functional", "nnprune.functional.conv", "nnprune.functional.pool",
           "nnprune.functional.norm", "nnprune.functional.loss", "nnprune.functional.dense",
           "nnprune.functional.validation",
           "nnprune.functional.winograd", "nnprune.functional.conv_algorithms",
           "nnprune.functional.conv_plain", "nnprune.functional.winograd_transforms",
           "nnprune.functional.scratch", "nnprune.threads", "nnprune.bench.timing"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
