"""Plugin base classes, their configuration, and the adapters that implement the
generated WIT exports on top of them."""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, NamedTuple, Optional, Sequence

from . import host
from .events import BatchBuilder, BatchError, Event, batch_len, decode_batch
from .raw_batch import RawBatchError, RawRecord, raw_batch_len, raw_records

__all__ = [
    "Config",
    "RawRecord",
    "Window",
    "Parser",
    "Enricher",
    "Aggregator",
    "export_parser",
    "export_enricher",
    "export_aggregator",
    "error_message",
]

try:  # Inside a component built by componentize-py.
    from componentize_py_types import Err as _Err, Ok as _Ok  # type: ignore[import-not-found]
    from wit_world.imports import types as _wit  # type: ignore[import-not-found]
except ImportError:  # Plain CPython: unit tests. Stand-ins with the generated names.
    from . import _native_types as _wit  # type: ignore[no-redef]
    from ._native_types import Err as _Err, Ok as _Ok  # type: ignore[no-redef]


class Config:
    """The configuration given to a plugin when an instance starts: ``(key, value)`` pairs
    from the pipeline configuration (or the harness's ``--config KEY=VALUE``). When a key is
    given more than once, the last value wins."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()):
        self.pairs = [(str(k), str(v)) for k, v in pairs]

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``key``, or ``default`` when it was not given."""
        for k, v in reversed(self.pairs):
            if k == key:
                return v
        return default

    def get_bool(self, key: str, default: bool) -> bool:
        """``true`` or ``false``; ``ValueError`` (same message as the Rust SDK) otherwise."""
        value = self.get(key)
        if value is None:
            return default
        if value in ("true", "false"):
            return value == "true"
        raise ValueError(
            f"config key {key}: {_json.dumps(value)} is not valid: provided string was not `true` or `false`"
        )

    def get_int(self, key: str, default: Optional[int] = None) -> Optional[int]:
        """A decimal integer; ``ValueError`` naming the key and value otherwise."""
        value = self.get(key)
        if value is None:
            return default
        try:
            return int(value, 10)
        except ValueError:
            raise ValueError(f"config key {key}: {_json.dumps(value)} is not valid: not an integer") from None

    def reject_unknown(self, known: Sequence[str]) -> None:
        """Raises ``ValueError`` naming the first key that is not one of ``known``, so a
        misspelt key is reported instead of silently ignored."""
        for k, _ in self.pairs:
            if k not in known:
                if not known:
                    raise ValueError(f"unknown config key {k}: this plugin takes no configuration")
                raise ValueError(f"unknown config key {k}: expected one of {', '.join(known)}")

    def __iter__(self):
        return iter(self.pairs)

    def __repr__(self) -> str:
        return f"Config({self.pairs!r})"


class Window(NamedTuple):
    """A tumbling event-time window, ``[start, end)``, in microseconds since the epoch."""

    start: int
    end: int


class _Plugin:
    @classmethod
    def configure(cls, config: Config):
        """Builds the plugin from its configuration when an instance starts. Raise to
        reject the configuration: the plugin is not started and the message is shown to
        the operator. The default takes no configuration."""
        config.reject_unknown(())
        return cls()


class Parser(_Plugin):
    """A parser plugin: turns raw records into events."""

    def parse(self, record: RawRecord) -> Iterable[Event]:
        """The events one record holds (a list, a generator, or ``None`` for none). Raise
        to dead-letter the record with the exception's message; events already yielded
        for it are discarded and the batch goes on."""
        raise NotImplementedError


class Enricher(_Plugin):
    """An enricher or filter plugin: each event becomes at most one event."""

    def enrich(self, event: Event) -> Optional[Event]:
        """The enriched event (usually ``event`` itself, changed), or ``None`` to drop it.
        Raise to dead-letter the event with the exception's message."""
        raise NotImplementedError


class Aggregator(_Plugin):
    """An aggregator plugin: folds the events of each group (window and key) into a state
    the host keeps, merges partial states, and turns a finished state into events.

    States cross the boundary as JSON (``json.dumps``), so they must be JSON-able (dicts
    with str keys, lists, numbers, str, bool, None)."""

    @classmethod
    def empty_state(cls) -> Any:
        """The state of an empty group; must be the same every time. Default ``{}``."""
        return {}

    def accumulate(self, state: Any, event: Event) -> Any:
        """Folds one event into ``state`` and returns the new state (returning ``None``
        keeps ``state``, for code that changes it in place). Raise to dead-letter the
        event: check the event before changing ``state`` in place."""
        raise NotImplementedError

    def merge(self, into: Any, other: Any) -> Any:
        """The state of both partial states together (``None`` keeps ``into``, changed in
        place). Must equal accumulating both groups' events into one state."""
        raise NotImplementedError

    def finish(self, state: Any, window: Window, key: str) -> Iterable[Event]:
        """The events that report a finished group."""
        raise NotImplementedError


def error_message(exc: BaseException) -> str:
    """The record error (or configuration error) an exception becomes: its message for a
    ``ValueError`` (the way plugins refuse bad input), else ``TypeName: message`` so that
    a bug (``KeyError: 'x'``) reads as one."""
    text = str(exc)
    if isinstance(exc, ValueError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_NOT_CONFIGURED = "plugin not configured: the host sent a batch before a successful configure"


class _Output:
    """A ``batch-output`` built input by input."""

    def __init__(self) -> None:
        self.events = BatchBuilder()
        self.counts: list[int] = []
        self.errors: list[Any] = []

    def produced(self, events: Sequence[Event]) -> None:
        for event in events:
            self.events.push(event)
        self.counts.append(len(events))

    def failed(self, message: str) -> None:
        self.errors.append(_wit.RecordError(index=len(self.counts), message=message))
        self.counts.append(0)

    def finish(self) -> Any:
        return _wit.BatchOutput(events=self.events.finish(_wit.EventBatch), counts=self.counts, errors=self.errors)


def _all_failed(inputs: int, message: str) -> Any:
    out = _Output()
    for _ in range(inputs):
        out.failed(message)
    return out.finish()


def _checked_events(produced: Any, what: str) -> list[Event]:
    """The events a plugin method returned, checked so that a wrong return value fails
    its input rather than the whole batch."""
    if produced is None:
        return []
    if isinstance(produced, Event):
        raise TypeError(f"{what} must return an iterable of Event (a list), not one Event")
    events = list(produced)
    for event in events:
        if not isinstance(event, Event):
            raise TypeError(f"{what} returned a {type(event).__name__} where an Event was expected")
    return events


def _push_all(out: _Output, events: list[Event]) -> None:
    """Appends the events of one input; one that cannot be encoded fails the input (the
    events of it already written are taken back)."""
    builder = out.events
    mark = len(builder)
    try:
        out.produced(events)
    except (TypeError, ValueError) as err:
        builder.truncate(mark)
        out.failed(error_message(err))


class _Slot:
    """Holds the configured plugin of this instance."""

    def __init__(self, plugin_class: type) -> None:
        self.plugin_class = plugin_class
        self.plugin: Any = None

    def configure(self, pairs: list) -> None:
        self.plugin = None

        def build() -> Any:
            return self.plugin_class.configure(Config(pairs))

        try:
            plugin = host.in_batch(build)
        except Exception as exc:  # noqa: BLE001 - every error rejects the configuration
            raise _Err(error_message(exc)) from None
        if plugin is None:
            raise _Err(f"{self.plugin_class.__name__}.configure returned None instead of the plugin")
        self.plugin = plugin


def export_enricher(plugin_class: type) -> type:
    """The class implementing the generated ``weir:plugin/enrich`` export for an
    :class:`Enricher` subclass. Assign it to the name componentize-py looks for, at module
    level of the app: ``Enrich = export_enricher(MyEnricher)``."""
    slot = _Slot(plugin_class)

    def enrich_batch(batch: Any) -> Any:
        try:
            events = decode_batch(batch)
        except BatchError as err:
            return _all_failed(batch_len(batch), str(err))
        plugin = slot.plugin
        if plugin is None:
            return _all_failed(len(events), _NOT_CONFIGURED)
        out = _Output()
        enrich = plugin.enrich
        for event in events:
            try:
                result = enrich(event)
                if result is not None and not isinstance(result, Event):
                    raise TypeError(f"enrich must return an Event or None, not {type(result).__name__}")
            except Exception as exc:  # noqa: BLE001 - one bad event fails only itself
                out.failed(error_message(exc))
                continue
            if result is None:
                out.counts.append(0)
            else:
                _push_all(out, [result])
        return out.finish()

    class Enrich:
        def configure(self, config: list) -> None:
            slot.configure(config)

        def enrich(self, events: Any) -> Any:
            return host.in_batch(lambda: enrich_batch(events))

    Enrich.__qualname__ = Enrich.__name__ = "Enrich"
    Enrich.plugin_class = plugin_class  # type: ignore[attr-defined]
    return Enrich


def export_parser(plugin_class: type) -> type:
    """The class implementing the generated ``weir:plugin/parse`` export for a
    :class:`Parser` subclass: ``Parse = export_parser(MyParser)``."""
    slot = _Slot(plugin_class)

    def parse_batch(batch: Any) -> Any:
        try:
            records = raw_records(batch)
        except RawBatchError as err:
            return _all_failed(raw_batch_len(batch), str(err))
        plugin = slot.plugin
        if plugin is None:
            return _all_failed(len(records), _NOT_CONFIGURED)
        out = _Output()
        for record in records:
            try:
                events = _checked_events(plugin.parse(record), "parse")
            except Exception as exc:  # noqa: BLE001
                out.failed(error_message(exc))
                continue
            _push_all(out, events)
        return out.finish()

    class Parse:
        def configure(self, config: list) -> None:
            slot.configure(config)

        def parse(self, records: Any) -> Any:
            return host.in_batch(lambda: parse_batch(records))

    Parse.plugin_class = plugin_class  # type: ignore[attr-defined]
    return Parse


def _encode_state(state: Any) -> bytes:
    return _json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


def _decode_state(data: bytes) -> Any:
    try:
        return _json.loads(bytes(data))
    except ValueError as err:
        shown = bytes(data[:200]).decode(errors="replace")
        raise ValueError(f"aggregator state {_json.dumps(shown)} does not decode: {err}") from None


def export_aggregator(plugin_class: type) -> type:
    """The class implementing the generated ``weir:plugin/aggregate`` export for an
    :class:`Aggregator` subclass: ``Aggregate = export_aggregator(MyAggregator)``."""
    slot = _Slot(plugin_class)

    def accumulate_batch(states: list, batch: Any, groups: list) -> Any:
        n = batch_len(batch)

        def all_failed(message: str) -> Any:
            errors = [_wit.RecordError(index=i, message=message) for i in range(n)]
            return _wit.AccumulateOutput(states=list(states), errors=errors)

        plugin = slot.plugin
        if plugin is None:
            return all_failed(_NOT_CONFIGURED)
        try:
            events = decode_batch(batch)
        except BatchError as err:
            return all_failed(str(err))
        if len(groups) != len(events):
            return all_failed(f"the host sent {len(groups)} group numbers for {len(events)} events")
        open_states: dict[int, Any] = {}  # group -> decoded state, or the ValueError
        errors = []
        for index, (event, group) in enumerate(zip(events, groups)):
            if group >= len(states):
                message = f"event {index} belongs to group {group}, but only {len(states)} states were sent"
                errors.append(_wit.RecordError(index=index, message=message))
                continue
            if group not in open_states:
                try:
                    open_states[group] = _decode_state(states[group])
                except ValueError as err:
                    open_states[group] = err
            state = open_states[group]
            try:
                if isinstance(state, ValueError):
                    raise state
                new_state = plugin.accumulate(state, event)
                if new_state is not None:
                    open_states[group] = new_state
            except Exception as exc:  # noqa: BLE001
                errors.append(_wit.RecordError(index=index, message=error_message(exc)))
        new_states = []
        for group, data in enumerate(states):
            state = open_states.get(group, data)
            if group in open_states and not isinstance(state, ValueError):
                try:
                    data = _encode_state(state)
                except (TypeError, ValueError) as err:
                    # A state that is not JSON-able is a bug in the plugin: fail the group's
                    # events and keep the state as it came.
                    message = f"the aggregator state cannot be encoded as JSON: {err}"
                    errors += [
                        _wit.RecordError(index=i, message=message) for i, g in enumerate(groups) if g == group
                    ]
            new_states.append(bytes(data))
        errors.sort(key=lambda e: e.index)
        return _wit.AccumulateOutput(states=new_states, errors=errors)

    def merge_pairs(pairs: list) -> list:
        plugin = slot.plugin
        results = []
        for first, second in pairs:
            if plugin is None:
                results.append(_Err(_NOT_CONFIGURED))
                continue
            try:
                try:
                    into = _decode_state(first)
                except ValueError as err:
                    raise ValueError(f"first state: {err}") from None
                try:
                    other = _decode_state(second)
                except ValueError as err:
                    raise ValueError(f"second state: {err}") from None
                merged = plugin.merge(into, other)
                results.append(_Ok(_encode_state(into if merged is None else merged)))
            except Exception as exc:  # noqa: BLE001
                results.append(_Err(error_message(exc)))
        return results

    def finish_groups(groups: list) -> Any:
        plugin = slot.plugin
        if plugin is None:
            return _all_failed(len(groups), _NOT_CONFIGURED)
        out = _Output()
        for g in groups:
            try:
                state = _decode_state(g.state)
                window = Window(g.window.start, g.window.end)
                events = _checked_events(plugin.finish(state, window, g.key), "finish")
            except Exception as exc:  # noqa: BLE001
                out.failed(error_message(exc))
                continue
            _push_all(out, events)
        return out.finish()

    class Aggregate:
        def configure(self, config: list) -> None:
            slot.configure(config)

        def init(self) -> bytes:
            return _encode_state(plugin_class.empty_state())

        def accumulate(self, states: list, events: Any, groups: list) -> Any:
            return host.in_batch(lambda: accumulate_batch(states, events, groups))

        def merge(self, pairs: list) -> list:
            return host.in_batch(lambda: merge_pairs(pairs))

        def finish(self, groups: list) -> Any:
            return host.in_batch(lambda: finish_groups(groups))

    Aggregate.plugin_class = plugin_class  # type: ignore[attr-defined]
    return Aggregate

