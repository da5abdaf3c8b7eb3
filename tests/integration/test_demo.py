"""The README's main job, ``inferwatch demo``, end to end: its own stack, a worker, the built-in scenario."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_alerts_each_incident_once_resolves_it_and_stays_quiet_after(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}  # the demo's own defaults
    try:
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "demo", "--state-dir", str(state_dir), "--speed", "20"],
            capture_output=True, text=True, timeout=600, env=env,
        )
    finally:
        subprocess.run([sys.executable, "-m", "streams.localstack", "--state-dir", str(state_dir), "down"],
                       capture_output=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    summary = out.split("\nsummary\n", 1)[1]
    assert re.search(r"InputDrift\s+input_drift\s+alerts 1 .*, resolved", summary), summary
    assert re.search(r"GpuContention\s+correlated\s+alerts 1 .*, resolved", summary), summary
    assert re.search(r"quiet period\s+alerts 0", summary), summary
    notified = re.search(r"Alertmanager notified the webhook (\d+) times", summary)
    assert notified and int(notified.group(1)) >= 2, summary  # each alert reached Alertmanager and its webhook
    assert re.search(r"FIRING\s+input_drift\s+fraud-detector", out)  # shown live as they fire
