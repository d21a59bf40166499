"""The raw records of one ``parse`` call as they cross the boundary (WIT 0.3.0
``raw-batch``): every payload in one buffer with their ends, the keys likewise, each
content type once with a per-record index. Three bulk copies per batch instead of three
guest allocations per record; see docs/wit.md."""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Optional

from .events import _S64, _U32, _packed, _unpack


class RawRecord(NamedTuple):
    """A raw record as it arrived, before parsing."""

    data: bytes
    key: Optional[str]
    content_type: str
    #: When the host received it, microseconds since the Unix epoch.
    arrival_time: int

    def text(self) -> str:
        """The payload as UTF-8 text; ``ValueError`` saying where it stops being UTF-8."""
        try:
            return self.data.decode()
        except UnicodeDecodeError as err:
            raise ValueError(f"record is not UTF-8 text: invalid byte at offset {err.start}") from None


class RawBatchError(ValueError):
    """The host sent a raw batch whose lists disagree (never happens with a correct host)."""

    def __init__(self, message: str):
        super().__init__(f"malformed raw-record batch: {message}")


def raw_batch_len(batch: Any) -> int:
    """The number of records in a WIT ``raw-batch`` (its packed ``data_ends``), rounded down."""
    return len(batch.data_ends) // 4


def raw_records(batch: Any) -> list[RawRecord]:
    """The records of a WIT ``raw-batch``, checked as the Rust SDK checks them
    (``RawBatchError`` naming the first column that disagrees)."""
    data_ends = _unpack(batch.data_ends, _U32, "data-ends", RawBatchError)
    key_ends = _unpack(batch.key_ends, _U32, "key-ends", RawBatchError)
    type_ids = _unpack(batch.content_type_ids, _U32, "content-type-ids", RawBatchError)
    times = _unpack(batch.arrival_times, _S64, "arrival-times", RawBatchError)
    n = len(data_ends)
    for name, column in (("key-ends", key_ends), ("content-type-ids", type_ids), ("arrival-times", times)):
        if len(column) != n:
            raise RawBatchError(f"{name} has {len(column)} elements for {n} records")
    data, keys, types = bytes(batch.data), bytes(batch.keys), list(batch.content_types)
    records = []
    start = key_start = 0
    for i in range(n):
        end, key_end, type_id = data_ends[i], key_ends[i], type_ids[i]
        if not start <= end <= len(data):
            raise RawBatchError(f"data-ends[{i}] is {end}, after {start}, in a buffer of {len(data)} bytes")
        if not key_start <= key_end <= len(keys):
            raise RawBatchError(f"key-ends[{i}] is {key_end}, after {key_start}, in a buffer of {len(keys)} bytes")
        if type_id >= len(types):
            raise RawBatchError(f"record {i} has content type {type_id}, but the batch has {len(types)}")
        key = None
        if key_end > key_start:
            try:
                key = keys[key_start:key_end].decode()
            except UnicodeDecodeError:
                raise RawBatchError(f"key {i} is not UTF-8") from None
        records.append(RawRecord(data[start:end], key, types[type_id], times[i]))
        start, key_start = end, key_end
    return records


def pack_raw_batch(records: Iterable[RawRecord], batch_type: Any) -> Any:
    """``records`` as the WIT carries them, in a ``batch_type`` (the generated ``RawBatch``
    or its stand-in): what the host sends, for tests and benchmarks. An empty key is no key."""
    data, keys = bytearray(), bytearray()
    data_ends, key_ends, type_ids, times = [], [], [], []
    types: dict[str, int] = {}
    for r in records:
        data += r.data
        data_ends.append(len(data))
        keys += (r.key or "").encode()
        key_ends.append(len(keys))
        type_ids.append(types.setdefault(r.content_type, len(types)))
        times.append(r.arrival_time)
    return batch_type(
        bytes(data),
        _packed(data_ends, _U32),
        bytes(keys),
        _packed(key_ends, _U32),
        list(types),
        _packed(type_ids, _U32),
        _packed(times, _S64),
    )
