"""The sandbox's scenarios, one small module each, registered in ``SCENARIOS``.

To add one: write ``scenarios/<name>.py`` defining ``SCENARIO = Scenario(...)`` (start
from ``_estate``'s services with ``dataclasses.replace``), list its ``planted``
findings, and add it to ``SCENARIOS`` below.
"""

from __future__ import annotations

from ...exceptions import ParameterError
from ..scenario import Scenario
from . import healthy, incident

__all__ = ["DEFAULT_SCENARIO", "SCENARIOS", "get_scenario"]

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (incident.SCENARIO, healthy.SCENARIO)}
DEFAULT_SCENARIO = "incident"


def get_scenario(scenario: str | Scenario) -> Scenario:
    """The scenario called ``scenario`` (a ``Scenario`` passes through).

    Raises
    ------
    ParameterError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(scenario, Scenario):
        return scenario
    try:
        return SCENARIOS[scenario]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ParameterError(f"unknown sandbox scenario {scenario!r}: choose one of {known}") from None
