"""Playbooks as data: automated steps name real read-only functions, a person's steps exact commands."""

from __future__ import annotations

import importlib
import re

import pytest

from evilent_nb.estate import Service
from evilent_nb.exceptions import ParameterError
from evilent_nb.playbooks import (
    PLAYBOOKS,
    POST_INCIDENT_CHECKLIST,
    checklist_frame,
    playbook,
    playbook_steps,
)

USER = Service("user", "UserServiceStack", "UPDATE_COMPLETE",
               functions=("UserServiceStack-ServiceUserServiceFunction",), apis=("UserServiceApi",))
# writes and risky actions: they must never be automated
RISKY = re.compile(r"rollback|reboot|terminate|update-function|delete|put-|invoke|git push|Slack", re.IGNORECASE)


def test_the_runbook_playbooks_and_high_latency_exist():
    assert sorted(PLAYBOOKS) == ["api-down", "db-connection", "high-error-rate", "high-latency"]
    assert [playbook(i).severity for i in ("api-down", "high-error-rate", "db-connection", "high-latency")] == [
        "P0", "P1", "P1", "P2"]
    with pytest.raises(ParameterError, match="known: api-down"):
        playbook("nope")


@pytest.mark.parametrize("pid", sorted(PLAYBOOKS))
def test_automated_steps_name_existing_package_functions(pid):
    steps = playbook_steps(pid, USER, "eu-central-1")
    assert steps.step.tolist() == list(range(1, len(steps) + 1))
    auto = steps[steps.kind == "automated"]
    assert len(auto) >= 2
    for dotted in auto.command_or_function:
        module, _, name = dotted.rpartition(".")
        assert module.startswith("evilent_nb.")
        assert callable(getattr(importlib.import_module(module), name)), dotted


@pytest.mark.parametrize("pid", sorted(PLAYBOOKS))
def test_risky_actions_are_for_a_person_and_fully_filled(pid):
    steps = playbook_steps(pid, USER, "eu-central-1", db="evilent-user-service-db", db_endpoint="db.example")
    for row in steps.itertuples():
        if row.kind == "automated":
            assert not RISKY.search(row.action), row.action
            assert "apply" not in row.command_or_function  # the package's writes are apply_*
        else:
            assert not re.search(r"\{\w+\}", row.command_or_function), row.command_or_function
            assert "<stack-name>" not in row.command_or_function and "<function-name>" not in row.command_or_function


def test_api_down_commands_are_exact():
    steps = playbook_steps("api-down", USER, "eu-central-1")
    person = steps[steps.kind == "person"].command_or_function.tolist()
    assert person == [
        "aws lambda invoke --function-name UserServiceStack-ServiceUserServiceFunction "
        "--cli-binary-format raw-in-base64-out --payload '{\"httpMethod\":\"GET\",\"path\":\"/health\"}' "
        "--region eu-central-1 response.json",
        "aws cloudformation rollback-stack --stack-name UserServiceStack --region eu-central-1",
        "Slack #incidents: \"P0: UserService API down. Rollback started. ETA: 10 min\"",
    ]
    assert steps.command_or_function.tolist()[:5] == [
        "evilent_nb.inventory.stacks", "evilent_nb.inventory.stack_events", "evilent_nb.inventory.functions",
        "evilent_nb.logs.read_events", "evilent_nb.probes.probe"]


def test_db_connection_commands_and_placeholders_without_a_service():
    steps = playbook_steps("db-connection", db="evilent-user-service-db")
    assert steps.command_or_function.iloc[-1] == "aws rds reboot-db-instance --db-instance-identifier evilent-user-service-db"
    assert steps.kind.iloc[-1] == "person"
    assert "psql -h <db-endpoint>" in steps.command_or_function.iloc[3]
    terminate = steps.command_or_function.iloc[5]
    assert "pg_terminate_backend(pid)" in terminate and "INTERVAL '10 minutes'" in terminate
    # without a service the rollback names a placeholder, not a guessed stack
    assert playbook_steps("api-down").command_or_function.iloc[6] == "aws cloudformation rollback-stack --stack-name <stack-name>"


def test_high_error_rate_runs_the_runbook_insights_query():
    steps = playbook_steps("high-error-rate", USER)
    assert steps.command_or_function.iloc[0] == "evilent_nb.logs.run_insights"
    assert ("fields @timestamp, @message | filter @message like /ERROR/ | stats count() by @message "
            "| sort count desc | limit 10") in steps.action.iloc[0]
    assert steps.command_or_function.iloc[3] == "cd BACKEND/user-service && npm run test:debug"


@pytest.mark.parametrize(("severity", "required"), [(None, 6), ("P0", 6), ("P1", 6), ("P2", 5), ("p3", 5)])
def test_post_incident_checklist(severity, required):
    frame = checklist_frame(severity)
    assert len(frame) == len(POST_INCIDENT_CHECKLIST) == 6
    assert int(frame.required.sum()) == required
    assert frame.iloc[-1].tolist() == ["Hold a post-mortem meeting", "P0-P1", required == 6, False]
    assert not frame.done.any()
