#!/usr/bin/env python3
"""Writes N order events for benchmarking enrichers, by repeating the restaurant-enricher
fixture (plugins/restaurant-enricher/fixtures/input.ndjson) with fresh order ids and times
shifted by one minute per order, so the mix (2 test orders and 1 unknown restaurant in
every 17) is the fixture's.

    scripts/gen-orders.py 5000 > /tmp/orders-5000.ndjson
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "plugins/restaurant-enricher/fixtures/input.ndjson"


def shift(text: str, by: timedelta) -> str:
    t = datetime.fromisoformat(text.replace("Z", "+00:00")) + by
    frac = f".{t.microsecond // 1000:03}" if t.microsecond else ""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    base = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    out = sys.stdout
    for i in range(n):
        event = json.loads(json.dumps(base[i % len(base)]))
        by = timedelta(minutes=i)
        event["time"] = shift(event["time"], by)
        fields = event["fields"]
        fields["order_id"] = f"o-{100000 + i}"
        for name in ("placed_at", "delivered_at"):
            if isinstance(fields.get(name), dict):
                fields[name]["$timestamp"] = shift(fields[name]["$timestamp"], by)
        out.write(json.dumps(event, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
