"""The seeded Examples in the drift and calibration docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "models.calibration",
    "models.drift._reference",
    "models.drift.numeric",
    "models.drift.missing_rate",
    "models.drift.categorical",
    "models.drift.multivariate",
    "models.drift.confidence",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
