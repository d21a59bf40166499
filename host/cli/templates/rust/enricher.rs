//! {{name}}: a weir enricher. Adds `total_with_tax` = `total` × (1 + `tax_rate`), with
//! `tax_rate` from the configuration (default 0.1); drops events whose `status` is
//! `test`; an event without a numeric `total` is an error (it is dead-lettered).

use weir_sdk::{Config, Enricher, Event, Value};

pub struct Plugin {
    tax_rate: f64,
}

impl Enricher for Plugin {
    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["tax_rate"])?;
        Ok(Plugin { tax_rate: config.parse("tax_rate")?.unwrap_or(0.1) })
    }

    fn enrich(&mut self, mut event: Event) -> Result<Option<Event>, String> {
        if event.get_str("status") == Some("test") {
            return Ok(None);
        }
        let total = event.get_f64("total").ok_or("the event has no numeric total")?;
        let with_tax = (total * (1.0 + self.tax_rate) * 100.0).round() / 100.0;
        event.set("total_with_tax", Value::Float(with_tax));
        Ok(Some(event))
    }
}

weir_sdk::export_enricher!(Plugin);
