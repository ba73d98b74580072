"""Redaction of secrets and personal data in log lines, parameters and evidence.

Reports and evidence bundles carry log lines and parameters that may hold credentials.
:func:`redact` replaces each secret with a marker naming its kind, such as
``[REDACTED:email]``, and leaves ordinary text alone: ARNs, request ids, UUIDs and
timestamps survive. :func:`redact_params` and :func:`redact_obj` also look at mapping
keys, so ``{"db_password": "hunter2"}`` loses its value even though ``hunter2`` looks
like any word.

Kinds caught: AWS access key ids (``AKIA``/``ASIA``), AWS secret access keys (after a
secret-ish key, or bare: 40 mixed-case base64 characters), STS session tokens, GitHub /
Slack / Stripe tokens, cookie headers, bearer and basic credentials, JWTs, PEM private keys, passwords in URLs
and DSNs, ``password=``/``token=``/``api_key=``-style pairs (also JSON and YAML style),
and e-mail addresses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = ["MASK", "is_secret_key", "redact", "redact_frame", "redact_obj", "redact_params"]

#: What a value under a secret-looking key becomes.
MASK = "***"


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Words that make a key name a secret. Keys are split into snake_case words first, so
# "apiKey", "API-KEY" and "x_api_key" all give the words "api", "key".
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "apikey",
     "credential", "credentials", "authorization", "dsn", "cookie", "signature"}
)
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
     ("session", "key"), ("auth", "token"), ("client", "secret"), ("connection", "string")}
)
# "nextToken" and friends are pagination cursors, not secrets; masking them would also
# break the replay of paginated evidence.
_CURSOR_WORDS = frozenset(
    {"next", "page", "pagination", "continuation", "starting", "forward", "backward",
     "sequence", "upload", "idempotency", "request", "max", "resume", "marker"}
)


def _key_words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key names a secret (``password``, ``apiKey``, ``DB_PASSWORD`` ...).

    Pagination cursors (``nextToken``, ``NextPageToken``) are not secrets.

    Examples
    --------
    >>> is_secret_key("DB_PASSWORD"), is_secret_key("apiKey"), is_secret_key("nextToken")
    (True, True, False)
    """
    if not isinstance(key, str):
        return False
    words = _key_words(key)
    for i, word in enumerate(words):
        if word in _SECRET_WORDS:
            if word == "token" and i and words[i - 1] in _CURSOR_WORDS:
                continue
            return True
        if i and (words[i - 1], word) in _SECRET_PAIRS:
            return True
    return False


# --- text patterns, applied in order ------------------------------------------------
_KEYWORD = (
    r"(?:[A-Za-z0-9_.-]*?(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|credentials?|auth|signature)|dsn)"
)
_AWS_SECRET_KEY = r"(?:aws[_-]?)?secret[_-]?(?:access[_-]?)?key|SecretAccessKey"

_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]] = [
    # PEM blocks before anything else: their base64 body would trip the other rules.
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
        _marker("private_key"),
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), _marker("jwt")),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), _marker("aws_access_key_id")),
    # 40-char AWS secret after a secret-ish key, in k=v, YAML, JSON or INI form.
    (
        re.compile(
            rf"(?i)((?:{_AWS_SECRET_KEY})[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{{40}}(?![A-Za-z0-9/+=])"
        ),
        lambda m: m.group(1) + _marker("aws_secret_access_key"),
    ),
    # STS session tokens (the base64 of their binary header), with or without a key.
    (re.compile(r"\b(?:FwoGZXIvYXdz|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+=]{16,}"), _marker("token")),
    # Well-known API token formats (GitHub, Slack, Stripe).
    (
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9-]{10,}"
                   r"|[sr]k_live_[A-Za-z0-9]{16,})"),
        _marker("token"),
    ),
    # A bare 40-character AWS secret (e.g. printed next to its key id): a whole word of
    # exactly 40 base64 characters mixing upper case, lower case and a digit, / or +. Hex
    # digests (one case), longer base64 (hashes, cursors) and parts of hyphenated resource
    # names are left alone.
    (
        re.compile(r"(?<![^\s\"'=:,(\[])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
                   r"(?=[A-Za-z0-9/+]{0,39}[0-9/+])[A-Za-z0-9/+]{40}(?![^\s\"',;)\]}])"),
        _marker("aws_secret_access_key"),
    ),
    # Cookie headers: every cookie in them.
    (
        re.compile(r"(?i)\b((?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)([^\n\"']+)"),
        lambda m: m.group(1) + _marker("cookie"),
    ),
    (
        re.compile(r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"),
        lambda m: f"{m.group(1)}{m.group(2)}{_marker('token')}",
    ),
    # scheme://user:password@host
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"'<>]*):([^\s/\"'<>]+)@"),
        lambda m: f"{m.group(1)}:{_marker('password')}@",
    ),
    # "password": "value" (JSON) and 'password': 'value'
    (
        re.compile(rf"(?i)([\"']{_KEYWORD}[\"']\s*:\s*)([\"'])((?:(?!\2)[^\\\n]|\\.)+)\2"),
        lambda m: _pair(m, m.group(1) + m.group(2), m.group(3), m.group(2), always=True),
    ),
    # password='a value with spaces' / password: "..." (quoted, unquoted key)
    (
        re.compile(rf"(?i)(?<![A-Za-z0-9:/\"'])({_KEYWORD})(\s*[=:]\s*)([\"'])((?:(?!\3)[^\\\n]|\\.)+)\3"),
        lambda m: _pair(m, m.group(1) + m.group(2) + m.group(3), m.group(4), m.group(3),
                        always=m.group(2).strip() == "="),
    ),
    # password=value (k=v, DSNs, query strings); password: value (YAML, prose)
    (
        re.compile(rf"(?i)(?<![A-Za-z0-9:/])({_KEYWORD})(\s*[=:]\s*)([\"']?)([^\s\"'&;,)}}\]]+)"),
        lambda m: _pair(m, m.group(1) + m.group(2) + m.group(3), m.group(4), "", always=m.group(2).strip() == "="),
    ),
    (re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), _marker("email")),
]


def _kind(key: str) -> str:
    k = key.lower()
    if "pass" in k or "pwd" in k or k == "dsn":
        return "password"
    if "token" in k or "auth" in k:
        return "token"
    if re.search(r"api[_-]?key|apikey", k):
        return "api_key"
    return "secret"


def _pair(m: re.Match[str], prefix: str, value: str, suffix: str, *, always: bool) -> str:
    key = m.group(1)
    words = _key_words(re.sub(r"[\"'\s:=]", "", key))
    if value.startswith("[REDACTED:") or (words and words[-1] == "token" and len(words) > 1
                                          and words[-2] in _CURSOR_WORDS):
        return m.group(0)
    kind = _kind(key)
    # "key: value" in prose ("invalid token: jwt malformed") is only masked when the
    # value looks like a secret; "key=value" and quoted values always are.
    if not always and kind != "password" and not _looks_secret(value):
        return m.group(0)
    return f"{prefix}{_marker(kind)}{suffix}"


def _looks_secret(value: str) -> bool:
    return len(value) >= 8 and bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))


def redact(text: Any) -> Any:
    """Replace secrets and e-mail addresses in ``text`` with ``[REDACTED:<kind>]`` markers.

    Parameters
    ----------
    text
        A string; anything else (``None``, numbers, ``pd.NA``) is returned unchanged.

    Returns
    -------
    str
        The text with each secret replaced. Kinds: ``aws_access_key_id``,
        ``aws_secret_access_key``, ``token``, ``jwt``, ``password``, ``api_key``,
        ``secret``, ``private_key``, ``cookie``, ``email``.

    Examples
    --------
    >>> redact("connect postgres://app:s3cr3t@db.internal:5432/users as ops@example.com")
    'connect postgres://app:[REDACTED:password]@db.internal:5432/users as [REDACTED:email]'
    >>> redact("arn:aws:lambda:eu-central-1:123456789012:function:UserFn")
    'arn:aws:lambda:eu-central-1:123456789012:function:UserFn'
    """
    if not isinstance(text, str) or not text:
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_obj(obj: Any) -> Any:
    """Redact recursively through dicts, lists and tuples (for evidence bundles).

    Strings go through :func:`redact`. A value under a secret-looking key
    (:func:`is_secret_key`) becomes ``"***"`` when it is a string or a number; containers
    under such keys are walked. Numbers, booleans, datetimes and ``None`` elsewhere are left
    alone. The input is not modified.

    Examples
    --------
    >>> redact_obj({"Environment": {"Variables": {"DB_PASSWORD": "x1", "MODE": "a@b.io"}}, "n": 3})
    {'Environment': {'Variables': {'DB_PASSWORD': '***', 'MODE': '[REDACTED:email]'}}, 'n': 3}
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {k: _redact_value(k, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj


def _redact_value(key: Any, value: Any) -> Any:
    if is_secret_key(key) and isinstance(value, str | int | float) and not isinstance(value, bool):
        return MASK if value != "" else value
    return redact_obj(value)


def redact_params(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Redact report parameters: secret-looking keys get ``"***"``, other strings :func:`redact`.

    Examples
    --------
    >>> redact_params({"window": "24h", "api_key": "abc", "owner": "ops@example.com"})
    {'window': '24h', 'api_key': '***', 'owner': '[REDACTED:email]'}
    """
    return {k: _redact_value(k, v) for k, v in mapping.items()}


def redact_frame(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with its text columns redacted.

    Parameters
    ----------
    frame
        Any frame.
    columns
        Columns to redact; default every ``string`` or ``object`` column. Object cells that
        hold dicts or lists go through :func:`redact_obj`.

    Returns
    -------
    pandas.DataFrame
        Same columns, dtypes and index.

    Examples
    --------
    >>> df = pd.DataFrame({"message": pd.array(["user a@b.io failed"], dtype="string"), "n": [1]})
    >>> redact_frame(df)["message"].tolist()
    ['user [REDACTED:email] failed']
    """
    out = frame.copy()
    if columns is None:
        columns = [c for c in out.columns if pd.api.types.is_string_dtype(out[c]) or out[c].dtype == object]
    for col in columns:
        dtype = out[col].dtype
        out[col] = out[col].map(redact_obj, na_action="ignore").astype(dtype)
    return out
