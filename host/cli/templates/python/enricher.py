"""{{name}}: a weir enricher. Adds `total_with_tax` = `total` x (1 + `tax_rate`), with
`tax_rate` from the configuration (default 0.1); drops events whose `status` is `test`;
an event without a numeric `total` is an error (it is dead-lettered)."""

from typing import Optional

from weir_sdk import Config, Enricher, Event, export_enricher


class Plugin(Enricher):
    def __init__(self, tax_rate: float):
        self.tax_rate = tax_rate

    @classmethod
    def configure(cls, config: Config) -> "Plugin":
        config.reject_unknown(("tax_rate",))
        return cls(float(config.get("tax_rate", "0.1")))

    def enrich(self, event: Event) -> Optional[Event]:
        if event.get_str("status") == "test":
            return None
        total = event.get_float("total")
        if total is None:
            raise ValueError("the event has no numeric total")
        event["total_with_tax"] = round(total * (1.0 + self.tax_rate) * 100.0) / 100.0
        return event


# The class componentize-py binds to the `weir:plugin/enrich` export.
Enrich = export_enricher(Plugin)
