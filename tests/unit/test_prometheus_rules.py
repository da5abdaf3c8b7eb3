"""Prometheus rules in deploy/prometheus/rules: valid, and unit-tested with promtool —
every alert both firing and not firing, every recorded series checked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
RULE_FILES = [RULES / "recording.yml", RULES / "alerts.yml"]
TEST_FILES = sorted((RULES / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path is not None, "promtool not installed: deploy/install.sh installs it (make test runs it)"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def test_rule_files_pass_promtool_check(promtool: str) -> None:
    result = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_unit_tests_pass(promtool: str) -> None:
    assert TEST_FILES, "no promtool tests in deploy/prometheus/rules/tests"
    result = _run(promtool, "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_promtool_catches_a_wrong_expectation(promtool: str, tmp_path: Path) -> None:
    """The harness can fail: a copy of the alert tests expecting nothing where an alert fires."""
    text = (RULES / "tests" / "alerts_test.yml").read_text().replace("../alerts.yml", str(RULES / "alerts.yml"))
    broken = re.sub(r"(alertname: InferwatchWorkerDown\n\s+exp_alerts:)\n(\s+- exp_labels)", r"\1 []\n#\2", text, count=1)
    assert broken != text
    (tmp_path / "broken_test.yml").write_text(broken)
    result = _run(promtool, "test", "rules", str(tmp_path / "broken_test.yml"))
    assert result.returncode != 0


def _alert_cases() -> dict[str, set[str]]:
    """alertname -> {"firing", "quiet"}: which kinds of case the promtool tests have."""
    cases: dict[str, set[str]] = {}
    for path in TEST_FILES:
        text = path.read_text()
        for match in re.finditer(r"alertname:\s*(\w+)\s*\n\s*exp_alerts:(.*)\n(.*)", text):
            name, inline, following = match.groups()
            kind = "quiet" if inline.strip() == "[]" else "firing" if "exp_labels" in following else "?"
            cases.setdefault(name, set()).add(kind)
    return cases


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = re.findall(r"^\s*- alert:\s*(\w+)", (RULES / "alerts.yml").read_text(), re.M)
    assert len(alerts) >= 4
    assert {"InferwatchWorkerDown", "InferwatchConsumerLagGrowing", "InferwatchDeadLetterRateHigh",
            "InferwatchAlertmanagerDeliveryFailing"} <= set(alerts)
    cases = _alert_cases()
    for alert in alerts:
        assert cases.get(alert, set()) >= {"firing", "quiet"}, f"{alert}: cases {cases.get(alert)}"


def test_every_recorded_series_is_tested() -> None:
    recorded = set(re.findall(r"^\s*- record:\s*(\S+)", (RULES / "recording.yml").read_text(), re.M))
    tested = set()
    for path in TEST_FILES:
        tested.update(re.findall(r"^\s*- expr:\s*([\w:]+)", path.read_text(), re.M))
    assert recorded, "no recording rules"
    assert recorded <= tested, f"recording rules without a promtool test: {sorted(recorded - tested)}"


def test_alerts_have_severity_summary_and_description() -> None:
    blocks = re.split(r"^\s*- alert:", (RULES / "alerts.yml").read_text(), flags=re.M)[1:]
    for block in blocks:
        name = block.split()[0]
        assert re.search(r"severity:\s*(critical|warning)", block), name
        assert "summary:" in block and "description:" in block, name
