"""evilent.yml: what discovery cannot find, and overrides of the rulebook.

Example ``evilent.yml``::

    name_contains: Service          # which stacks are services (the runbook's filter)
    db_instances: [evilent-user-service-db]
    backup_bucket: evilent-backups
    backup_prefixes: [user-service/, product-service/]
    sns_topic: alerts-topic         # name or ARN, for the runbook's alarms
    services:                       # per-service overrides of what discovery found
      user: {health_url: https://api.example.com/prod/health}
    exclude_services: [legacy]
    rulebook:                       # any key of evilent_nb/rulebook.yaml
      budget: {monthly_usd: 250}
      lambda_errors: {p2_above: 20}

Without a file, the runbook's defaults apply.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .exceptions import ConfigError

__all__ = ["Config", "default_rulebook", "load_config"]

_DEFAULTS: dict[str, Any] = {
    "name_contains": "Service",
    "db_instances": ["evilent-user-service-db"],
    "backup_bucket": "evilent-backups",
    "backup_prefixes": ["user-service/", "product-service/"],
    "sns_topic": "alerts-topic",
    "services": {},
    "exclude_services": [],
}
_KNOWN = set(_DEFAULTS) | {"rulebook", "region"}


def default_rulebook() -> dict[str, Any]:
    """The rulebook shipped in the package (a fresh copy).

    Examples
    --------
    >>> default_rulebook()["lambda_errors"]["p1_above"]
    100
    """
    text = resources.files("evilent_nb").joinpath("rulebook.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge(base: dict[str, Any], over: dict[str, Any], path: str = "rulebook") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in out:
            raise ConfigError(f"unknown rulebook key {path}.{key}; known: {', '.join(sorted(base))}")
        if isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, f"{path}.{key}")
        else:
            _check_type(out[key], value, f"{path}.{key}")
            out[key] = value
    return out


def _check_type(default: Any, value: Any, where: str) -> None:
    """An override has the shape of the value it replaces (a bad one fails here, not in a check)."""
    number = (int, float)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, number):
        ok = value is None or (isinstance(value, number) and not isinstance(value, bool))
    elif isinstance(default, dict | list | str):
        ok = isinstance(value, type(default))
    else:
        ok = True
    if not ok:
        kind = {bool: "true or false", dict: "a mapping", list: "a list", str: "a string"}.get(
            type(default), "a number")
        raise ConfigError(f"{where} must be {kind}, got {value!r}")


@dataclass
class Config:
    """Settings from evilent.yml merged over the runbook's defaults.

    Attributes
    ----------
    name_contains
        Stack-name filter for services.
    db_instances
        RDS instance identifiers to watch.
    backup_bucket, backup_prefixes
        Where the dumps go.
    sns_topic
        The alarms' SNS topic (name or ARN).
    services
        Per-service overrides, keyed by short name.
    exclude_services
        Short names to leave out.
    rulebook
        Thresholds (see ``evilent_nb/rulebook.yaml``).
    path
        The file read, if any.
    """

    name_contains: str = _DEFAULTS["name_contains"]
    db_instances: list[str] = field(default_factory=lambda: list(_DEFAULTS["db_instances"]))
    backup_bucket: str | None = _DEFAULTS["backup_bucket"]
    backup_prefixes: list[str] = field(default_factory=lambda: list(_DEFAULTS["backup_prefixes"]))
    sns_topic: str = _DEFAULTS["sns_topic"]
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    exclude_services: list[str] = field(default_factory=list)
    region: str | None = None
    rulebook: dict[str, Any] = field(default_factory=default_rulebook)
    path: str | None = None

    def threshold(self, check: str, key: str) -> Any:
        """One rulebook value, e.g. ``threshold("lambda_errors", "p1_above")``."""
        try:
            return self.rulebook[check][key]
        except KeyError as exc:
            raise ConfigError(f"rulebook has no {check}.{key}") from exc


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read evilent.yml (or return the defaults).

    Parameters
    ----------
    path
        The file. Default: ``$EVILENT_CONFIG``, else ``./evilent.yml`` if it exists, else none.

    Raises
    ------
    ConfigError
        The named file is missing, is not YAML, or has an unknown key or a wrong type.

    Examples
    --------
    >>> load_config().rulebook["lambda_errors"]["p1_above"]
    100
    """
    explicit = path is not None and str(path) != ""
    if not explicit:
        env = os.environ.get("EVILENT_CONFIG")
        if env:
            path, explicit = env, True
        elif Path("evilent.yml").is_file():
            path = "evilent.yml"
    if not path:
        return Config()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping")
    unknown = set(data) - _KNOWN
    if unknown:
        raise ConfigError(f"unknown key(s) in {str(p)!r}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}")
    kw: dict[str, Any] = {"path": str(p)}
    for key in ("name_contains", "backup_bucket", "sns_topic", "region"):
        if key in data:
            if data[key] is not None and not isinstance(data[key], str):
                raise ConfigError(f"{key} in {str(p)!r} must be a string")
            kw[key] = data[key]
    for key in ("db_instances", "backup_prefixes", "exclude_services"):
        if key in data:
            value = data[key] or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key} in {str(p)!r} must be a list of strings")
            kw[key] = value
    if "services" in data:
        if not isinstance(data["services"] or {}, dict):
            raise ConfigError(f"services in {str(p)!r} must map short names to settings")
        kw["services"] = data["services"] or {}
    if "rulebook" in data:
        if not isinstance(data["rulebook"] or {}, dict):
            raise ConfigError(f"rulebook in {str(p)!r} must be a mapping")
        kw["rulebook"] = _merge(default_rulebook(), data["rulebook"] or {})
    return Config(**kw)
