"""Stand-ins for the records componentize-py generates (``wit_world.imports.types``)
and for ``componentize_py_types.Ok``/``Err``, so that plugin code and the SDK run under
plain CPython in unit tests. Same names and fields as the generated ones."""

from dataclasses import dataclass
from typing import Any, List


@dataclass
class EventBatch:
    # The number columns are packed little-endian (u32: key_ends, field_counts, field_ids,
    # text_ends; s64: times, scalars), as the WIT carries them.
    names: List[str]
    key_text: bytes
    key_ends: bytes
    times: bytes
    field_counts: bytes
    field_ids: bytes
    kinds: bytes
    scalars: bytes
    text: bytes
    text_ends: bytes


@dataclass
class RecordError:
    index: int
    message: str


@dataclass
class BatchOutput:
    events: EventBatch
    counts: List[int]
    errors: List[RecordError]


@dataclass
class RawBatch:
    # The ends, ids and times are packed little-endian (u32, u32, s64), as the WIT
    # carries them.
    data: bytes
    data_ends: bytes
    keys: bytes
    key_ends: bytes
    content_types: List[str]
    content_type_ids: bytes
    arrival_times: bytes


@dataclass
class Window:
    start: int
    end: int


@dataclass
class FinishedGroup:
    state: bytes
    window: Window
    key: str


@dataclass
class AccumulateOutput:
    states: List[bytes]
    errors: List[RecordError]


@dataclass
class Ok:
    value: Any


@dataclass(frozen=True)
class Err(Exception):
    value: Any
