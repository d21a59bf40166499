"""Helpers for unit tests of Python plugins under plain CPython (not used inside a
component): the NDJSON event form of ``weir plugin test`` fixtures, read and written.

JSON integers become ints, other numbers floats; ``{"$timestamp": ...}``,
``{"$bytes": "hex"}``, ``{"$float": "NaN"}`` and ``{"$json": ...}`` tag the other kinds; objects and arrays are
json. :func:`event_to_json` writes the form the harness prints (floats keep a ``.0``), so
lines can be compared with an ``expected.ndjson``; ``weir plugin test`` remains the
reference.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .events import Event
from .values import Json, Timestamp, format_rfc3339, parse_rfc3339

__all__ = ["event_from_json", "events_from_ndjson", "event_to_json"]


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$timestamp" in value:
            t = value["$timestamp"]
            return Timestamp(parse_rfc3339(t) if isinstance(t, str) else t)
        if len(value) == 1 and "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        if len(value) == 1 and "$json" in value:
            return Json.of(value["$json"])
        if len(value) == 1 and "$float" in value:
            return float(value["$float"])
        return Json.of(value)
    if isinstance(value, list):
        return Json.of(value)
    return value


def event_from_json(line: str) -> Event:
    """The event of one NDJSON line."""
    doc = json.loads(line)
    t = doc["time"]
    time = parse_rfc3339(t) if isinstance(t, str) else t
    fields = {name: _value_from_json(v) for name, v in (doc.get("fields") or {}).items()}
    return Event(time, doc.get("key"), fields)


def events_from_ndjson(text: str) -> list[Event]:
    """The events of an NDJSON text (blank lines skipped)."""
    return [event_from_json(line) for line in text.splitlines() if line.strip()]


def _float_text(x: float) -> str:
    if not math.isfinite(x):
        # JSON has no such numbers; written as the Rust host writes them.
        return '{"$float":"%s"}' % ("NaN" if math.isnan(x) else "inf" if x > 0 else "-inf")
    text = repr(x)
    if "e" in text:  # 1e-07 -> 1e-7, 1e+16 -> 1e16, as serde_json writes them
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def _value_text(value: Any) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is Timestamp:
        return '{"$timestamp":%s}' % json.dumps(value.rfc3339())
    if t is int:
        return str(value)
    if t is float:
        return _float_text(value)
    if t is str:
        return json.dumps(value, ensure_ascii=False)
    if t in (bytes, bytearray):
        return '{"$bytes":"%s"}' % bytes(value).hex()
    if t is Json:
        doc = value.load()
        # An object of one `$` member would read back as a tag: tagged, as the host does.
        one_tag_like = isinstance(doc, dict) and len(doc) == 1 and next(iter(doc)).startswith("$")
        if isinstance(doc, (dict, list)) and not one_tag_like:
            return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        return '{"$json":%s}' % json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def event_to_json(event: Event) -> str:
    """The NDJSON line of an event, in the harness's form."""
    key = '"key":%s,' % json.dumps(event.key, ensure_ascii=False) if event.key is not None else ""
    fields = ",".join(f"{json.dumps(name, ensure_ascii=False)}:{_value_text(v)}" for name, v in event.fields.items())
    return '{%s"time":%s,"fields":{%s}}' % (key, json.dumps(format_rfc3339(event.time)), fields)
