"""FilterLogEvents paging and error-signature throughput.

Part 1 seeds one log group in in-process moto (``mock_aws``) with N events, N in
{1k, 10k, 25k}, over two streams (10 % of them ERROR lines), and reads them back with
``evilent_nb.logs.read_events``: API calls (``evilent_nb.aws.usage``), wall time, and whether
every event came back (it must follow ``nextToken`` to the end; a page holds at most
10,000 events). For contrast, one FilterLogEvents call without paging, and
``read_events(pattern="ERROR")``.

Part 2 times ``evilent_nb.logs.error_signatures`` (and ``parse_line`` alone) on 100k
synthetic Lambda (Node runtime) ERROR lines of 8 kinds with varying ids, IPs and numbers.

Run: ``.venv/bin/python benchmarks/logs_paging.py``
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from _common import machine, offline_env, table, timer

SIZES = (1_000, 10_000, 25_000)
SIGNATURE_LINES = 100_000
GROUP = "/aws/lambda/BenchServiceFunction"
ERROR_EVERY = 10


def _lambda_line(rng: random.Random, at: datetime, level: str, text: str) -> str:
    rid = uuid.UUID(int=rng.getrandbits(128), version=4)
    return f"{at.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}\t{rid}\t{level}\t{text}"


def _error_text(rng: random.Random, kind: int) -> str:
    ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    texts = [
        f"Error: connect ETIMEDOUT {ip}:5432 after {rng.randint(1000, 9000)}ms",
        f"Error: connect ECONNREFUSED {ip}:5432",
        f"TypeError: Cannot read properties of undefined (reading 'user{rng.randint(1, 99)}')",
        f"Invoke Error \t{json.dumps({'errorType': 'SequelizeConnectionError', 'errorMessage': f'too many connections for role {rng.randint(1, 9)}', 'stack': ['at x (/var/task/db.js:12:7)']})}",
        f"Task timed out after {rng.randint(3, 30)}.00 seconds",
        f'ValidationError: "email" must be a valid email (got "u{rng.randint(1, 10**6)}@example.com")',
        f"ERROR product {uuid.UUID(int=rng.getrandbits(128), version=4)} not found in table products",
        f"Runtime.UnhandledPromiseRejection: Error: Request failed with status code {rng.choice([500, 502, 503])}",
    ]
    return texts[kind % len(texts)]


def seed_group(logs, n: int, end: datetime) -> int:
    """n events over 2 streams, within the last 2 hours; returns the number of ERROR lines."""
    rng = random.Random(n)
    logs.create_log_group(logGroupName=GROUP)
    errors = 0
    span_ms = 2 * 3600 * 1000
    for s in range(2):
        stream = f"2026/01/01/[$LATEST]bench{s}"
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        count = n // 2 + (n % 2 if s == 0 else 0)
        events = []
        for i in range(count):
            at = end - timedelta(milliseconds=span_ms) + timedelta(milliseconds=i * span_ms // count + s)
            if i % ERROR_EVERY == 0:
                errors += 1
                msg = _lambda_line(rng, at, "ERROR", _error_text(rng, i))
            else:
                msg = _lambda_line(rng, at, "INFO", f"handled GET /users/{rng.randint(1, 10**6)} in {rng.randint(5, 900)} ms")
            events.append({"timestamp": int(at.timestamp() * 1000), "message": msg})
        for lo in range(0, len(events), 10_000):
            logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events[lo:lo + 10_000])
    return errors


def paging_rows() -> list[list]:
    from moto import mock_aws

    from evilent_nb import aws, logs
    from evilent_nb.timeframe import Window

    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    win = Window(end - timedelta(hours=3), end + timedelta(minutes=1))
    rows = []
    for n in SIZES:
        with mock_aws():
            client = aws.client("logs", aws.get_session())
            with timer() as t_seed:
                n_errors = seed_group(client, n, end)

            session = aws.get_session()
            aws.client("logs", session)  # client creation is not part of the read
            with timer() as t:
                frame = logs.read_events(GROUP, window=win, boto3_session=session)
            calls = aws.usage(session).calls["logs.FilterLogEvents"]
            rows.append(["read_events (all)", n, calls, len(frame), "yes" if len(frame) == n else "NO",
                         t[0], round(len(frame) / t[0]), t_seed[0]])

            session = aws.get_session()
            aws.client("logs", session)
            with timer() as t:
                frame = logs.read_events(GROUP, window=win, pattern="ERROR", boto3_session=session)
            calls = aws.usage(session).calls["logs.FilterLogEvents"]
            rows.append(['read_events (pattern "ERROR")', n_errors, calls, len(frame),
                         "yes" if len(frame) == n_errors else "NO", t[0], round(len(frame) / t[0]), "-"])

            session = aws.get_session()
            one = aws.client("logs", session)
            with timer() as t:
                page = one.filter_log_events(logGroupName=GROUP, startTime=int(win.start.timestamp() * 1000),
                                             endTime=int(win.end.timestamp() * 1000), interleaved=True)
            got = len(page["events"])
            rows.append(["one call, nextToken ignored", n, 1, got, "yes" if got == n else "NO",
                         t[0], round(got / t[0]), "-"])
    return rows


def signature_rows() -> list[list]:
    import pandas as pd

    from evilent_nb import logs

    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=2)
    times = [start + timedelta(milliseconds=i * 70) for i in range(SIGNATURE_LINES)]
    messages = [_lambda_line(rng, at, "ERROR", _error_text(rng, rng.randrange(8))) for at in times]
    events = pd.DataFrame({"timestamp": pd.to_datetime(times, utc=True), "message": messages,
                           "log_group": GROUP})
    with timer() as t_parse:
        for m in messages:
            logs.parse_line(m)
    with timer() as t_sig:
        sigs = logs.error_signatures(events)
    return [
        ["parse_line", SIGNATURE_LINES, "-", t_parse[0], round(SIGNATURE_LINES / t_parse[0])],
        ["error_signatures", SIGNATURE_LINES, len(sigs), t_sig[0], round(SIGNATURE_LINES / t_sig[0])],
    ]


def main() -> None:
    offline_env()
    paging = paging_rows()
    sigs = signature_rows()
    print(f"## FilterLogEvents paging ({machine()})\n")
    print("One log group, 2 streams, events over the last 2 h, 1 in 10 an ERROR line; in-process moto.\n")
    print(table(["read", "events in group", "FilterLogEvents calls", "events read", "all read",
                 "wall s", "events/s", "seed s"], paging))
    print("\n## Error signatures on synthetic Lambda ERROR lines\n")
    print(table(["function", "lines", "signatures", "wall s", "lines/s"], sigs))


if __name__ == "__main__":
    main()
