"""A local AWS stand-in: a moto server on loopback seeded with the EVILENT estate.

``Sandbox(scenario)`` starts it (a context manager); ``sandbox.env`` holds what points
boto3, and so evilent-nb, at it. ``serve()`` runs one until Ctrl-C for the CLI. Scenarios
are data (``scenarios/``), each declaring in ``planted`` what a report must find.
Needs the ``sandbox`` extra (moto[server]); importing this package does not start anything.
"""

from __future__ import annotations

from .loglines import SECRETS
from .scenario import Planted, Scenario
from .scenarios import DEFAULT_SCENARIO, SCENARIOS, get_scenario
from .server import Sandbox, serve

__all__ = [
    "DEFAULT_SCENARIO",
    "SCENARIOS",
    "SECRETS",
    "Planted",
    "Sandbox",
    "Scenario",
    "get_scenario",
    "serve",
]
