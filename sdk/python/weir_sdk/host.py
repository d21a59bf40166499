"""What the host offers a plugin: logging, counters and reference-data lookups.

In a component these call the ``weir:plugin/host`` imports. Under plain CPython (unit
tests of plugin code) they go to a :class:`NativeHost` installed with
:func:`set_native_host`; the default one prints logs to stderr, ignores counters and
knows no reference data. Plugin code is the same in both.

As in the Rust SDK, two things make these calls cheap inside a batch:

- lookups are memoised for the duration of one batch, so an enricher that looks up the
  same restaurant for a thousand events crosses the boundary once (and parses the JSON
  once with :func:`lookup_json`);
- counter deltas are summed during a batch and sent once when the batch ends.

The export adapters open and close that per-batch scope (:func:`in_batch`).
"""

from __future__ import annotations

import json as _json
import sys
from typing import Any, Callable, Optional, TypeVar

__all__ = [
    "log",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "counter_add",
    "lookup",
    "lookup_json",
    "in_batch",
    "NativeHost",
    "MapHost",
    "set_native_host",
]

_LEVELS = ("trace", "debug", "info", "warn", "error")

try:  # Inside a component built by componentize-py.
    from wit_world.imports import host as _wit_host  # type: ignore[import-not-found]
except ImportError:  # Plain CPython: unit tests of plugin code.
    _wit_host = None


class NativeHost:
    """What the host functions call outside a component. Subclass it for tests."""

    def log(self, level: str, message: str) -> None:
        print(f"[{level.upper()}] {message}", file=sys.stderr)

    def counter_add(self, name: str, delta: int) -> None:
        pass

    def lookup(self, table: str, key: str) -> Optional[str]:
        return None


class MapHost(NativeHost):
    """A native host serving reference data from memory, shaped like a plugin's
    ``lookup.json`` fixture: ``{"table": {"key": value, ...}, ...}``. It keeps the
    counter totals it receives in ``counters``."""

    def __init__(self, tables: Optional[dict] = None):
        self.tables = tables or {}
        self.counters: dict[str, int] = {}

    @classmethod
    def from_json(cls, text: str) -> "MapHost":
        return cls(_json.loads(text))

    def counter_add(self, name: str, delta: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + delta

    def lookup(self, table: str, key: str) -> Optional[str]:
        rows = self.tables.get(table)
        if rows is None or key not in rows:
            return None
        return _json.dumps(rows[key], separators=(",", ":"))


_native: NativeHost = NativeHost()


def set_native_host(host: NativeHost) -> None:
    """Installs the host that the host functions call outside a component, and forgets
    memoised lookups and pending counter deltas."""
    global _native
    _native = host
    _memo.clear()
    _counters.clear()


# Per-batch state.
_memo: dict[tuple[str, str], list] = {}  # (table, key) -> [text or None, parsed or _UNPARSED]
_counters: dict[str, int] = {}
_UNPARSED = object()


def log(level: str, message: str) -> None:
    """Writes a line to the plugin's log, at ``level`` (``trace``, ``debug``, ``info``,
    ``warn`` or ``error``). The host tags it with the plugin's name and version and drops
    lines beyond the plugin's log rate limit."""
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}: expected one of {', '.join(_LEVELS)}")
    message = str(message)
    if _wit_host is None:
        _native.log(level, message)
    else:
        _wit_host.log(_wit_host.LogLevel[level.upper()], message)


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)


def counter_add(name: str, delta: int = 1) -> None:
    """Adds ``delta`` to the plugin's counter ``name`` (exported as a metric by the host).
    Deltas are summed and sent when the current batch (or ``configure``) ends."""
    _counters[name] = _counters.get(name, 0) + int(delta)


def _entry(table: str, key: str) -> list:
    entry = _memo.get((table, key))
    if entry is None:
        text = _native.lookup(table, key) if _wit_host is None else _wit_host.lookup(table, key)
        entry = _memo[(table, key)] = [text, _UNPARSED]
    return entry


def lookup(table: str, key: str) -> Optional[str]:
    """The reference data stored under ``key`` in ``table``, as JSON text, or ``None``
    when there is no such key or table. Memoised for the current batch."""
    return _entry(table, key)[0]


def lookup_json(table: str, key: str) -> Any:
    """The reference data stored under ``key`` in ``table``, parsed, or ``None`` when
    there is no such key or table. Memoised and parsed once per batch: every event of the
    batch gets the same object, so do not mutate it.

    Raises ``ValueError`` naming the table and key when the stored text is not JSON."""
    entry = _entry(table, key)
    if entry[1] is _UNPARSED:
        if entry[0] is None:
            entry[1] = None
        else:
            try:
                entry[1] = _json.loads(entry[0])
            except ValueError as err:
                entry[1] = ValueError(f"reference data {table}/{key} is not valid JSON: {err}")
    if isinstance(entry[1], ValueError):
        raise entry[1]
    return entry[1]


T = TypeVar("T")


def in_batch(run: Callable[[], T]) -> T:
    """Runs one batch (or ``configure``) as the export adapters do: starts with an empty
    lookup memo, so reference data is never older than the batch, and sends the counter
    deltas gathered once it ends (also when ``run`` raises)."""
    _memo.clear()
    try:
        return run()
    finally:
        pending = list(_counters.items())
        _counters.clear()
        for name, delta in pending:
            if _wit_host is None:
                _native.counter_add(name, delta)
            else:
                _wit_host.counter_add(name, delta)
