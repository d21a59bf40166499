//! A generic enricher: looks up one field of each event in a reference table and adds
//! the members of the document it finds — "look up field X in table Y", for any stream,
//! configured instead of written.
//!
//! Configuration:
//! - `table` (required): the reference table (`[reference.NAME]` of the pipeline).
//! - `key_field` (required): the event field holding the key; text, or an integer looked
//!   up as its decimal text.
//! - `fields`: the members of the document to add, comma-separated (default: all of its
//!   top-level members).
//! - `prefix`: put before every added field's name, e.g. `customer_` (default none).
//! - `on_missing`: what an event whose key is absent or not in the table becomes:
//!   `error` (the default: a record error naming the key and the table, so the record is
//!   dead-lettered), `keep` (passed on unchanged) or `drop`.
//!
//! Members become values by their JSON type: text, integer, float, boolean, null, and
//! objects or arrays as JSON.

use serde_json::Value as Json;
use weir_sdk::{Config, Enricher, Event, Name, Value, host};

/// Counter of events passed on unchanged or dropped because their key was not found.
pub const NOT_FOUND: &str = "keys_not_found";

/// What an event whose key is not in the table becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissing {
    Error,
    Keep,
    Drop,
}

/// The lookup enricher.
#[derive(Debug, Clone)]
pub struct LookupEnricher {
    table: String,
    key_field: String,
    /// The members to add with the field names they get; `None`: every member.
    fields: Option<Vec<(String, Name)>>,
    prefix: String,
    on_missing: OnMissing,
}

impl LookupEnricher {
    fn key(&self, event: &Event) -> Option<String> {
        match event.get(&self.key_field)? {
            Value::Text(text) => Some(text.to_string()),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn missing(&self, event: Event, why: String) -> Result<Option<Event>, String> {
        match self.on_missing {
            OnMissing::Error => Err(why),
            OnMissing::Keep => {
                host::counter_add(NOT_FOUND, 1);
                Ok(Some(event))
            }
            OnMissing::Drop => {
                host::counter_add(NOT_FOUND, 1);
                Ok(None)
            }
        }
    }
}

impl Enricher for LookupEnricher {
    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["table", "key_field", "fields", "prefix", "on_missing"])?;
        let required = |key: &str, example: &str| {
            config
                .get(key)
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("configuration key `{key}` is required, e.g. {key}={example}"))
        };
        let table = required("table", "customers")?;
        let key_field = required("key_field", "customer_id")?;
        let prefix = config.get_or("prefix", "").to_owned();
        let fields = config.get("fields").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|member| !member.is_empty())
                .map(|member| (member.to_owned(), Name::from(format!("{prefix}{member}").as_str())))
                .collect()
        });
        let on_missing = match config.get_or("on_missing", "error") {
            "error" => OnMissing::Error,
            "keep" => OnMissing::Keep,
            "drop" => OnMissing::Drop,
            other => return Err(format!("on_missing = {other:?}: use error, keep or drop")),
        };
        Ok(Self { table, key_field, fields, prefix, on_missing })
    }

    fn enrich(&mut self, mut event: Event) -> Result<Option<Event>, String> {
        let Some(key) = self.key(&event) else {
            let why = format!("no {} (text or integer) to look up in reference table {}", self.key_field, self.table);
            return self.missing(event, why);
        };
        let Some(document) = host::lookup_json(&self.table, &key)? else {
            let why = format!("{} {key} is not in reference table {}", self.key_field, self.table);
            return self.missing(event, why);
        };
        let Some(members) = document.as_object() else {
            return Err(format!(
                "reference table {} holds a {} for key {key}, not an object",
                self.table,
                kind(&document)
            ));
        };
        match &self.fields {
            Some(fields) => {
                for (member, name) in fields {
                    event.set_shared(name, members.get(member).map_or(Value::Null, value_of));
                }
            }
            None => {
                for (member, value) in members {
                    event.set_shared(&Name::from(format!("{}{member}", self.prefix).as_str()), value_of(value));
                }
            }
        }
        Ok(Some(event))
    }
}

weir_sdk::export_enricher!(LookupEnricher);

/// A JSON member as an event value.
fn value_of(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(_) | Json::Object(_) => Value::Json(json.to_string()),
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "text",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::host::{MapHost, set_native_host};

    use super::*;

    fn install_customers() {
        let lookup = r#"{"customers": {
            "c-1": {"tier": "gold", "since": 2019, "score": 4.5, "vip": true, "tags": ["a", "b"]},
            "42": {"tier": "silver"},
            "odd": "not an object"
        }}"#;
        set_native_host(Box::new(MapHost::from_json(lookup).unwrap()));
    }

    fn enricher(pairs: &[(&str, &str)]) -> Result<LookupEnricher, String> {
        let config: Config = pairs.iter().map(|(k, v)| (*k, *v)).collect();
        LookupEnricher::configure(&config)
    }

    fn order(customer: impl Into<Value>) -> Event {
        Event::new(0).with("order_id", "o-1").with("customer_id", customer)
    }

    #[test]
    fn adds_every_member_of_the_document_by_its_json_type_with_the_prefix() {
        install_customers();
        let mut e = enricher(&[("table", "customers"), ("key_field", "customer_id"), ("prefix", "customer_")]).unwrap();
        let out = e.enrich(order("c-1")).unwrap().unwrap();
        assert_eq!(out.get_str("customer_tier"), Some("gold"));
        assert_eq!(out.get_int("customer_since"), Some(2019));
        assert_eq!(out.get_f64("customer_score"), Some(4.5));
        assert_eq!(out.get_bool("customer_vip"), Some(true));
        assert_eq!(out.get("customer_tags"), Some(&Value::Json(r#"["a","b"]"#.into())));
        // An integer key is looked up as its decimal text.
        assert_eq!(e.enrich(order(42i64)).unwrap().unwrap().get_str("customer_tier"), Some("silver"));
    }

    #[test]
    fn only_the_chosen_members_and_null_for_one_the_document_lacks() {
        install_customers();
        let mut e =
            enricher(&[("table", "customers"), ("key_field", "customer_id"), ("fields", "tier, region")]).unwrap();
        let out = e.enrich(order("c-1")).unwrap().unwrap();
        assert_eq!(out.get_str("tier"), Some("gold"));
        assert_eq!(out.get("region"), Some(&Value::Null));
        assert_eq!(out.get("since"), None);
    }

    #[test]
    fn a_missing_key_is_an_error_naming_it_or_kept_or_dropped_as_configured() {
        install_customers();
        let base = [("table", "customers"), ("key_field", "customer_id")];
        let err = enricher(&base).unwrap().enrich(order("c-9")).unwrap_err();
        assert_eq!(err, "customer_id c-9 is not in reference table customers");
        let err = enricher(&base).unwrap().enrich(Event::new(0)).unwrap_err();
        assert!(err.starts_with("no customer_id (text or integer)"), "{err}");
        let keep = [base[0], base[1], ("on_missing", "keep")];
        assert_eq!(enricher(&keep).unwrap().enrich(order("c-9")).unwrap(), Some(order("c-9")));
        let drop = [base[0], base[1], ("on_missing", "drop")];
        assert_eq!(enricher(&drop).unwrap().enrich(order("c-9")).unwrap(), None);
        let err = enricher(&base).unwrap().enrich(order("odd")).unwrap_err();
        assert!(err.contains("holds a text for key odd, not an object"), "{err}");
    }

    #[test]
    fn configuration_names_what_is_missing_or_wrong() {
        assert!(enricher(&[("key_field", "x")]).unwrap_err().contains("`table` is required"));
        assert!(enricher(&[("table", "t")]).unwrap_err().contains("`key_field` is required"));
        let bad = enricher(&[("table", "t"), ("key_field", "x"), ("on_missing", "ignore")]).unwrap_err();
        assert!(bad.contains("use error, keep or drop"), "{bad}");
        assert!(enricher(&[("table", "t"), ("key_field", "x"), ("colour", "red")]).is_err());
    }
}
