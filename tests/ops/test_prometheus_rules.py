"""The alert rules in ops/prometheus/ load, and promtool's unit tests show each alert firing and not firing.

promtool comes with the Debian package ``prometheus``, which scripts/setup installs for the tests
(HUB_DEV=1): a missing promtool fails here rather than skipping, so CI cannot pass without running them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "ops" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: scripts/setup installs it with HUB_DEV=1 (Debian package prometheus)")
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def load(name: str) -> Any:
    return yaml.safe_load((PROMETHEUS_DIR / name).read_text(encoding="utf-8"))


def test_rules_and_scrape_config_are_valid(promtool: str) -> None:
    rules = run(promtool, "check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = run(promtool, "check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    alerts = {rule["alert"] for group in load("alerts.yml")["groups"] for rule in group["rules"] if "alert" in rule}
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in load("alerts_test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts, "no alert rule found"
    assert alerts - fired == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown staying quiet"


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """promtool really compares: the same tests expecting the down alert one minute early fail."""
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", tmp_path / "alerts.yml")
    tests = load("alerts_test.yml")
    first = tests["tests"][0]["alert_rule_test"]
    first[0]["exp_alerts"] = first[1]["exp_alerts"]  # expects HubIntegrationDown at 6 m: it is still pending
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "HubIntegrationDown" in result.stdout + result.stderr
