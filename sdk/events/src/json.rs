//! The NDJSON form of events, used by the harness (`--input`, `--expect`) and the docs.
//!
//! ```json
//! {"key":"r-7","time":"2026-11-26T10:15:00Z","fields":{"order_id":"o-1","total":23.5,
//!  "items":3,"placed_at":{"$timestamp":"2026-11-26T10:15:00Z"},"raw":{"$bytes":"00ff"},
//!  "lines":[{"sku":"a"}]}}
//! ```
//!
//! JSON's own types map to `null`, `bool`, `int` (integers), `float` (numbers with a
//! fraction or exponent) and `text`; objects and arrays are `json` values. The other
//! kinds are tagged: `{"$timestamp": RFC 3339}`, `{"$bytes": hex}`, `{"$float": "NaN"}`
//! (and `"inf"`, `"-inf"`: JSON has no such numbers), and
//! `{"$json": value}` for a JSON value that is not an object or array, or is an object
//! of one member whose name starts with `$` (which would read as a tag). So every value
//! has exactly one form, and reading a written value gives it back.

use serde_json::{Map, Value as Json};

use crate::event::{Event, Name, Value};
use crate::time::{format_rfc3339, parse_rfc3339};

/// `digits` as a number when JSON readers hold it exactly: an integer below 2^53 written
/// without leading zeros. Ids and positions that are (the embedded log's shards and
/// sequence numbers) go into JSON as numbers, others (Kinesis' 56-digit sequence
/// numbers) as strings.
pub fn exact_integer(digits: &str) -> Option<u64> {
    // Checked on the bytes, without formatting the number back: ingest answers with two
    // ids per record. 2^53 has 16 digits.
    let bytes = digits.as_bytes();
    let canonical =
        matches!(bytes, [b'0'] | [b'1'..=b'9', ..]) && bytes.len() <= 16 && bytes.iter().all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    digits.parse::<u64>().ok().filter(|&n| n < (1 << 53))
}

/// [`id_to_json`] written straight to a serializer, without building the value: what the
/// ingest answer and the lake's JSON lines write for every record.
///
/// # Errors
/// The serializer's.
pub fn serialize_id<S: serde::Serializer>(digits: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match exact_integer(digits) {
        Some(n) => serializer.serialize_u64(n),
        None => serializer.serialize_str(digits),
    }
}

/// An id or position as a JSON value: a number when [`exact_integer`], else a string.
pub fn id_to_json(digits: &str) -> Json {
    exact_integer(digits).map_or_else(|| Json::from(digits), Json::from)
}

/// The JSON form of a value.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        // JSON has no NaN or infinities: those are tagged, as `"NaN"`, `"inf"`, `"-inf"`.
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| tagged("$float", Json::String(f.to_string())), Json::Number)
        }
        Value::Text(s) => Json::String(s.clone()),
        Value::Bytes(b) => tagged("$bytes", Json::String(b.iter().map(|x| format!("{x:02x}")).collect())),
        Value::Timestamp(t) => tagged("$timestamp", Json::String(format_rfc3339(*t))),
        Value::Json(text) => match serde_json::from_str::<Json>(text) {
            // An object of one `$`-named member would read back as a tag (a JSON document
            // `{"$timestamp": "…"}` as a timestamp): such objects are tagged too.
            Ok(Json::Object(map)) if map.len() == 1 && map.keys().all(|k| k.starts_with('$')) => {
                tagged("$json", Json::Object(map))
            }
            Ok(doc @ (Json::Object(_) | Json::Array(_))) => doc,
            Ok(other) => tagged("$json", other),
            Err(_) => tagged("$json", Json::String(text.clone())),
        },
    }
}

fn tagged(tag: &str, value: Json) -> Json {
    let mut map = Map::new();
    map.insert(tag.to_owned(), value);
    Json::Object(map)
}

/// The value of a JSON form (see the module docs).
///
/// # Errors
/// A message when a tagged value is malformed.
pub fn value_from_json(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Object(map) if map.len() == 1 => {
            let (tag, inner) = map.iter().next().map(|(k, v)| (k.as_str(), v)).unwrap_or(("", &Json::Null));
            match (tag, inner) {
                ("$timestamp", Json::String(s)) => Value::Timestamp(parse_rfc3339(s)?),
                ("$timestamp", Json::Number(n)) => {
                    Value::Timestamp(n.as_i64().ok_or("a $timestamp number must be integer microseconds")?)
                }
                ("$bytes", Json::String(hex)) => Value::Bytes(parse_hex(hex)?),
                ("$float", Json::String(text)) => Value::Float(
                    text.parse::<f64>().map_err(|_| format!("$float {text:?} is not NaN, inf, -inf or a number"))?,
                ),
                ("$json", inner) => Value::Json(inner.to_string()),
                ("$timestamp" | "$bytes" | "$float", _) => return Err(format!("{tag} needs a string, got {inner}")),
                _ => Value::Json(json.to_string()),
            }
        }
        Json::Object(_) | Json::Array(_) => Value::Json(json.to_string()),
    })
}

/// The bytes of a hex string, two digits a byte.
///
/// # Errors
/// A message when `hex` has an odd length or a digit that is not hex.
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("$bytes {hex:?} has an odd number of hex digits"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| format!("$bytes {hex:?} is not hex")))
        .collect()
}

/// The JSON form of an event: `{"key", "time", "fields"}` (`key` left out when absent).
pub fn event_to_json(event: &Event) -> Json {
    let mut map = Map::new();
    if let Some(key) = &event.key {
        map.insert("key".into(), Json::String(key.clone()));
    }
    map.insert("time".into(), Json::String(format_rfc3339(event.time)));
    let fields = event.fields.iter().map(|(n, v)| (n.to_string(), value_to_json(v))).collect();
    map.insert("fields".into(), Json::Object(fields));
    Json::Object(map)
}

/// An event's JSON form ([`event_to_json`]) written straight to a serializer, without
/// building the value: the sinks write one per event (the serving store's documents, the
/// search index's sources, the lake's staged rows), and building a `serde_json::Value`
/// (a map, a `String` per name, and a clone of every text) cost more than writing it.
/// Writes exactly the bytes `event_to_json(event)` serializes to (unit-tested).
#[derive(Debug, Clone, Copy)]
pub struct EventJson<'a>(pub &'a Event);

/// An event's fields as the `fields` member of its JSON form, written straight to a
/// serializer (see [`EventJson`]).
#[derive(Debug, Clone, Copy)]
pub struct FieldsJson<'a>(pub &'a [(Name, Value)]);

/// A value's JSON form ([`value_to_json`]) written straight to a serializer.
#[derive(Debug, Clone, Copy)]
pub struct ValueJson<'a>(pub &'a Value);

impl serde::Serialize for EventJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let event = self.0;
        let mut map = serializer.serialize_map(Some(2 + usize::from(event.key.is_some())))?;
        if let Some(key) = &event.key {
            map.serialize_entry("key", key)?;
        }
        map.serialize_entry("time", &format_rfc3339(event.time))?;
        map.serialize_entry("fields", &FieldsJson(&event.fields))?;
        map.end()
    }
}

impl serde::Serialize for FieldsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if has_a_name_twice(self.0) {
            // A JSON object holds a name once: as `event_to_json` does, the later value
            // replaces the earlier in its place. Validated batches never get here.
            let fields: Map<String, Json> = self.0.iter().map(|(n, v)| (n.to_string(), value_to_json(v))).collect();
            return serde::Serialize::serialize(&fields, serializer);
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name.as_ref(), &ValueJson(value))?;
        }
        map.end()
    }
}

/// Whether a name comes twice among `fields`: pairwise for the few fields events have,
/// through a hash set beyond, so that the check stays linear in a large event.
fn has_a_name_twice<V>(fields: &[(Name, V)]) -> bool {
    const PAIRWISE_UP_TO: usize = 24;
    if fields.len() <= PAIRWISE_UP_TO {
        return fields.iter().enumerate().any(|(i, (name, _))| fields[..i].iter().any(|(earlier, _)| earlier == name));
    }
    let mut seen = std::collections::HashSet::with_capacity(fields.len());
    !fields.iter().all(|(name, _)| seen.insert(name.as_ref()))
}

impl serde::Serialize for ValueJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let tagged = |tag: &str, text: &dyn std::fmt::Display, serializer: S| {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(tag, &Shown(text))?;
            map.end()
        };
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => serializer.serialize_f64(*f),
            Value::Text(text) => serializer.serialize_str(text),
            Value::Bytes(bytes) => tagged("$bytes", &Hex(bytes), serializer),
            Value::Timestamp(t) => tagged("$timestamp", &format_rfc3339(*t), serializer),
            // Rare, and their forms depend on parsing the document: built as before.
            Value::Float(_) | Value::Json(_) => serde::Serialize::serialize(&value_to_json(self.0), serializer),
        }
    }
}

/// Serializes as a string the text a `Display` writes, without an intermediate `String`.
struct Shown<'a>(&'a dyn std::fmt::Display);

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// Bytes as lower-case hex, two digits a byte.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// The event of a JSON form. `time` is RFC 3339 text or integer microseconds.
///
/// # Errors
/// A message naming the member that is missing or malformed.
pub fn event_from_json(json: &Json) -> Result<Event, String> {
    let obj = json.as_object().ok_or(NOT_AN_OBJECT)?;
    let time = time_from_json(obj.get("time"))?;
    let key = match obj.get("key") {
        None | Some(Json::Null) => None,
        Some(Json::String(key)) => Some(key.clone()),
        Some(other) => return Err(key_not_a_string(other)),
    };
    let mut fields = Vec::new();
    match obj.get("fields") {
        None => {}
        Some(Json::Object(map)) => {
            for (name, value) in map {
                let value = value_from_json(value).map_err(|e| malformed_field(name, &e))?;
                fields.push((Name::from(name.as_str()), value));
            }
        }
        Some(other) => return Err(fields_not_an_object(other)),
    }
    if let Some(member) = obj.keys().find(|member| !matches!(member.as_str(), "key" | "time" | "fields")) {
        return Err(unknown_member(member));
    }
    Ok(Event { key, time, fields })
}

// What an event's members must be, for both readers of its JSON form: `event_from_json`
// on a parsed document and `EventFromJson` straight from the text.

const NOT_AN_OBJECT: &str = "an event must be a JSON object with \"time\" and \"fields\"";

fn time_from_json(time: Option<&Json>) -> Result<i64, String> {
    const BAD_TIME: &str = "\"time\" must be integer microseconds or RFC 3339 text";
    match time {
        Some(Json::String(s)) => parse_rfc3339(s),
        Some(Json::Number(n)) => n.as_i64().ok_or_else(|| BAD_TIME.to_owned()),
        Some(_) => Err(BAD_TIME.to_owned()),
        None => Err("an event needs \"time\" (RFC 3339 text or integer microseconds)".to_owned()),
    }
}

/// Takes the member's value: `EventFromJson` owns it, so its text is kept, not copied.
fn key_from_json(key: Option<Json>) -> Result<Option<String>, String> {
    match key {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(key_not_a_string(&other)),
    }
}

fn key_not_a_string(other: &Json) -> String {
    format!("\"key\" must be a string, got {other}")
}

fn fields_not_an_object(other: &Json) -> String {
    format!("\"fields\" must be an object, got {other}")
}

fn malformed_field(name: &str, reason: &str) -> String {
    format!("field {name:?}: {reason}")
}

fn unknown_member(member: &str) -> String {
    format!("unknown member {member:?}: an event has \"key\", \"time\" and \"fields\"")
}

/// An event read straight from its JSON form by serde, with the meaning
/// [`event_from_json`] gives the parsed document: same members, same values, the same
/// fault named when there are several, a later member of a repeated name replacing the
/// earlier in its place (a malformed value it replaces is no fault). It builds no
/// JSON tree of the event (an object, a string per name and value) first: only tagged,
/// object and array values pass through one. The lake reads its staged rows back so.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFromJson(pub Event);

impl<'de> serde::Deserialize<'de> for EventFromJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor).map(EventFromJson)
    }
}

struct EventVisitor;

/// A member of an event's object.
enum Member {
    Key,
    Time,
    Fields,
    Unknown(String),
}

impl<'de> serde::Deserialize<'de> for Member {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl serde::de::Visitor<'_> for MemberVisitor {
            type Value = Member;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "key" => Member::Key,
                    "time" => Member::Time,
                    "fields" => Member::Fields,
                    other => Member::Unknown(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(MemberVisitor)
    }
}

impl<'de> serde::de::Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NOT_AN_OBJECT)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        use serde::de::Error;
        // Checked after the whole object, in the order `event_from_json` checks them, so
        // that an event with two faults is refused for the same one.
        let mut time: Option<Json> = None;
        let mut key: Option<Json> = None;
        let mut fields: Option<Result<Vec<(Name, FieldValue)>, Json>> = None;
        let mut unknown: Option<String> = None;
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Time => time = Some(map.next_value::<Json>()?),
                Member::Key => key = Some(map.next_value::<Json>()?),
                Member::Fields => fields = Some(map.next_value::<FieldsFromJson>()?.0),
                Member::Unknown(name) => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    unknown.get_or_insert(name);
                }
            }
        }
        let time = time_from_json(time.as_ref()).map_err(A::Error::custom)?;
        let key = key_from_json(key).map_err(A::Error::custom)?;
        let fields = match fields {
            None => Vec::new(),
            Some(Ok(fields)) => fields
                .into_iter()
                .map(|(name, value)| match value {
                    Ok(value) => Ok((name, value)),
                    Err(e) => Err(A::Error::custom(malformed_field(&name, &e))),
                })
                .collect::<Result<_, _>>()?,
            Some(Err(other)) => return Err(A::Error::custom(fields_not_an_object(&other))),
        };
        if let Some(member) = unknown {
            return Err(A::Error::custom(unknown_member(&member)));
        }
        Ok(Event { key, time, fields })
    }
}

/// A field's value, or why its JSON form is malformed: kept until the whole event is read,
/// since a later field of the same name, or a later `fields`, replaces it.
type FieldValue = Result<Value, String>;

/// `fields`: the fields of an object, or (as `Err`) what else was there.
struct FieldsFromJson(Result<Vec<(Name, FieldValue)>, Json>);

impl<'de> serde::Deserialize<'de> for FieldsFromJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl FieldsVisitor {
    fn other<E>(json: Json) -> Result<FieldsFromJson, E> {
        Ok(FieldsFromJson(Err(json)))
    }
}

impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
    type Value = FieldsFromJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"fields\": an object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FieldsFromJson, A::Error> {
        let mut fields: Vec<(Name, FieldValue)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(name) = map.next_key::<NameFromJson>()? {
            let value = match map.next_value::<ValueFromJson>()? {
                ValueFromJson::Plain(value) => Ok(value),
                ValueFromJson::Document(json) => value_from_json(&json),
            };
            fields.push((name.0, value));
        }
        if has_a_name_twice(&fields) {
            // As a JSON object holds it: the later value in the earlier one's place.
            let mut first_at = std::collections::HashMap::with_capacity(fields.len());
            let mut kept: Vec<(Name, FieldValue)> = Vec::with_capacity(fields.len());
            for (name, value) in fields {
                match first_at.get(&name) {
                    Some(&at) => kept[at] = (name, value),
                    None => {
                        first_at.insert(name.clone(), kept.len());
                        kept.push((name, value));
                    }
                }
            }
            fields = kept;
        }
        Ok(FieldsFromJson(Ok(fields)))
    }

    fn visit_unit<E>(self) -> Result<FieldsFromJson, E> {
        Self::other(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<FieldsFromJson, E> {
        Self::other(Json::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<FieldsFromJson, E> {
        Self::other(Json::from(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<FieldsFromJson, E> {
        Self::other(Json::from(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<FieldsFromJson, E> {
        Self::other(Json::from(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<FieldsFromJson, E> {
        Self::other(Json::from(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<FieldsFromJson, A::Error> {
        use serde::Deserialize;
        Json::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).and_then(Self::other)
    }
}

/// A field's name.
struct NameFromJson(Name);

impl<'de> serde::Deserialize<'de> for NameFromJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = NameFromJson;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<NameFromJson, E> {
                Ok(NameFromJson(Name::from(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A field's value: JSON's own scalars as they are, objects and arrays as a document for
/// [`value_from_json`] (tags, `json` values).
enum ValueFromJson {
    Plain(Value),
    Document(Json),
}

impl<'de> serde::Deserialize<'de> for ValueFromJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = ValueFromJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<ValueFromJson, E> {
        Ok(ValueFromJson::Plain(Value::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<ValueFromJson, E> {
        Ok(ValueFromJson::Plain(Value::Bool(b)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<ValueFromJson, E> {
        Ok(ValueFromJson::Plain(Value::Int(i)))
    }
    fn visit_u64<E>(self, u: u64) -> Result<ValueFromJson, E> {
        // As `value_from_json` reads a number: an integer when it fits in an `i64`.
        Ok(ValueFromJson::Plain(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<ValueFromJson, E> {
        Ok(ValueFromJson::Plain(Value::Float(f)))
    }
    fn visit_str<E>(self, s: &str) -> Result<ValueFromJson, E> {
        Ok(ValueFromJson::Plain(Value::Text(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<ValueFromJson, E> {
        Ok(ValueFromJson::Plain(Value::Text(s)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ValueFromJson, A::Error> {
        use serde::Deserialize;
        Json::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ValueFromJson::Document)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<ValueFromJson, A::Error> {
        use serde::Deserialize;
        Json::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(ValueFromJson::Document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind and the tricky forms, for comparing the two ways of writing JSON.
    fn all_kinds() -> Event {
        Event::new(1_764_150_900_000_123)
            .with_key("r-\"7\"")
            .with("s", "x\n\u{1}é")
            .with("i", -3i64)
            .with("f", 2.0)
            .with("small", 1e-7)
            .with("big", 1.5e300)
            .with("nan", f64::NAN)
            .with("inf", f64::NEG_INFINITY)
            .with("b", true)
            .with("n", Value::Null)
            .with("t", Value::Timestamp(-5))
            .with("raw", vec![0u8, 15, 255])
            .with("empty_raw", Vec::<u8>::new())
            .with("doc", Value::Json("{\"a\":[1,2]}".into()))
            .with("tag_like", Value::Json(r#"{"$bytes":"00ff"}"#.into()))
            .with("scalar_doc", Value::Json("\"just text\"".into()))
            .with("broken_doc", Value::Json("{".into()))
            .with("with \"quotes\"", "v")
    }

    #[test]
    fn writing_an_event_straight_gives_the_bytes_of_its_json_value() {
        let mut keyless = all_kinds();
        keyless.key = None;
        let mut twice = all_kinds();
        twice.fields.push((Name::from("s"), Value::Int(9)));
        let mut wide = Event::new(0);
        wide.fields = (0..100).map(|i| (Name::from(format!("f{i}").as_str()), Value::Int(i))).collect();
        let mut wide_twice = wide.clone();
        wide_twice.fields.push((Name::from("f50"), Value::Text("later".into())));
        for event in [all_kinds(), keyless, twice, Event::new(0), wide, wide_twice] {
            let straight = serde_json::to_string(&EventJson(&event)).unwrap();
            assert_eq!(straight, event_to_json(&event).to_string());
            assert_eq!(serde_json::to_value(EventJson(&event)).unwrap(), event_to_json(&event));
        }
    }

    #[test]
    fn a_name_twice_is_found_in_small_and_large_events() {
        let field = |name: &str| (Name::from(name), Value::Null);
        assert!(!has_a_name_twice(&[field("a"), field("b")]));
        assert!(has_a_name_twice(&[field("a"), field("b"), field("a")]));
        let mut wide: Vec<(Name, Value)> = (0..1000).map(|i| field(&format!("f{i}"))).collect();
        assert!(!has_a_name_twice(&wide));
        wide.push(field("f999"));
        assert!(has_a_name_twice(&wide));
    }

    #[test]
    fn every_kind_survives_the_json_form() {
        let event = Event::new(1_764_150_900_000_000)
            .with_key("r-7")
            .with("s", "x")
            .with("i", 3i64)
            .with("f", 2.0)
            .with("b", true)
            .with("n", Value::Null)
            .with("t", Value::Timestamp(5))
            .with("raw", vec![0u8, 255])
            .with("doc", Value::Json("{\"a\":[1,2]}".into()))
            .with("scalar_doc", Value::Json("\"just text\"".into()));
        let json = event_to_json(&event);
        assert_eq!(json["fields"]["f"].to_string(), "2.0", "floats stay floats");
        assert_eq!(event_from_json(&json).unwrap(), event);
    }

    #[test]
    fn json_documents_that_look_like_tags_and_floats_json_cannot_hold_read_back_as_themselves() {
        let values = [
            Value::Json(r#"{"$timestamp":"2026-11-26T10:15:00Z"}"#.into()),
            Value::Json(r#"{"$bytes":"00ff"}"#.into()),
            Value::Json(r#"{"$json":1}"#.into()),
            Value::Json(r#"{"$anything":[1]}"#.into()),
            Value::Json(r#"{"$a":1,"b":2}"#.into()),
            Value::Json("null".into()),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Text("NaN".into()),
            Value::Text("inf".into()),
        ];
        for value in values {
            let json = value_to_json(&value);
            assert_eq!(value_from_json(&json).unwrap(), value, "{json}");
        }
        let nan = value_from_json(&value_to_json(&Value::Float(f64::NAN))).unwrap();
        assert!(matches!(nan, Value::Float(f) if f.is_nan()), "{nan:?}");
        assert_eq!(
            value_to_json(&Value::Json(r#"{"$bytes":"00ff"}"#.into())).to_string(),
            r#"{"$json":{"$bytes":"00ff"}}"#
        );
    }

    #[test]
    fn only_integers_json_readers_hold_exactly_and_written_one_way_are_numbers() {
        for (digits, expected) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("49680801", Some(49_680_801)),
            ("9007199254740991", Some((1 << 53) - 1)),
            ("9007199254740992", None),
            ("18446744073709551615", None),
            ("49680801738081993286402170233128270001134048787136774146", None),
            ("007", None),
            ("00", None),
            ("+7", None),
            ("-7", None),
            (" 7", None),
            ("7.0", None),
            ("", None),
            ("shardId-000000000000", None),
        ] {
            assert_eq!(exact_integer(digits), expected, "{digits:?}");
            let json = id_to_json(digits);
            match expected {
                Some(n) => assert_eq!(json, Json::from(n)),
                None => assert_eq!(json, Json::from(digits)),
            }
            let written = serialize_id(digits, serde_json::value::Serializer).unwrap();
            assert_eq!(written, json, "{digits:?}");
        }
    }

    /// Both readers of one text: the tree-free one and `event_from_json` on the tree.
    fn read_both_ways(text: &str) -> (Result<Event, String>, Result<Event, String>) {
        let straight = serde_json::from_str::<EventFromJson>(text).map(|e| e.0).map_err(|e| e.to_string());
        let via_tree = serde_json::from_str::<Json>(text).map_err(|e| e.to_string()).and_then(|j| event_from_json(&j));
        (straight, via_tree)
    }

    #[test]
    fn an_event_read_without_a_tree_is_the_event_read_through_one() {
        let mut keyless = all_kinds();
        keyless.key = None;
        let mut wide = Event::new(0);
        wide.fields = (0..100).map(|i| (Name::from(format!("f{i}").as_str()), Value::Int(i))).collect();
        let written: Vec<String> = [all_kinds(), keyless, Event::new(-1), wide]
            .iter()
            .map(|event| serde_json::to_string(&EventJson(event)).unwrap())
            .collect();
        let by_hand = [
            // Integer times, a null key, members in any order, numbers at the edges.
            r#"{"fields":{"a":1},"key":null,"time":1764150900000000}"#,
            r#"{"time":"2026-11-26T10:15:00.5+01:00","fields":{"max":9223372036854775807,"over":9223372036854775808,"neg":-9223372036854775808,"e":1e3,"z":-0,"zf":-0.0}}"#,
            // No fields at all; escapes in names and values.
            r#"{"time":0}"#,
            r#"{"time":0,"fields":{"na\u006de":"v\u00e9\n","\"q\"":"\\"}}"#,
            // Objects and arrays: tags, documents, nested documents.
            r#"{"time":0,"fields":{"t":{"$timestamp":5},"d":{"a":{"b":[1,{"c":null}]}},"l":[],"o":{},"j":{"$json":"x"},"two":{"$a":1,"b":2}}}"#,
            // A name twice: the later value in the earlier one's place; a member twice.
            r#"{"time":0,"fields":{"a":1,"b":2,"a":"later"}}"#,
            r#"{"time":0,"time":5,"key":"k","key":"k2","fields":{"a":1}}"#,
            // A malformed value that a later one of its name, or a later `fields`, replaces.
            r#"{"time":0,"fields":{"x":{"$bytes":"zz"},"x":1}}"#,
            r#"{"time":0,"fields":{"x":{"$bytes":"zz"}},"fields":{}}"#,
        ];
        for text in written.iter().map(String::as_str).chain(by_hand) {
            let (straight, via_tree) = read_both_ways(text);
            assert!(via_tree.is_ok(), "{text}: {via_tree:?}");
            // NaN is not equal to itself: compare the events' JSON forms.
            let shown = |e: &Event| serde_json::to_string(&EventJson(e)).unwrap();
            assert_eq!(straight.as_ref().map(shown), via_tree.as_ref().map(shown), "{text}");
        }
        let (straight, _) = read_both_ways(r#"{"time":0,"fields":{"a":1,"b":2,"a":"later"}}"#);
        let names: Vec<&str> = straight.as_ref().unwrap().fields.iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(straight.unwrap().get("a"), Some(&Value::Text("later".into())));
    }

    #[test]
    fn an_event_read_without_a_tree_is_refused_for_what_event_from_json_refuses() {
        for (text, reason) in [
            (r#"[1]"#, "JSON object"),
            (r#""text""#, "JSON object"),
            (r#"{"fields":{}}"#, "needs \"time\""),
            (r#"{"time":"soon","fields":{}}"#, "RFC 3339"),
            (r#"{"time":1.5}"#, "integer microseconds"),
            (r#"{"time":18446744073709551615}"#, "integer microseconds"),
            (r#"{"time":[0]}"#, "integer microseconds"),
            (r#"{"time":0,"key":7}"#, "\"key\" must be a string"),
            (r#"{"time":0,"fields":[1]}"#, "\"fields\" must be an object"),
            (r#"{"time":0,"fields":"x"}"#, "\"fields\" must be an object"),
            (r#"{"time":0,"fields":{"x":{"$bytes":"zz"}}}"#, "field \"x\""),
            (r#"{"time":0,"fields":{"x":{"$timestamp":true}}}"#, "field \"x\""),
            (r#"{"time":0,"feilds":{}}"#, "feilds"),
            (r#"{"time":0,"fields":{"a":1}"#, "EOF"),
            // Two faults: refused for the one `event_from_json` checks first.
            (r#"{"time":"soon","fields":{"x":{"$bytes":"zz"}}}"#, "RFC 3339"),
            (r#"{"fields":{"x":{"$bytes":"zz"}},"time":0,"key":7}"#, "\"key\" must be a string"),
        ] {
            let (straight, via_tree) = read_both_ways(text);
            let straight = straight.expect_err(text);
            assert!(via_tree.is_err(), "{text}");
            assert!(straight.contains(reason), "{text}: {straight}");
        }
    }

    #[test]
    fn a_malformed_event_names_what_is_wrong() {
        let json: Json = serde_json::from_str(r#"{"time":"soon","fields":{}}"#).unwrap();
        assert!(event_from_json(&json).unwrap_err().contains("RFC 3339"));
        let json: Json = serde_json::from_str(r#"{"time":0,"fields":{"x":{"$bytes":"zz"}}}"#).unwrap();
        assert!(event_from_json(&json).unwrap_err().contains("field \"x\""));
        let json: Json = serde_json::from_str(r#"{"time":0,"feilds":{}}"#).unwrap();
        assert!(event_from_json(&json).unwrap_err().contains("feilds"));
    }

    #[test]
    fn a_key_is_text_or_null_and_anything_else_is_refused_naming_it() {
        let key_of = |text: &str| event_from_json(&serde_json::from_str(text).unwrap()).map(|event| event.key);
        assert_eq!(key_of(r#"{"time":0,"key":"r-1"}"#), Ok(Some("r-1".to_owned())));
        assert_eq!(key_of(r#"{"time":0,"key":null}"#), Ok(None));
        assert_eq!(key_of(r#"{"time":0}"#), Ok(None));
        assert_eq!(key_of(r#"{"time":0,"key":{"id":7}}"#), Err(r#""key" must be a string, got {"id":7}"#.to_owned()));
        let (straight, _) = read_both_ways(r#"{"time":0,"key":{"id":7}}"#);
        let straight = straight.unwrap_err();
        assert!(straight.starts_with(r#""key" must be a string, got {"id":7}"#), "without a tree: {straight}");
    }
}
