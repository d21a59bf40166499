//! Parses food-delivery orders, sent as JSON objects or CSV lines, into order events.
//!
//! Every order becomes one event keyed by its `restaurant_id`, at its `placed_at` time,
//! with the fields of [`FIELDS`]. A record that is not a valid order fails on its own,
//! with a message naming the field and the value at fault.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use weir_sdk::{Config, Event, Name, Parser, RawRecord, Value, time};

/// The fields of an order event, in order. CSV records carry the same columns in the same
/// order, without a header line.
pub const FIELDS: [&str; 9] =
    ["order_id", "restaurant_id", "customer_id", "status", "total", "items", "placed_at", "delivered_at", "test"];

/// How to read records whose content type is neither JSON nor CSV (or missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultFormat {
    /// A record starting with `{` is JSON, any other is CSV.
    Auto,
    Json,
    Csv,
}

impl FromStr for DefaultFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            _ => Err("expected auto, json or csv".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// The orders parser. Config: `default_content_type` = `auto` (default), `json` or `csv`.
#[derive(Debug, Clone)]
pub struct OrdersParser {
    default_format: DefaultFormat,
    /// The names of [`FIELDS`], shared by every event produced.
    names: [Name; 9],
}

impl OrdersParser {
    /// A parser reading records of unknown content type as `default_format`.
    pub fn new(default_format: DefaultFormat) -> Self {
        Self { default_format, names: FIELDS.map(Name::from) }
    }

    fn format_of(&self, record: &RawRecord, text: &str) -> Format {
        let media_type = record.content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/json")
            || media_type.eq_ignore_ascii_case("application/x-ndjson")
        {
            return Format::Json;
        }
        if media_type.eq_ignore_ascii_case("text/csv") {
            return Format::Csv;
        }
        match self.default_format {
            DefaultFormat::Json => Format::Json,
            DefaultFormat::Csv => Format::Csv,
            DefaultFormat::Auto if text.starts_with('{') => Format::Json,
            DefaultFormat::Auto => Format::Csv,
        }
    }

    /// The event of one order, checking every field.
    fn order_event(&self, order: RawOrder<'_>) -> Result<Event, String> {
        let order_id = required("order_id", order.order_id, text)?;
        let restaurant_id = required("restaurant_id", order.restaurant_id, text)?;
        let customer_id = optional("customer_id", order.customer_id, text)?;
        let status = required("status", order.status, text)?;
        let total = required("total", order.total, number)?;
        let items = optional("items", order.items, integer)?;
        let placed_at = required("placed_at", order.placed_at, timestamp)?;
        let delivered_at = optional("delivered_at", order.delivered_at, timestamp)?;
        let test = optional("test", order.test, boolean)?.unwrap_or(false);
        let values = [
            Value::Text(order_id),
            Value::Text(restaurant_id.clone()),
            Value::from(customer_id),
            Value::Text(status),
            Value::Float(total),
            Value::from(items),
            Value::Timestamp(placed_at),
            delivered_at.map_or(Value::Null, Value::Timestamp),
            Value::Bool(test),
        ];
        let fields = self.names.iter().cloned().zip(values).collect();
        Ok(Event { key: Some(restaurant_id), time: placed_at, fields })
    }
}

impl Parser for OrdersParser {
    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["default_content_type"])?;
        Ok(Self::new(config.parse("default_content_type")?.unwrap_or(DefaultFormat::Auto)))
    }

    fn parse(&mut self, record: &RawRecord, out: &mut Vec<Event>) -> Result<(), String> {
        let text = record.text()?.trim();
        if text.is_empty() {
            return Err("empty record: expected a JSON or CSV order".into());
        }
        let order = match self.format_of(record, text) {
            Format::Json => RawOrder::from_json(text)?,
            Format::Csv => RawOrder::from_csv(text)?,
        };
        out.push(self.order_event(order)?);
        Ok(())
    }
}

weir_sdk::export_parser!(OrdersParser);

/// An order's fields as found in the record, before checking. JSON fields are borrowed
/// from the record unless they hold escapes; CSV fields are text.
#[derive(Debug, Deserialize)]
struct RawOrder<'a> {
    #[serde(borrow)]
    order_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    restaurant_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    customer_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    status: Option<Scalar<'a>>,
    #[serde(borrow)]
    total: Option<Scalar<'a>>,
    #[serde(borrow)]
    items: Option<Scalar<'a>>,
    #[serde(borrow)]
    placed_at: Option<Scalar<'a>>,
    #[serde(borrow)]
    delivered_at: Option<Scalar<'a>>,
    #[serde(borrow)]
    test: Option<Scalar<'a>>,
}

impl<'a> RawOrder<'a> {
    fn from_json(text: &'a str) -> Result<Self, String> {
        // serde would also accept a JSON array as a struct, positionally.
        if !text.starts_with('{') {
            return Err("a JSON order must be an object".into());
        }
        serde_json::from_str(text).map_err(|e| format!("invalid JSON order: {e}"))
    }

    fn from_csv(line: &'a str) -> Result<Self, String> {
        let columns = split_csv(line)?;
        let found = columns.len();
        let Ok(columns) = <[Cow<'a, str>; 9]>::try_from(columns) else {
            return Err(format!("a CSV order has {} columns ({}), found {found}", FIELDS.len(), FIELDS.join(",")));
        };
        let [order_id, restaurant_id, customer_id, status, total, items, placed_at, delivered_at, test] =
            columns.map(|column| Some(Scalar::Text(column)));
        Ok(Self { order_id, restaurant_id, customer_id, status, total, items, placed_at, delivered_at, test })
    }
}

/// One JSON value of an order field. Objects and arrays are kept only as their kind, to
/// say what was found where a scalar was expected.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Nested(&'static str),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(s) => write!(f, "{s:?}"),
            Self::Nested(kind) => f.write_str(kind),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<Scalar<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'a>, E> {
        Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested("an array"))
    }
}

/// A field that must be present, checked by `check`. Empty text counts as absent.
fn required<'a, T>(
    field: &str,
    value: Option<Scalar<'a>>,
    check: impl FnOnce(&str, Scalar<'a>) -> Result<T, String>,
) -> Result<T, String> {
    let value = present(value).ok_or_else(|| format!("missing {field}"))?;
    check(field, value)
}

/// A field that may be absent (or empty text), checked by `check` when present.
fn optional<'a, T>(
    field: &str,
    value: Option<Scalar<'a>>,
    check: impl FnOnce(&str, Scalar<'a>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    present(value).map(|value| check(field, value)).transpose()
}

fn present(value: Option<Scalar<'_>>) -> Option<Scalar<'_>> {
    value.filter(|value| !matches!(value, Scalar::Text(text) if text.is_empty()))
}

fn text(field: &str, value: Scalar<'_>) -> Result<String, String> {
    match value {
        Scalar::Text(text) => Ok(text.into_owned()),
        // Identifiers are sometimes sent as numbers.
        Scalar::Int(i) => Ok(i.to_string()),
        other => Err(format!("{field} must be text, got {other}")),
    }
}

fn number(field: &str, value: Scalar<'_>) -> Result<f64, String> {
    let number = match &value {
        Scalar::Int(i) => Some(*i as f64),
        Scalar::Float(x) => Some(*x),
        Scalar::Text(text) => text.trim().parse::<f64>().ok(),
        Scalar::Bool(_) | Scalar::Nested(_) => None,
    };
    number.filter(|x| x.is_finite()).ok_or_else(|| format!("{field} must be a number, got {value}"))
}

fn integer(field: &str, value: Scalar<'_>) -> Result<i64, String> {
    let integer = match &value {
        Scalar::Int(i) => Some(*i),
        Scalar::Text(text) => text.trim().parse::<i64>().ok(),
        Scalar::Bool(_) | Scalar::Float(_) | Scalar::Nested(_) => None,
    };
    integer.ok_or_else(|| format!("{field} must be a whole number, got {value}"))
}

fn timestamp(field: &str, value: Scalar<'_>) -> Result<i64, String> {
    let micros = match &value {
        Scalar::Text(text) => time::parse_rfc3339(text).ok(),
        _ => None,
    };
    micros.ok_or_else(|| format!("{field} must be an RFC 3339 timestamp like 2026-11-26T10:15:00Z, got {value}"))
}

fn boolean(field: &str, value: Scalar<'_>) -> Result<bool, String> {
    match &value {
        Scalar::Bool(b) => Ok(*b),
        Scalar::Text(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Scalar::Text(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("{field} must be true or false, got {value}")),
    }
}

/// Splits one CSV line into its columns. Columns are separated by commas; a column in
/// double quotes may hold commas and doubled quotes (`""` for `"`).
fn split_csv(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut columns = Vec::with_capacity(FIELDS.len());
    let mut rest = line;
    loop {
        let Some(quoted) = rest.strip_prefix('"') else {
            match rest.split_once(',') {
                Some((column, after)) => {
                    columns.push(Cow::Borrowed(column));
                    rest = after;
                    continue;
                }
                None => {
                    columns.push(Cow::Borrowed(rest));
                    return Ok(columns);
                }
            }
        };
        let (column, after) = unquote(quoted).ok_or_else(|| format!("unterminated quoted CSV column {rest:?}"))?;
        columns.push(column);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(columns),
            None => return Err(format!("unexpected {after:?} after a quoted CSV column")),
        }
    }
}

/// The content of a quoted column whose opening quote was already removed, and what
/// follows its closing quote; `None` when it never closes.
fn unquote(quoted: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut unescaped = String::new();
    let mut start = 0;
    loop {
        let quote = start + quoted[start..].find('"')?;
        if quoted[quote + 1..].starts_with('"') {
            unescaped.push_str(&quoted[start..=quote]);
            start = quote + 2;
            continue;
        }
        let column = if unescaped.is_empty() && start == 0 {
            Cow::Borrowed(&quoted[..quote])
        } else {
            unescaped.push_str(&quoted[start..quote]);
            Cow::Owned(unescaped)
        };
        return Some((column, &quoted[quote + 1..]));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use weir_sdk::run_parse;
    use weir_sdk::testing::assert_events_file;

    use super::*;

    fn parse_one(content_type: &str, text: &str) -> Result<Event, String> {
        let mut events = Vec::new();
        OrdersParser::new(DefaultFormat::Auto).parse(&RawRecord::new(content_type, text), &mut events)?;
        assert_eq!(events.len(), 1);
        Ok(events.remove(0))
    }

    const JSON_ORDER: &str = r#"{"order_id":"o-1","restaurant_id":"r-7","customer_id":"c-9","status":"delivered","total":23.5,"items":2,"placed_at":"2026-11-26T11:05:00Z","delivered_at":"2026-11-26T11:38:00Z","test":false}"#;
    const CSV_ORDER: &str = "o-1,r-7,c-9,delivered,23.5,2,2026-11-26T11:05:00Z,2026-11-26T11:38:00Z,false";

    #[test]
    fn json_and_csv_give_the_same_event() {
        let event = parse_one("application/json", JSON_ORDER).unwrap();
        assert_eq!(parse_one("text/csv", CSV_ORDER), Ok(event.clone()));
        assert_eq!(parse_one("", CSV_ORDER), Ok(event.clone()), "sniffed as CSV");
        assert_eq!(parse_one("text/plain", JSON_ORDER), Ok(event.clone()), "sniffed as JSON");
        let placed_at = time::parse_rfc3339("2026-11-26T11:05:00Z").unwrap();
        assert_eq!(event.key.as_deref(), Some("r-7"));
        assert_eq!(event.time, placed_at);
        let names: Vec<&str> = event.fields.iter().map(|(name, _)| &**name).collect();
        assert_eq!(names, FIELDS);
        assert_eq!(event.get("total"), Some(&Value::Float(23.5)));
        assert_eq!(event.get("items"), Some(&Value::Int(2)));
        assert_eq!(event.get("test"), Some(&Value::Bool(false)));
    }

    #[test]
    fn optional_fields_become_null_or_false() {
        let json = r#"{"order_id":"o-2","restaurant_id":"r-1","status":"placed","total":"9.90","placed_at":"2026-11-26T12:00:00Z","delivered_at":null}"#;
        let event = parse_one("application/json", json).unwrap();
        for field in ["customer_id", "items", "delivered_at"] {
            assert_eq!(event.get(field), Some(&Value::Null), "{field}");
        }
        assert_eq!(event.get("test"), Some(&Value::Bool(false)));
        assert_eq!(event.get("total"), Some(&Value::Float(9.9)), "numeric text is a number");
        assert_eq!(parse_one("text/csv", "o-2,r-1,,placed,9.90,,2026-11-26T12:00:00Z,,"), Ok(event));
    }

    #[test]
    fn malformed_orders_name_the_field_and_value() {
        let cases = [
            (r#"{"order_id":"o-1","#, "invalid JSON order: EOF while parsing"),
            (
                r#"{"order_id":"o-1","status":"placed","total":1,"placed_at":"2026-11-26T12:00:00Z"}"#,
                "missing restaurant_id",
            ),
            ("o-1,r-1,c-1,placed,twelve,1,2026-11-26T12:00:00Z,,false", "total must be a number, got \"twelve\""),
            ("o-1,r-1,c-1,placed,NaN,1,2026-11-26T12:00:00Z,,false", "total must be a number, got \"NaN\""),
            ("o-1,r-1,c-1,placed,1,2.5,2026-11-26T12:00:00Z,,false", "items must be a whole number, got \"2.5\""),
            (
                "o-1,r-1,c-1,placed,1,1,26/11/2026 12:40,,false",
                "placed_at must be an RFC 3339 timestamp like 2026-11-26T10:15:00Z, got \"26/11/2026 12:40\"",
            ),
            ("o-1,r-1,c-1,placed,1,1,2026-11-26T12:00:00Z,,maybe", "test must be true or false, got \"maybe\""),
            (r#"{"order_id":{"id":1},"restaurant_id":"r-1"}"#, "order_id must be text, got an object"),
            ("o-1,r-1", "a CSV order has 9 columns"),
            ("   ", "empty record"),
        ];
        for (input, expected) in cases {
            let err = parse_one("", input).unwrap_err();
            assert!(err.starts_with(expected), "{input}: {err}");
        }
        let err = parse_one("application/json", r#"["o-1"]"#).unwrap_err();
        assert_eq!(err, "a JSON order must be an object");
    }

    #[test]
    fn quoted_csv_columns_may_hold_commas_and_quotes() {
        let columns = split_csv(r#"a,"b,c","say ""hi""",,"""""#).unwrap();
        assert_eq!(columns, ["a", "b,c", "say \"hi\"", "", "\""]);
        assert!(matches!(columns[1], Cow::Borrowed(_)), "no copy without escapes");
        assert_eq!(split_csv("a,"), Ok(vec![Cow::Borrowed("a"), Cow::Borrowed("")]));
        assert!(split_csv(r#"a,"b"#).unwrap_err().starts_with("unterminated"));
        assert!(split_csv(r#""b"x,c"#).unwrap_err().starts_with("unexpected \"x,c\""));
    }

    #[test]
    fn the_default_content_type_is_configurable_and_checked() {
        let config: Config = [("default_content_type", "json")].into_iter().collect();
        let mut parser = OrdersParser::configure(&config).unwrap();
        let err = parser.parse(&RawRecord::new("", CSV_ORDER), &mut Vec::new()).unwrap_err();
        assert!(err.starts_with("a JSON order must be an object"), "{err}");
        let config: Config = [("default_content_type", "xml")].into_iter().collect();
        let err = OrdersParser::configure(&config).unwrap_err();
        assert_eq!(err, "config key default_content_type: \"xml\" is not valid: expected auto, json or csv");
    }

    #[test]
    fn the_fixture_gives_the_expected_events() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let input = std::fs::read_to_string(fixtures.join("input.txt")).unwrap();
        // As `weir plugin test` feeds it: one raw record per non-blank line, as text/plain.
        let records: Vec<RawRecord> = input
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| RawRecord::new("text/plain", line))
            .collect();
        let parser = &mut OrdersParser::configure(&Config::default()).unwrap();
        let output = run_parse(parser, &records);
        let errors: Vec<(u32, &str)> = output.errors.iter().map(|e| (e.index, e.message.as_str())).collect();
        assert_eq!(
            errors,
            [
                (4, "invalid JSON order: EOF while parsing a value at line 1 column 85"),
                (9, "missing restaurant_id"),
                (16, "total must be a number, got \"twelve\""),
                (19, "placed_at must be an RFC 3339 timestamp like 2026-11-26T10:15:00Z, got \"26/11/2026 12:40\""),
            ]
        );
        assert_eq!(output.counts.iter().sum::<u32>() as usize + errors.len(), records.len());
        assert_events_file(fixtures.join("expected.ndjson"), &output.decode_events());
    }
}
