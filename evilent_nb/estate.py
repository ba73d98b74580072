"""Which services exist: discovered from CloudFormation, overridable by evilent.yml.

A service is a CloudFormation stack whose name contains ``name_contains`` (the runbook's
filter, ``Service`` by default) and whose status is not ``DELETE_COMPLETE``:

- short name: the stack name lowercased, with a trailing ``ServiceStack`` or else
  ``Stack`` removed (``UserServiceStack`` -> ``user``; a ``-``/``_`` before the suffix
  goes too, so ``order-service-stack`` -> ``order``);
- functions: its ``AWS::Lambda::Function`` resources (physical ids = function names);
- APIs: its ``AWS::ApiGateway::RestApi`` resources, resolved to their names (the
  ``ApiName`` metric dimension);
- health URL: the output whose key ends in ``ApiUrl``, with ``/health`` appended;
- log groups: ``/aws/lambda/<function>``.

Nested stacks are not services of their own: their functions and APIs belong to the
root stack's service (one more ``ListStackResources`` per nested stack).

DB instances and the backup bucket come from :class:`~evilent_nb.config.Config`
(evilent.yml). ``Config.services[short]`` overrides ``health_url``, ``functions``,
``apis`` and ``log_groups`` of one service; ``Config.exclude_services`` drops services.

Discovery costs one paginated ``DescribeStacks``, one paginated ``ListStackResources``
per service, and (when any service has a REST API) one paginated ``GetRestApis`` that
resolves every API's name at once. Nothing is hard-coded: any stack matching the filter,
in whatever region the session uses, is found the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pandas as pd

from . import inventory
from .aws import ensure_session
from .config import Config, load_config
from .exceptions import ConfigError, UnknownServiceError
from .frames import typed_frame

__all__ = ["ESTATE_SCHEMA", "Estate", "Service", "discover", "health_url", "short_name"]

log = logging.getLogger(__name__)

FUNCTION_TYPE = "AWS::Lambda::Function"
REST_API_TYPE = "AWS::ApiGateway::RestApi"
NESTED_STACK_TYPE = "AWS::CloudFormation::Stack"
_MAX_NESTING = 5
HEALTH_PATH = "/health"
_OVERRIDABLE = ("health_url", "functions", "apis", "log_groups")
_SUFFIX = re.compile(r"(?:[-_]?service)?[-_]?stack$")

#: Columns of :meth:`Estate.to_frame` (tuples of names are kept as Python lists).
ESTATE_SCHEMA: dict[str, str] = {
    "service": "string",
    "label": "string",
    "stack": "string",
    "status": "string",
    "functions": "object",
    "apis": "object",
    "api_ids": "object",
    "health_url": "string",
    "log_groups": "object",
}


def short_name(stack: str) -> str:
    """A service's short name from its stack name.

    Examples
    --------
    >>> short_name("UserServiceStack"), short_name("PaymentsStack"), short_name("order-service-stack")
    ('user', 'payments', 'order')
    """
    lowered = stack.lower()
    short = _SUFFIX.sub("", lowered).strip("-_")
    return short or lowered


def health_url(api_url: str | None, path: str = HEALTH_PATH) -> str | None:
    """``api_url`` with ``path`` appended once, with no double slash.

    Examples
    --------
    >>> health_url("https://x.execute-api.eu-central-1.amazonaws.com/prod/")
    'https://x.execute-api.eu-central-1.amazonaws.com/prod/health'
    """
    if not api_url:
        return None
    base = api_url.rstrip("/")
    return base if base.endswith(path) else base + path


def _log_groups(functions: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"/aws/lambda/{f}" for f in functions)


@dataclass(frozen=True)
class Service:
    """One service of the estate.

    Attributes
    ----------
    name
        Short name (``user``).
    stack
        CloudFormation stack name (``UserServiceStack``).
    status
        The stack's status.
    functions
        Lambda function names.
    apis
        REST API names (the ``ApiName`` metric dimension).
    api_ids
        REST API ids, as CloudFormation knows them.
    health_url
        The ``/health`` URL, or None when the stack has no ``*ApiUrl`` output.
    log_groups
        ``/aws/lambda/<function>`` for each function (unless overridden).
    """

    name: str
    stack: str
    status: str
    functions: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    api_ids: tuple[str, ...] = ()
    health_url: str | None = None
    log_groups: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The stack name without its trailing ``Stack`` (``UserService``)."""
        return re.sub(r"[-_]?stack$", "", self.stack, flags=re.IGNORECASE) or self.stack

    def owns(self, resource: str) -> bool:
        """Whether ``resource`` (function, API name or id, log group, stack) is this service's."""
        return (
            resource == self.stack
            or resource in self.functions
            or resource in self.apis
            or resource in self.api_ids
            or resource in self.log_groups
        )


@dataclass
class Estate:
    """The discovered services plus what evilent.yml adds.

    Examples
    --------
    >>> estate = discover()  # doctest: +SKIP
    >>> estate.service("UserServiceStack").functions  # doctest: +SKIP
    ('UserServiceStack-ServiceUserServiceFunction',)
    """

    region: str | None
    services: list[Service]
    db_instances: list[str] = field(default_factory=list)
    backup_bucket: str | None = None
    backup_prefixes: list[str] = field(default_factory=list)
    config: Config = field(default_factory=Config)
    #: The stacks discovery read (name filter applied, nested ones included), schema "stacks".
    stacks: pd.DataFrame = field(default_factory=lambda: typed_frame([], "stacks"), compare=False, repr=False)

    @property
    def names(self) -> list[str]:
        """Every service's short name."""
        return [s.name for s in self.services]

    def service(self, name_or_stack: str) -> Service:
        """The service with this short name or stack name (case-insensitive).

        Raises
        ------
        UnknownServiceError
            No service has that name; the message lists the known short names.
        """
        key = (name_or_stack or "").strip().lower()
        for s in self.services:
            if key in (s.name.lower(), s.stack.lower()):
                return s
        known = ", ".join(self.names) or "none"
        raise UnknownServiceError(f"unknown service {name_or_stack!r}; known services: {known}")

    @property
    def functions(self) -> list[str]:
        """Every service's functions, flattened."""
        return [f for s in self.services for f in s.functions]

    @property
    def apis(self) -> list[str]:
        """Every service's REST API names, flattened."""
        return [a for s in self.services for a in s.apis]

    @property
    def log_groups(self) -> list[str]:
        """Every service's log groups, flattened."""
        return [g for s in self.services for g in s.log_groups]

    def service_of(self, resource: str | None) -> str | None:
        """The short name of the service owning a function, API, log group or stack."""
        if resource is None:
            return None
        for s in self.services:
            if s.owns(resource):
                return s.name
        return None

    def to_frame(self) -> pd.DataFrame:
        """One row per service.

        Returns
        -------
        pandas.DataFrame
            ``service, label, stack, status, functions, apis, api_ids, health_url,
            log_groups`` (the tuple fields as lists).

        Examples
        --------
        >>> Estate("eu-central-1", [Service("user", "UserServiceStack", "CREATE_COMPLETE")]).to_frame().service.tolist()
        ['user']
        """
        rows = [
            {
                "service": s.name,
                "label": s.label,
                "stack": s.stack,
                "status": s.status,
                "functions": list(s.functions),
                "apis": list(s.apis),
                "api_ids": list(s.api_ids),
                "health_url": s.health_url,
                "log_groups": list(s.log_groups),
            }
            for s in self.services
        ]
        return typed_frame(rows, ESTATE_SCHEMA)


def _api_url(outputs: Mapping[str, Any]) -> str | None:
    keys = sorted(k for k in outputs if k.endswith("ApiUrl"))  # sorted: deterministic if several
    return outputs[keys[0]] if keys else None


def _as_tuple(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{what} must be a string or a list of strings")


def _apply_override(service: Service, over: Any) -> Service:
    if not isinstance(over, Mapping):
        raise ConfigError(f"services.{service.name} must map {', '.join(_OVERRIDABLE)} to values")
    unknown = set(over) - set(_OVERRIDABLE)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in services.{service.name}: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(_OVERRIDABLE)}"
        )
    changes: dict[str, Any] = {}
    if "functions" in over:
        changes["functions"] = _as_tuple(over["functions"], f"services.{service.name}.functions")
        changes["log_groups"] = _log_groups(changes["functions"])
    if "apis" in over:
        changes["apis"] = _as_tuple(over["apis"], f"services.{service.name}.apis")
    if "log_groups" in over:
        changes["log_groups"] = _as_tuple(over["log_groups"], f"services.{service.name}.log_groups")
    if "health_url" in over:
        url = over["health_url"]
        if url is not None and not isinstance(url, str):
            raise ConfigError(f"services.{service.name}.health_url must be a string")
        changes["health_url"] = health_url(url)
    return replace(service, **changes)


def _of_type(resources: pd.DataFrame, resource_type: str) -> pd.Series:
    """Rows of that type that have a physical id (NA-safe boolean mask)."""
    mask = resources.resource_type.eq(resource_type) & resources.physical_id.notna()
    return mask.fillna(False).astype(bool)


def _resources(stack: str, session: boto3.Session, depth: int = 0) -> pd.DataFrame:
    """A stack's resources, with those of its nested stacks (a few levels deep)."""
    frame = inventory.stack_resources(stack, boto3_session=session)
    nested = frame.loc[_of_type(frame, NESTED_STACK_TYPE), "physical_id"]
    if depth >= _MAX_NESTING or nested.empty:
        return frame
    parts = [frame] + [_resources(str(child), session, depth + 1) for child in nested]
    return pd.concat(parts, ignore_index=True)


def discover(
    *,
    name_contains: str | None = None,
    config: Config | None = None,
    boto3_session: boto3.Session | None = None,
) -> Estate:
    """Discover the estate's services from CloudFormation.

    Parameters
    ----------
    name_contains
        Stack-name filter (case-sensitive); default ``config.name_contains``
        (``Service``).
    config
        Settings; default :func:`evilent_nb.config.load_config` (evilent.yml if present).
    boto3_session
        Session to use; its region is the estate's region.

    Returns
    -------
    Estate
        Services sorted by short name. ``Estate.to_frame()`` tabulates them.

    Raises
    ------
    ConfigError
        A ``services`` override has an unknown key or a badly typed value.

    Examples
    --------
    >>> estate = discover()  # doctest: +SKIP
    >>> estate.names  # doctest: +SKIP
    ['product', 'user']
    >>> estate.service("user").health_url  # doctest: +SKIP
    'https://abc123.execute-api.eu-central-1.amazonaws.com/prod/health'
    """
    cfg = config if config is not None else load_config()
    session = ensure_session(boto3_session)
    pattern = name_contains if name_contains is not None else cfg.name_contains
    excluded = {e.lower() for e in cfg.exclude_services}

    # One DescribeStacks read serves discovery and, kept on the estate, the stacks' status.
    found = inventory.stacks(name_contains=pattern or None, boto3_session=session)
    drafts: list[tuple[Service, list[str]]] = []
    taken: set[str] = set()
    # nested stacks are parts of their root's service, not services of their own
    for row in found[found["parent_id"].isna()].itertuples(index=False):
        stack = str(row.name)
        short = short_name(stack)
        if short in excluded or stack.lower() in excluded:
            continue
        if short in taken:  # e.g. UserServiceStack and UserStack: keep both, distinctly
            log.warning(
                "stacks %s and another share the short name %r; using %r",
                stack,
                short,
                stack.lower(),
            )
            short = stack.lower()
        taken.add(short)
        resources = _resources(stack, session)
        fns = tuple(resources.loc[_of_type(resources, FUNCTION_TYPE), "physical_id"])
        api_ids = list(resources.loc[_of_type(resources, REST_API_TYPE), "physical_id"])
        service = Service(
            name=short,
            stack=stack,
            status=str(row.status),
            functions=tuple(str(f) for f in fns),
            health_url=health_url(_api_url(row.outputs or {})),
            log_groups=_log_groups(str(f) for f in fns),
        )
        drafts.append((service, [str(a) for a in api_ids]))

    names: dict[str, str] = {}
    if any(ids for _, ids in drafts):
        apis = inventory.rest_apis(boto3_session=session)
        names = dict(zip(apis.id.astype(str), apis.name.astype(str), strict=True))

    services: list[Service] = []
    for service, ids in drafts:
        resolved = [i for i in ids if i in names]
        for i in ids:
            if i not in names:
                log.warning(
                    "REST API %s of stack %s not found in API Gateway; left out", i, service.stack
                )
        service = replace(service, apis=tuple(names[i] for i in resolved), api_ids=tuple(resolved))
        over = cfg.services.get(service.name)
        if over is not None:
            service = _apply_override(service, over)
        services.append(service)
    unmatched = set(cfg.services) - {s.name for s in services}
    if unmatched:
        log.warning("evilent.yml overrides unknown service(s): %s", ", ".join(sorted(unmatched)))

    return Estate(
        region=session.region_name,
        services=sorted(services, key=lambda s: s.name),
        db_instances=list(cfg.db_instances),
        backup_bucket=cfg.backup_bucket,
        backup_prefixes=list(cfg.backup_prefixes),
        config=cfg,
        stacks=found,
    )
