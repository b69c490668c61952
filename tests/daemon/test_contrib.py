"""The files beside the code: alert rules, the systemd unit, the Grafana dashboard and provisioning."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemonhelpers import DASHBOARD, REPO, RULE_TESTS, RULES, SHARED, UNIT

SCHEMAS = SHARED / "schemas" / "grafana-11.6"
PANEL_SCHEMAS = {"timeseries": "timeseries", "stat": "stat", "heatmap": "heatmap", "state-timeline": "statetimeline"}
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: apt-get install prometheus"
)
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
needs_schemas = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"{SCHEMAS} is absent: schema checks skipped")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd)


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


# ------------------------------------------------------------------ Prometheus rules


@needs_promtool
def test_rules_check_and_their_unit_tests_pass() -> None:
    checked = run("promtool", "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run("promtool", "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_unit_tested_and_documented() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    tested = {
        t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"] for t in case["alert_rule_test"]
    }
    names = {r["alert"] for r in rules}
    required = {"PumpsyncStreamStale", "PumpsyncReconnectStorm", "PumpsyncNoHealthyConnection",
                "PumpsyncEventDelayHigh", "PumpsyncEventsDropped", "PumpsyncBackfillFailures"}  # fmt: skip
    assert required <= names
    assert names == tested
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# ------------------------------------------------------------------ systemd


def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's pumpsync (verify checks that it exists)."""
    exe = shutil.which("pumpsync")
    if exe is None:
        pytest.skip("the pumpsync console script is not on PATH (pip install -e .)")
    path = tmp_path / "pumpsync.service"
    path.write_text(UNIT.read_text().replace("/opt/pumpsync/bin/pumpsync", exe))
    return path


@needs_systemd
def test_the_unit_verifies_clean(tmp_path: Path) -> None:
    result = run("systemd-analyze", "verify", str(unit_copy(tmp_path)))
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stdout + result.stderr


@needs_systemd
def test_the_unit_is_hardened_to_2_or_lower(tmp_path: Path) -> None:
    result = run("systemd-analyze", "security", "--offline=true", str(unit_copy(tmp_path)))
    match = re.search(r"Overall exposure level for pumpsync\.service: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_the_unit_has_what_the_daemon_needs() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes", "StateDirectory=pumpsync",
                 "LoadCredential=api_key:", "ExecReload=/bin/kill -HUP $MAINPID"):  # fmt: skip
        assert line in text


# ------------------------------------------------------------------ Grafana


@needs_schemas
def test_the_dashboard_validates_against_the_grafana_schema() -> None:
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    result = run(exe, "--schemafile", str(SCHEMAS / "dashboard.jsonschema.json"), str(DASHBOARD))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_schemas
def test_panel_options_and_targets_validate_against_their_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema")

    def validator(name: str, definition: str) -> Any:
        schema = json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text())
        return jsonschema.Draft7Validator({"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]})

    target_check = validator("prometheus", "dataquery")
    for panel in panels():
        validator(PANEL_SCHEMAS[panel["type"]], "Options").validate(panel["options"])
        for target in panel["targets"]:
            target_check.validate(target)


def test_the_dashboard_is_wired_to_its_variables() -> None:
    data = dashboard()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance"} <= set(variables)
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"] and 'instance=~"$instance"' in target["expr"], target["expr"]
    titles = " ".join(p["title"].lower() for p in panels())
    for topic in ("connection state", "events per second", "delay", "distribution",
                  "heartbeat", "reconnects", "queue", "drops", "backfill", "sink"):  # fmt: skip
        assert topic in titles, topic
    assert {p["type"] for p in panels()} >= {"heatmap", "state-timeline", "timeseries", "stat"}


def test_provisioning_points_at_the_dashboards_folder() -> None:
    provisioning = REPO / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "pumpsync.yaml").read_text())["providers"]
    path = providers[0]["options"]["path"].replace("${GF_PATHS_PROVISIONING}", str(provisioning))
    assert (Path(path).resolve() / DASHBOARD.name) == DASHBOARD.resolve()
    datasources = yaml.safe_load((provisioning / "datasources" / "pumpsync.yaml").read_text())["datasources"]
    assert datasources[0]["type"] == "prometheus"
