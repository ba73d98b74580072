"""``healthy``: the estate as the runbook wants it. Nothing above P3.

Baseline errors (well under 10 an hour) still leave ERROR lines in both log groups, so
``log_errors`` (P3) is the only thing a health report finds.
"""

from __future__ import annotations

from ..scenario import Planted, Scenario
from ._estate import COST, POLICIES, PRODUCT, USER

SCENARIO = Scenario(
    name="healthy",
    description="Every service up, alarms in place and OK, retention 30 days, fresh backups.",
    services=(USER, PRODUCT),
    cost=COST,
    policies=POLICIES,
    alarm_states={name: "OK" for svc in (USER, PRODUCT) for name in svc.alarm_names},
    planted=(
        Planted("log_errors", USER.log_group, "P3", USER.name),
        Planted("log_errors", PRODUCT.log_group, "P3", PRODUCT.name),
    ),
)
