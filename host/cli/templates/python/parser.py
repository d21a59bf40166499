"""{{name}}: a weir parser. Each record is one JSON object; it becomes one event whose key
is the object's `key` member (else the record's partition key), whose time is its `time`
member (RFC 3339; else the record's arrival time), and whose fields are the other
members."""

import json

from weir_sdk import Config, Event, Parser, RawRecord, Timestamp, export_parser


class Plugin(Parser):
    @classmethod
    def configure(cls, config: Config) -> "Plugin":
        config.reject_unknown(())
        return cls()

    def parse(self, record: RawRecord):
        try:
            document = json.loads(record.data)
        except ValueError as e:
            raise ValueError(f"not a JSON object: {e}") from None
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        event = Event(record.arrival_time, record.key)
        for name, value in document.items():
            if name == "key" and isinstance(value, str):
                event.key = value
            elif name == "time" and isinstance(value, str):
                event.time = Timestamp.parse(value)
            else:
                event[name] = value
        return [event]


# The class componentize-py binds to the `weir:plugin/parse` export.
Parse = export_parser(Plugin)
