"""Events, and the columnar ``event-batch`` they cross the boundary in.

Plugin code sees :class:`Event` objects only; :func:`decode_batch` and
:class:`BatchBuilder` are what the export adapters use (and what tests can call).
"""

from __future__ import annotations

import struct
import sys
from array import array
from itertools import accumulate
from typing import Any, Iterable, Optional

from .values import Json, Timestamp

__all__ = ["Event", "BatchError", "decode_batch", "batch_len", "encode_events", "BatchBuilder", "value_kind"]

# The WIT `value-kind` numbers.
NULL, BOOL, INT, FLOAT, TEXT, BYTES, TIMESTAMP, JSON = range(8)
_KIND_NAMES = ("null", "bool", "int", "float", "text", "bytes", "timestamp", "json")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")


class Event:
    """One event: an optional ``key`` (partition and group key), an event ``time``
    (a :class:`Timestamp`, microseconds since the Unix epoch) and typed ``fields``.

    ``fields`` is a plain ``dict`` from field name to value, in the event's field order.
    Values are ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
    :class:`Timestamp` or :class:`Json` (a ``dict`` or ``list`` is stored as ``Json``).
    An empty key is no key (``None``).
    """

    __slots__ = ("key", "time", "fields")

    def __init__(self, time: int = 0, key: Optional[str] = None, fields: Optional[dict] = None):
        self.time = time if isinstance(time, Timestamp) else Timestamp(time)
        self.key = key or None
        self.fields = {} if fields is None else fields

    # Plain access -------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.fields[name] = value

    def __delitem__(self, name: str) -> None:
        del self.fields[name]

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def get(self, name: str, default: Any = None) -> Any:
        """The value of field ``name``, or ``default`` when the event has no such field."""
        return self.fields.get(name, default)

    def set(self, name: str, value: Any) -> "Event":
        """Sets field ``name`` (replacing its value in place, or adding it last); returns
        the event so calls can be chained."""
        self.fields[name] = value
        return self

    def remove(self, name: str) -> Any:
        """Removes field ``name`` and returns its value (``None`` when absent)."""
        return self.fields.pop(name, None)

    # Typed access, like the Rust SDK's `get_*`: None unless the field has that kind ---

    def get_str(self, name: str) -> Optional[str]:
        v = self.fields.get(name)
        return v if type(v) is str else None

    def get_int(self, name: str) -> Optional[int]:
        v = self.fields.get(name)
        return v if type(v) is int else None

    def get_float(self, name: str) -> Optional[float]:
        """The number as a float, for an int or a float field."""
        v = self.fields.get(name)
        return float(v) if type(v) in (int, float) else None

    def get_bool(self, name: str) -> Optional[bool]:
        v = self.fields.get(name)
        return v if type(v) is bool else None

    def get_timestamp(self, name: str) -> Optional[Timestamp]:
        v = self.fields.get(name)
        return v if type(v) is Timestamp else None

    def get_json(self, name: str) -> Any:
        """The parsed document of a json field (``None`` when absent or not json)."""
        v = self.fields.get(name)
        return v.load() if type(v) is Json else None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Event)
            and self.key == other.key
            and self.time == other.time
            and list(self.fields.items()) == list(other.fields.items())
            and all(type(a) is type(b) for a, b in zip(self.fields.values(), other.fields.values()))
        )

    def __repr__(self) -> str:
        return f"Event(time={self.time!r}, key={self.key!r}, fields={self.fields!r})"


def value_kind(value: Any) -> str:
    """The kind a value crosses the boundary as: ``null``, ``bool``, ``int``, ``float``,
    ``text``, ``bytes``, ``timestamp`` or ``json``."""
    return _KIND_NAMES[_encode_value(value)[0]]


class BatchError(ValueError):
    """The host sent a batch whose lists disagree (never happens with a correct host)."""

    def __init__(self, message: str):
        super().__init__(f"malformed event batch: {message}")


# The number columns of an `event-batch` are packed little-endian (WIT 0.2.0): `list<u8>`
# crosses into Python as one `bytes`, where componentize-py lifts a `list<u32>` one
# element at a time (a third of a Python plugin's time). `array` codes of the same sizes.
_U32, _S64 = "I", "q"
_NATIVE_LITTLE = sys.byteorder == "little"
assert array(_U32).itemsize == 4 and array(_S64).itemsize == 8


def _unpack(data: Any, code: str, column: str, error: type = None) -> list[int]:
    """A packed number column as a list of ints, in one pass in C; ``error`` (a
    ``BatchError`` by default) when it is cut inside an element."""
    words = array(code)
    try:
        words.frombytes(data)
    except ValueError:
        size = words.itemsize
        wit = "u32" if code == _U32 else "s64"
        raise (error or BatchError)(
            f"{column} has {len(data)} bytes, not a whole number of packed {wit} ({size} bytes each)"
        ) from None
    if not _NATIVE_LITTLE:
        words.byteswap()
    return words.tolist()


def _packed(values: list, code: str) -> bytes:
    words = array(code, values)
    if not _NATIVE_LITTLE:
        words.byteswap()
    return words.tobytes()


def batch_len(batch: Any) -> int:
    """The number of events in a WIT ``event-batch`` (its packed ``times``: 8 bytes each)."""
    return len(batch.times) // 8


def decode_batch(batch: Any) -> list[Event]:
    """Decodes a WIT ``event-batch`` (the generated record, or anything with the same
    attributes) into events. Raises :class:`BatchError` when its lists disagree."""
    times = _unpack(batch.times, _S64, "times")
    n = len(times)
    key_ends = _unpack(batch.key_ends, _U32, "key-ends")
    field_counts = _unpack(batch.field_counts, _U32, "field-counts")
    field_ids = _unpack(batch.field_ids, _U32, "field-ids")
    scalars = _unpack(batch.scalars, _S64, "scalars")
    text_ends = _unpack(batch.text_ends, _U32, "text-ends")
    kinds = batch.kinds
    key_text, text = bytes(batch.key_text), bytes(batch.text)
    if len(key_ends) != n or len(field_counts) != n:
        raise BatchError(f"{n} event times but {len(key_ends)} key ends and {len(field_counts)} field counts")
    values = sum(field_counts)
    if not (len(field_ids) == len(kinds) == len(scalars) == len(text_ends) == values):
        raise BatchError(
            f"field counts add up to {values} values but there are {len(field_ids)} field ids, "
            f"{len(kinds)} kinds, {len(scalars)} scalars and {len(text_ends)} text ends"
        )
    if (key_ends[-1] if n else 0) != len(key_text) or (text_ends[-1] if values else 0) != len(text):
        raise BatchError("the key or text offsets do not end at the end of their buffer")
    names = batch.names
    # Floats travel as their bit pattern in the s64 scalar: reinterpret all scalars at
    # once, only when the batch has floats.
    floats = _unpack(batch.scalars, "d", "scalars") if FLOAT in kinds else None
    # One decode for the whole text buffer when it is ASCII (byte offsets are then string
    # offsets); otherwise each value is decoded on its own.
    ascii_text = text.decode("ascii") if text.isascii() else None
    events = []
    first = 0  # the first value of the current event
    key_start = 0
    text_start = 0
    v = 0
    try:
        for e in range(n):
            key_end = key_ends[e]
            key = key_text[key_start:key_end].decode() if key_end > key_start else None
            key_start = key_end
            count = field_counts[e]
            fields = {}
            for v in range(first, first + count):
                kind = kinds[v]
                end = text_ends[v]
                if kind == TEXT:
                    value = ascii_text[text_start:end] if ascii_text is not None else text[text_start:end].decode()
                elif kind == INT:
                    value = scalars[v]
                elif kind == FLOAT:
                    value = floats[v]
                elif kind == TIMESTAMP:
                    value = Timestamp(scalars[v])
                elif kind == BOOL:
                    value = scalars[v] != 0
                elif kind == NULL:
                    value = None
                elif kind == JSON:
                    value = Json(text[text_start:end].decode())
                elif kind == BYTES:
                    value = text[text_start:end]
                else:
                    raise BatchError(f"value {v} has unknown kind {kind}")
                if end != text_start and kind not in (TEXT, JSON, BYTES):
                    raise BatchError(f"value {v} is {_KIND_NAMES[kind]} but has text")
                text_start = end
                fields[names[field_ids[v]]] = value
            first += count
            events.append(Event(times[e], key, fields))
    except (UnicodeDecodeError, IndexError) as err:
        raise BatchError(f"near value {v}: {err}") from None
    return events


def _encode_value(value: Any) -> tuple[int, int, Any]:
    """(kind, scalar, payload: str, bytes or None) of one value; TypeError/ValueError for
    what cannot cross."""
    t = type(value)
    if t is str:
        return TEXT, 0, value
    if t is float:
        return FLOAT, _I64.unpack(_F64.pack(value))[0], None
    if t is int:
        if not _I64_MIN <= value <= _I64_MAX:
            raise ValueError(f"the int {value} does not fit in 64 bits")
        return INT, value, None
    if t is bool:
        return BOOL, int(value), None
    if value is None:
        return NULL, 0, None
    if t is Timestamp:
        return TIMESTAMP, int(value), None
    if t is Json:
        return JSON, 0, value.text
    if t in (bytes, bytearray, memoryview):
        return BYTES, 0, bytes(value)
    if t in (dict, list, tuple):
        return JSON, 0, Json.of(value).text
    # Subclasses of the types above (an IntEnum, a str subclass...) by their base.
    for base, kind in ((bool, BOOL), (Timestamp, TIMESTAMP), (int, INT), (float, FLOAT), (str, TEXT)):
        if isinstance(value, base):
            return _encode_value(base(value))
    raise TypeError(
        f"a {t.__name__} cannot be a field value: use None, bool, int, float, str, bytes, "
        "Timestamp, Json (or a dict/list, stored as Json)"
    )


class BatchBuilder:
    """Writes events into the columnar lists of an ``event-batch``, interning field names.

    :meth:`push` is all or nothing: an event with a value that cannot cross the boundary
    raises before anything of it counts. Texts are kept as ``str`` and encoded once per
    batch in :meth:`finish` (one ``encode`` for the whole batch when it is ASCII).
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self.keys: list[str] = []  # per event, '' for no key
        self.times: list[int] = []
        self.field_counts: list[int] = []
        self.field_ids: list[int] = []
        self.kinds = bytearray()
        self.scalars: list[int] = []
        self.parts: list[Any] = []  # per value: str, bytes, or '' for no payload
        self._has_bytes = False

    def __len__(self) -> int:
        return len(self.times)

    def push(self, event: Event) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"expected an Event, got {type(event).__name__}")
        time = int(event.time)
        if not _I64_MIN <= time <= _I64_MAX:
            raise ValueError(f"event time {time} does not fit in 64 bits")
        key = event.key
        if key is not None and not isinstance(key, str):
            raise TypeError(f"an event key is a str or None, not {type(key).__name__}")
        ids, field_ids, kinds, scalars, parts = self._ids, self.field_ids, self.kinds, self.scalars, self.parts
        start = len(kinds)
        name = None
        try:
            for name, value in event.fields.items():
                fid = ids.get(name)
                if fid is None:
                    if not isinstance(name, str):
                        raise TypeError(f"field names are str, not {type(name).__name__}")
                    fid = ids[name] = len(self.names)
                    self.names.append(name)
                t = type(value)
                if t is str:
                    kinds.append(TEXT)
                    scalars.append(0)
                    parts.append(value)
                elif t is float:
                    kinds.append(FLOAT)
                    scalars.append(_I64.unpack(_F64.pack(value))[0])
                    parts.append("")
                elif t is int and _I64_MIN <= value <= _I64_MAX:
                    kinds.append(INT)
                    scalars.append(value)
                    parts.append("")
                else:
                    kind, scalar, payload = _encode_value(value)
                    kinds.append(kind)
                    scalars.append(scalar)
                    parts.append("" if payload is None else payload)
                    if kind == BYTES:
                        self._has_bytes = True
                field_ids.append(fid)
        except (TypeError, ValueError) as err:
            del kinds[start:], scalars[start:], parts[start:], field_ids[start:]
            raise type(err)(f"field {name!r}: {err}") from None
        self.keys.append(key or "")
        self.times.append(time)
        self.field_counts.append(len(kinds) - start)

    def truncate(self, events: int) -> None:
        """Forgets the events pushed after the first ``events``."""
        values = sum(self.field_counts[:events])
        del self.keys[events:], self.times[events:], self.field_counts[events:]
        del self.kinds[values:], self.scalars[values:], self.parts[values:], self.field_ids[values:]

    def finish(self, record_type: Any) -> Any:
        """The batch as ``record_type(names=..., key_text=..., ...)`` (the generated
        ``EventBatch``)."""
        key_text, key_ends = _pack(self.keys, False)
        text, text_ends = _pack(self.parts, self._has_bytes)
        return record_type(
            names=self.names,
            key_text=key_text,
            key_ends=_packed(key_ends, _U32),
            times=_packed(self.times, _S64),
            field_counts=_packed(self.field_counts, _U32),
            field_ids=_packed(self.field_ids, _U32),
            kinds=bytes(self.kinds),
            scalars=_packed(self.scalars, _S64),
            text=text,
            text_ends=_packed(text_ends, _U32),
        )


def _pack(parts: list, has_bytes: bool) -> tuple[bytes, list[int]]:
    """One buffer holding every payload, and the end offset of each."""
    if not has_bytes:
        joined = "".join(parts)
        if joined.isascii():  # byte offsets are string offsets
            return joined.encode("ascii"), list(accumulate(map(len, parts)))
    encoded = [p.encode() if type(p) is str else p for p in parts]
    return b"".join(encoded), list(accumulate(map(len, encoded)))


def encode_events(events: Iterable[Event], record_type: Any) -> Any:
    """Encodes events into a ``record_type`` (the generated ``EventBatch``)."""
    builder = BatchBuilder()
    for event in events:
        builder.push(event)
    return builder.finish(record_type)
