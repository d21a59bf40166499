"""The example parse -> enrich chain as a plain CPython function: what a data team would
otherwise run as a Firehose transformation Lambda (issue 15 item 6).

The same checks and fields as plugins/orders-parser and plugins/restaurant-enricher:
JSON or CSV orders, every field checked (text, number, whole number, RFC 3339
timestamp, boolean), events keyed by restaurant at their placed_at time; test orders
dropped, the restaurant looked up (name, zone, cuisine), delivery minutes computed.
A record that fails is reported with its reason, as the plugins report it.

Usage: python3 orders_chain.py ORDERS.ndjson RESTAURANTS.json ROUNDS
Prints one JSON line: {"events": N, "errors": N, "dropped": N, "rounds_ns": [...]},
the time of transform() over every record per round (the records read beforehand).
"""

import json
import sys
import time
from datetime import datetime

FIELDS = ["order_id", "restaurant_id", "customer_id", "status", "total", "items", "placed_at", "delivered_at", "test"]


class Refused(Exception):
    pass


def _present(value):
    return None if value is None or value == "" else value


def _text(field, value):
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Refused(f"{field} must be text, got {value!r}")


def _number(field, value):
    if isinstance(value, bool):
        raise Refused(f"{field} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise Refused(f"{field} must be a number, got {value!r}") from None
    else:
        raise Refused(f"{field} must be a number, got {value!r}")
    if number != number or number in (float("inf"), float("-inf")):
        raise Refused(f"{field} must be a number, got {value!r}")
    return number


def _integer(field, value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise Refused(f"{field} must be a whole number, got {value!r}")


def _timestamp(field, value):
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return int(parsed.timestamp() * 1_000_000)
        except ValueError:
            pass
    raise Refused(f"{field} must be an RFC 3339 timestamp like 2026-11-26T10:15:00Z, got {value!r}")


def _boolean(field, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Refused(f"{field} must be true or false, got {value!r}")


def _required(order, field, check):
    value = _present(order.get(field))
    if value is None:
        raise Refused(f"missing {field}")
    return check(field, value)


def _optional(order, field, check):
    value = _present(order.get(field))
    return None if value is None else check(field, value)


def _split_csv(line):
    columns, rest = [], line
    while True:
        if not rest.startswith('"'):
            column, comma, after = rest.partition(",")
            columns.append(column)
            if not comma:
                return columns
            rest = after
            continue
        quoted, column = rest[1:], []
        while True:
            quote = quoted.find('"')
            if quote < 0:
                raise Refused(f"unterminated quoted CSV column {rest!r}")
            if quoted[quote + 1 : quote + 2] == '"':
                column.append(quoted[: quote + 1])
                quoted = quoted[quote + 2 :]
                continue
            column.append(quoted[:quote])
            after = quoted[quote + 1 :]
            break
        columns.append("".join(column))
        if after.startswith(","):
            rest = after[1:]
        elif after == "":
            return columns
        else:
            raise Refused(f"unexpected {after!r} after a quoted CSV column")


def parse(data, content_type):
    """One raw record -> one order event (a dict), or Refused."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Refused("the record is not UTF-8 text") from None
    if not text:
        raise Refused("empty record: expected a JSON or CSV order")
    media = content_type.split(";")[0].strip().lower()
    is_json = media in ("application/json", "application/x-ndjson") or (media != "text/csv" and text.startswith("{"))
    if is_json:
        if not text.startswith("{"):
            raise Refused("a JSON order must be an object")
        try:
            order = json.loads(text)
        except ValueError as e:
            raise Refused(f"invalid JSON order: {e}") from None
    else:
        columns = _split_csv(text)
        if len(columns) != len(FIELDS):
            raise Refused(f"a CSV order has {len(FIELDS)} columns ({','.join(FIELDS)}), found {len(columns)}")
        order = dict(zip(FIELDS, columns))
    restaurant_id = _required(order, "restaurant_id", _text)
    placed_at = _required(order, "placed_at", _timestamp)
    fields = {
        "order_id": _required(order, "order_id", _text),
        "restaurant_id": restaurant_id,
        "customer_id": _optional(order, "customer_id", _text),
        "status": _required(order, "status", _text),
        "total": _required(order, "total", _number),
        "items": _optional(order, "items", _integer),
        "placed_at": placed_at,
        "delivered_at": _optional(order, "delivered_at", _timestamp),
        "test": bool(_optional(order, "test", _boolean)),
    }
    return {"key": restaurant_id, "time": placed_at, "fields": fields}


def enrich(event, restaurants):
    """One order event -> the enriched event, None for a test order, or Refused."""
    fields = event["fields"]
    if fields.get("test") is True:
        return None
    restaurant_id = fields.get("restaurant_id") or event["key"]
    restaurant = restaurants.get(restaurant_id)
    if restaurant is None:
        raise Refused(f"unknown restaurant {restaurant_id}: not in reference table restaurants")
    placed_at, delivered_at = fields.get("placed_at"), fields.get("delivered_at")
    minutes = None
    if placed_at is not None and delivered_at is not None:
        if delivered_at < placed_at:
            raise Refused("delivered_at is before placed_at")
        minutes = (delivered_at - placed_at) / 60e6
    for name in ("name", "zone", "cuisine"):
        value = restaurant.get(name)
        fields["restaurant_name" if name == "name" else name] = value if isinstance(value, str) else None
    fields["delivery_minutes"] = minutes
    return event


def transform(records, restaurants):
    """The Lambda's body: every record through parse then enrich."""
    events, errors, dropped = [], [], 0
    for index, (data, content_type) in enumerate(records):
        try:
            enriched = enrich(parse(data, content_type), restaurants)
        except Refused as why:
            errors.append((index, str(why)))
            continue
        if enriched is None:
            dropped += 1
        else:
            events.append(enriched)
    return events, errors, dropped


def main():
    orders_path, restaurants_path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(orders_path, "rb") as f:
        records = [(line, "application/json") for line in f.read().splitlines() if line]
    with open(restaurants_path) as f:
        restaurants = json.load(f)["restaurants"]
    rounds_ns = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        events, errors, dropped = transform(records, restaurants)
        rounds_ns.append(time.perf_counter_ns() - started)
    print(json.dumps({"events": len(events), "errors": len(errors), "dropped": dropped, "rounds_ns": rounds_ns}))


if __name__ == "__main__":
    main()
