"""Write weir plugins in Python (componentize-py).

A plugin is a class deriving from :class:`Parser`, :class:`Enricher` or
:class:`Aggregator`, written one record or event at a time, plus one line that exports
it under the name componentize-py looks for. The SDK handles the rest of the
``weir:plugin`` contract: it decodes the columnar batches the host sends into
:class:`Event` objects, calls the plugin per record, turns an exception raised for one
record into that record's error (dead-lettered) while the rest of the batch proceeds,
and encodes the events produced.

An enricher::

    from weir_sdk import Config, Enricher, Event, export_enricher, host

    class UserCountry(Enricher):
        @classmethod
        def configure(cls, config: Config) -> "UserCountry":
            config.reject_unknown(())
            return cls()

        def enrich(self, event: Event) -> Event | None:
            user_id = event.get_str("user_id")
            if user_id is None:
                return None                      # dropped
            user = host.lookup_json("users", user_id)
            if user is None:
                raise ValueError(f"unknown user {user_id}")   # this event's error
            event["country"] = user.get("country", "unknown")
            return event

    Enrich = export_enricher(UserCountry)

Build it with ``componentize-py -d wit -w enricher componentize app -p . -p sdk/python
-o app.wasm``. A parser is exported as ``Parse = export_parser(MyParser)``, an aggregator
as ``Aggregate = export_aggregator(MyAggregator)``. See docs/plugins-python.md.
"""

__version__ = "0.3.0"  # the weir:plugin WIT package this SDK implements (weir_sdk/wit)

from . import host
from .events import BatchBuilder, BatchError, Event, decode_batch, encode_events, value_kind
from .plugin import (
    Aggregator,
    Config,
    Enricher,
    Parser,
    RawRecord,
    Window,
    error_message,
    export_aggregator,
    export_enricher,
    export_parser,
)
from .values import Json, Timestamp, format_rfc3339, parse_rfc3339

__all__ = [
    "Aggregator",
    "BatchBuilder",
    "BatchError",
    "Config",
    "Enricher",
    "Event",
    "Json",
    "Parser",
    "RawRecord",
    "Timestamp",
    "Window",
    "decode_batch",
    "encode_events",
    "error_message",
    "export_aggregator",
    "export_enricher",
    "export_parser",
    "format_rfc3339",
    "host",
    "parse_rfc3339",
    "value_kind",
]
