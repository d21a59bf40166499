"""Value types that plain Python has no exact kind for: event timestamps and JSON documents.

The other kinds map to built-in types: null is ``None``, bool ``bool``, int ``int`` (signed
64-bit), float ``float``, text ``str`` and bytes ``bytes``.
"""

from __future__ import annotations

import json as _json
from typing import Any

__all__ = ["Timestamp", "Json", "parse_rfc3339", "format_rfc3339"]

_MICROS_PER_SEC = 1_000_000


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm, as in the Rust SDK (weir_events::time).
    y = y - 1 if m <= 2 else y
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def parse_rfc3339(text: str) -> int:
    """Parses ``2026-11-26T10:15:00Z``, ``2026-11-26T10:15:00.250+01:00`` or
    ``2026-11-26 10:15:00`` (taken as UTC) into microseconds since the Unix epoch.

    Raises ``ValueError`` with the same message as the Rust SDK.
    """
    err = ValueError(f"{_json.dumps(text)} is not an RFC 3339 timestamp like 2026-11-26T10:15:00Z")
    if (
        len(text) < 19
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "Tt "
        or text[13] != ":"
        or text[16] != ":"
    ):
        raise err

    def num(a: int, b: int) -> int:
        part = text[a:b]
        if not (part.isascii() and part.isdigit()):
            raise err
        return int(part)

    y, mo, d, h, mi, s = num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        raise err
    rest = text[19:]
    micros = 0
    if rest.startswith("."):
        digits = 0
        while digits + 1 < len(rest) and rest[digits + 1].isascii() and rest[digits + 1].isdigit():
            digits += 1
        if digits == 0:
            raise err
        frac = rest[1 : 1 + digits][:6]
        micros = int(frac.ljust(6, "0"))
        rest = rest[1 + digits :]
    if rest in ("", "Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        try:
            oh, om = int(rest[1:3]), int(rest[4:6])
        except ValueError:
            raise err from None
        offset = (-1 if rest[0] == "-" else 1) * (oh * 3600 + om * 60)
    else:
        raise err
    secs = _days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset
    return secs * _MICROS_PER_SEC + micros


def format_rfc3339(micros: int) -> str:
    """Formats microseconds since the Unix epoch as RFC 3339 in UTC, with a fraction only
    when there is one (``2026-11-26T10:15:00Z``, ``2026-11-26T10:15:00.250Z``), exactly as
    the Rust SDK does."""
    secs, frac = divmod(int(micros), _MICROS_PER_SEC)
    days, sod = divmod(secs, 86_400)
    y, m, d = _civil_from_days(days)
    base = f"{y:04}-{m:02}-{d:02}T{sod // 3600:02}:{sod % 3600 // 60:02}:{sod % 60:02}"
    if frac == 0:
        return base + "Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:03}Z"
    return f"{base}.{frac:06}Z"


class Timestamp(int):
    """A ``timestamp`` value: microseconds since the Unix epoch, UTC.

    It *is* an ``int`` (compare it, subtract two of them to get microseconds), but kept
    apart from plain ints so that it crosses the boundary as a timestamp again. Arithmetic
    gives plain ints: wrap the result in ``Timestamp(...)`` to store it as a timestamp.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> "Timestamp":
        """The timestamp of RFC 3339 text; ``ValueError`` when it is not one."""
        return cls(parse_rfc3339(text))

    @property
    def micros(self) -> int:
        """Microseconds since the epoch, as a plain int."""
        return int(self)

    def rfc3339(self) -> str:
        """RFC 3339 text in UTC, e.g. ``2026-11-26T11:05:00Z``."""
        return format_rfc3339(self)

    def __repr__(self) -> str:
        return f"Timestamp({self.rfc3339()!r})"

    __str__ = rfc3339


class Json:
    """A ``json`` value: a JSON document kept as text (nested data: objects, arrays).

    ``Json.of(obj)`` encodes a Python object; ``.load()`` parses the text (parsed once and
    kept). Setting a field to a ``dict`` or ``list`` stores it as ``Json`` too.
    """

    __slots__ = ("text", "_parsed")

    _UNPARSED = object()

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"Json holds JSON text (str), not {type(text).__name__}; use Json.of(value)")
        self.text = text
        self._parsed: Any = Json._UNPARSED

    @classmethod
    def of(cls, value: Any) -> "Json":
        """The compact JSON text of ``value``."""
        return cls(_json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def load(self) -> Any:
        """The parsed document (parsed on first use, then kept: do not mutate it)."""
        if self._parsed is Json._UNPARSED:
            self._parsed = _json.loads(self.text)
        return self._parsed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Json) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("weir.Json", self.text))

    def __repr__(self) -> str:
        return f"Json({self.text!r})"
