"""{{name}}: a weir aggregator. Per key and window: how many events, and the sum of their
`total` (events without a numeric `total` are errors). The state is JSON the host keeps
between batches."""

from weir_sdk import Aggregator, Config, Event, Timestamp, Window, export_aggregator


class Plugin(Aggregator):
    @classmethod
    def configure(cls, config: Config) -> "Plugin":
        config.reject_unknown(())
        return cls()

    @classmethod
    def empty_state(cls):
        return {"count": 0, "total_cents": 0}

    def accumulate(self, state, event: Event):
        total = event.get_float("total")
        if total is None:
            raise ValueError("the event has no numeric total")
        return {"count": state["count"] + 1, "total_cents": state["total_cents"] + round(total * 100.0)}

    def merge(self, into, other):
        return {"count": into["count"] + other["count"], "total_cents": into["total_cents"] + other["total_cents"]}

    def finish(self, state, window: Window, key: str):
        fields = {
            "window_start": Timestamp(window.start),
            "count": state["count"],
            "total": state["total_cents"] / 100.0,
        }
        return [Event(window.start, key, fields)]


# The class componentize-py binds to the `weir:plugin/aggregate` export.
Aggregate = export_aggregator(Plugin)
