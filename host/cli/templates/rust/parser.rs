//! {{name}}: a weir parser. Each record is one JSON object; it becomes one event whose
//! key is the object's `key` member (else the record's partition key), whose time is its
//! `time` member (RFC 3339; else the record's arrival time), and whose fields are the
//! other members.

use weir_sdk::{Config, Event, Parser, RawRecord, json, time};

pub struct Plugin;

impl Parser for Plugin {
    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&[])?;
        Ok(Plugin)
    }

    fn parse(&mut self, record: &RawRecord, out: &mut Vec<Event>) -> Result<(), String> {
        let object: weir_sdk::serde_json::Map<String, weir_sdk::serde_json::Value> =
            weir_sdk::serde_json::from_slice(&record.data).map_err(|e| format!("not a JSON object: {e}"))?;
        let mut event = Event::new(record.arrival_time);
        event.key = record.key.clone();
        for (name, value) in &object {
            match (name.as_str(), value) {
                ("key", weir_sdk::serde_json::Value::String(key)) => event.key = Some(key.clone()),
                ("time", weir_sdk::serde_json::Value::String(text)) => event.time = time::parse_rfc3339(text)?,
                _ => event.set(name, json::value_from_json(value)?),
            }
        }
        out.push(event);
        Ok(())
    }
}

weir_sdk::export_parser!(Plugin);
