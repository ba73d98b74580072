"""The runbook's playbooks as data, plus high latency, and the post-incident checklist.

Every step is one of two kinds:

- ``automated``: read-only, and the package does it; the step names the function
  (``evilent_nb.inventory.stack_events``), which the incident report calls;
- ``person``: a write or a risky action (rollback, reboot, terminating sessions,
  notifying, deploying a hotfix), or an action that needs access the package does not
  have (a bastion host, the database); the step shows the exact command, with the
  service's stack, function, log group, region and DB filled in.

Examples
--------
>>> playbook("api-down").severity
'P0'
>>> playbook_steps("api-down").kind.tolist()[:2]
['automated', 'automated']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from .exceptions import ParameterError
from .frames import typed_frame

__all__ = [
    "PLAYBOOKS",
    "POST_INCIDENT_CHECKLIST",
    "STEPS_SCHEMA",
    "Playbook",
    "Step",
    "checklist_frame",
    "playbook",
    "playbook_steps",
]

#: Columns of :func:`playbook_steps`.
STEPS_SCHEMA = {"step": "int64", "kind": "string", "action": "string", "command_or_function": "string"}


@dataclass(frozen=True)
class Step:
    """One step of a playbook.

    Attributes
    ----------
    action
        What the step does, as a sentence.
    kind
        ``automated`` (read-only, done by ``function``) or ``person`` (``command``).
    function
        Dotted name of the package function, for automated steps.
    command
        The command with ``{placeholders}``, for a person's steps.
    """

    action: str
    kind: Literal["automated", "person"]
    function: str | None = None
    command: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "automated") != bool(self.function) or (self.kind == "person") != bool(self.command):
            raise ValueError(f"step {self.action!r}: automated steps name a function, a person's steps a command")


@dataclass(frozen=True)
class Playbook:
    """A runbook playbook: its id, title, typical severity, symptoms and steps."""

    id: str
    title: str
    severity: str
    symptoms: tuple[str, ...]
    steps: tuple[Step, ...]


def _auto(action: str, function: str) -> Step:
    return Step(action, "automated", function=function)


def _person(action: str, command: str) -> Step:
    return Step(action, "person", command=command)


_INSIGHTS_TOP = ("fields @timestamp, @message | filter @message like /ERROR/ "
                 "| stats count() by @message | sort count desc | limit 10")

PLAYBOOKS: dict[str, Playbook] = {
    "api-down": Playbook(
        "api-down", "API Gateway down", "P0",
        ("the API answers 502/503", "CloudWatch shows 100 % errors", "users cannot get in"),
        (
            _auto("Describe the stack: status, outputs, last update", "evilent_nb.inventory.stacks"),
            _auto("Read the stack's last 20 events", "evilent_nb.inventory.stack_events"),
            _auto("Get the Lambda function: runtime, state, last modified", "evilent_nb.inventory.functions"),
            _auto("Read the function's ERROR lines of the last 15 minutes", "evilent_nb.logs.read_events"),
            _auto("Call /health directly", "evilent_nb.probes.probe"),
            _person("If /health fails, invoke the function directly to see its own error (this runs the code)",
                    "aws lambda invoke --function-name {function} --cli-binary-format raw-in-base64-out "
                    "--payload '{{\"httpMethod\":\"GET\",\"path\":\"/health\"}}'{region_flag} response.json"),
            _person("If it still fails, roll the stack back to its last stable state (rollback-stack works on "
                    "a failed update; while an update is in progress use cancel-update-stack)",
                    "aws cloudformation rollback-stack --stack-name {stack}{region_flag}"),
            _person("Notify the team in #incidents",
                    "Slack #incidents: \"P0: {label} API down. Rollback started. ETA: 10 min\""),
        ),
    ),
    "high-error-rate": Playbook(
        "high-error-rate", "High error rate", "P1",
        ("errors above 10 % of requests", "a CloudWatch alarm fired", "some users affected"),
        (
            _auto(f"Find the error pattern of the last hour (Logs Insights: {_INSIGHTS_TOP})",
                  "evilent_nb.logs.run_insights"),
            _auto("Read the most common error and its stack trace", "evilent_nb.logs.error_signatures"),
            _auto("List the deploys and configuration changes just before the errors began",
                  "evilent_nb.incident.suspected_triggers"),
            _person("Reproduce the error locally", "cd BACKEND/{name}-service && npm run test:debug"),
            _person("If it is a new bug, write a hotfix and push it; merging the PR deploys it through CI/CD",
                    "git checkout -b hotfix/error-handling && npm test && "
                    "git commit -am \"hotfix: Fix error handling\" && git push origin hotfix/error-handling"),
            _auto("Watch the errors fall for 30 minutes (Errors Sum per minute)", "evilent_nb.metrics.metric_data"),
        ),
    ),
    "db-connection": Playbook(
        "db-connection", "Database connection issues", "P1",
        ("\"Connection timeout\" errors", "Lambda cannot reach the database", "requests fail with 500"),
        (
            _auto("Read the RDS instance's status", "evilent_nb.inventory.db_instances"),
            _auto("Read the instance's connections and CPU (DatabaseConnections, CPUUtilization)",
                  "evilent_nb.metrics.rds_metrics"),
            _person("Check the security groups of the Lambda function and of the database (read-only)",
                    "aws ec2 describe-security-groups --group-ids <lambda-sg> <rds-sg>{region_flag}"),
            _person("Test connectivity from the bastion",
                    "ssh -i bastion-key.pem ec2-user@<bastion-ip> "
                    "psql -h {db_endpoint} -U postgres -d evilent_user_service -c \"SELECT 1;\""),
            _person("Count the active connections by state",
                    "psql -h {db_endpoint} -U postgres -c "
                    "\"SELECT count(*), state FROM pg_stat_activity GROUP BY state;\""),
            _person("If there are too many, terminate the sessions idle for more than 10 minutes",
                    "psql -h {db_endpoint} -U postgres -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE state = 'idle' AND state_change < current_timestamp - INTERVAL '10 minutes';\""),
            _person("As a last resort, reboot the instance",
                    "aws rds reboot-db-instance --db-instance-identifier {db}{region_flag}"),
        ),
    ),
    "high-latency": Playbook(
        "high-latency", "High latency", "P2",
        ("average Lambda duration above 5000 ms", "the HighLatency alarm fired", "slow responses"),
        (
            _auto("Read Duration (Average and Maximum) and Throttles per function",
                  "evilent_nb.metrics.lambda_metrics"),
            _auto("Read API Gateway Latency and 5xx", "evilent_nb.metrics.apigw_metrics"),
            _auto("Read the database's connections and CPU", "evilent_nb.metrics.rds_metrics"),
            _auto("Read the function's memory and timeout", "evilent_nb.inventory.functions"),
            _auto("List the deploys and configuration changes just before it slowed down",
                  "evilent_nb.incident.suspected_triggers"),
            _person("If the function is starved, give it more memory (and so CPU)",
                    "aws lambda update-function-configuration --function-name {function} "
                    "--memory-size <MB>{region_flag}"),
            _person("Tell the team in #backend-support",
                    "Slack #backend-support: \"P2: {label} is slow. Investigating.\""),
        ),
    ),
}

#: The runbook's post-incident checklist: (item, the severities it applies to).
POST_INCIDENT_CHECKLIST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Document the root cause", ("P0", "P1", "P2", "P3")),
    ("Update the runbook with the lessons learned", ("P0", "P1", "P2", "P3")),
    ("Create tickets to prevent a recurrence", ("P0", "P1", "P2", "P3")),
    ("Notify the team of the resolution", ("P0", "P1", "P2", "P3")),
    ("Update the SLA metrics", ("P0", "P1", "P2", "P3")),
    ("Hold a post-mortem meeting", ("P0", "P1")),
)


def playbook(playbook_id: str) -> Playbook:
    """The playbook with this id.

    Raises
    ------
    ParameterError
        Unknown id; the message lists the known ones.

    Examples
    --------
    >>> playbook("db-connection").title
    'Database connection issues'
    """
    try:
        return PLAYBOOKS[playbook_id]
    except KeyError:
        raise ParameterError(f"unknown playbook {playbook_id!r}; known: {', '.join(PLAYBOOKS)}") from None


def _placeholders(service: Any, region: str | None, db: str | None, db_endpoint: str | None) -> Mapping[str, str]:
    functions = tuple(getattr(service, "functions", ()) or ())
    return {
        "name": getattr(service, "name", None) or "<service>",
        "label": getattr(service, "label", None) or "<Service>",
        "stack": getattr(service, "stack", None) or "<stack-name>",
        "function": functions[0] if functions else "<function-name>",
        "region_flag": f" --region {region}" if region else "",
        "db": db or "<db-instance-id>",
        "db_endpoint": db_endpoint or "<db-endpoint>",
    }


def playbook_steps(
    playbook_id: str,
    service: Any = None,
    region: str | None = None,
    *,
    db: str | None = None,
    db_endpoint: str | None = None,
) -> pd.DataFrame:
    """A playbook's steps as a frame, commands filled in for a service.

    Parameters
    ----------
    playbook_id
        ``api-down``, ``high-error-rate``, ``db-connection`` or ``high-latency``.
    service
        An :class:`evilent_nb.estate.Service` (its ``name``, ``label``, ``stack`` and first
        function fill the commands); without it the placeholders stay as ``<stack-name>``...
    region
        Adds ``--region R`` to the ``aws`` commands (default: none, the CLI's own).
    db, db_endpoint
        The DB instance identifier and endpoint for the database steps.

    Returns
    -------
    pandas.DataFrame
        ``step`` (1-based), ``kind`` (``automated`` | ``person``), ``action``,
        ``command_or_function``.

    Examples
    --------
    >>> playbook_steps("db-connection", db="evilent-user-service-db").command_or_function.iloc[-1]
    'aws rds reboot-db-instance --db-instance-identifier evilent-user-service-db'
    """
    book = playbook(playbook_id)
    values = _placeholders(service, region, db, db_endpoint)
    rows = [
        {
            "step": i,
            "kind": s.kind,
            "action": s.action,
            "command_or_function": s.function if s.kind == "automated" else s.command.format(**values),
        }
        for i, s in enumerate(book.steps, start=1)
    ]
    return typed_frame(rows, STEPS_SCHEMA)


def checklist_frame(severity: str | None = None) -> pd.DataFrame:
    """The post-incident checklist as a frame.

    Parameters
    ----------
    severity
        The incident's severity: items that do not apply to it (the post-mortem for
        P2-P3) are marked ``required = False``. ``None`` marks every item required.

    Returns
    -------
    pandas.DataFrame
        ``item``, ``applies_to`` (e.g. ``P0-P1``), ``required`` (bool), ``done`` (False).

    Examples
    --------
    >>> checklist_frame("P2").required.tolist()
    [True, True, True, True, True, False]
    """
    rows = [
        {
            "item": item,
            "applies_to": levels[0] if len(levels) == 1 else f"{levels[0]}-{levels[-1]}",
            "required": severity is None or str(severity).upper() in levels,
            "done": False,
        }
        for item, levels in POST_INCIDENT_CHECKLIST
    ]
    return typed_frame(rows, {"item": "string", "applies_to": "string", "required": "bool", "done": "bool"})
