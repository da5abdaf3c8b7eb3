"""The numpydoc Examples of every anomaly module run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["conformal", "context", "cusum_calibration", "dcgm", "floor", "gpu_anomaly", "latency_anomaly", "ring", "season_blocks"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(f"models.anomaly.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
