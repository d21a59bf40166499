use std::collections::HashMap;
use std::fmt;

use crate::event::{Event, Name, Value, ValueKind};

/// The flattened batch that crosses the Wasm boundary: the Rust mirror of the WIT record
/// `weir:plugin/types.event-batch`, field for field (the WIT file documents the layout).
///
/// The host and the guest each have a generated record with the same fields, in which the
/// number columns are packed little-endian (`list<u8>`); converting between it and
/// `Columns` moves the text buffers and copies the number columns once
/// ([`event_batch_conversions!`](crate::event_batch_conversions)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    pub names: Vec<String>,
    pub key_text: Vec<u8>,
    pub key_ends: Vec<u32>,
    pub times: Vec<i64>,
    pub field_counts: Vec<u32>,
    pub field_ids: Vec<u32>,
    pub kinds: Vec<u8>,
    pub scalars: Vec<i64>,
    pub text: Vec<u8>,
    pub text_ends: Vec<u32>,
}

/// Why a batch's lists do not describe a valid set of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError(pub String);

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed event batch: {}", self.0)
    }
}

impl std::error::Error for BatchError {}

fn bad(msg: impl Into<String>) -> BatchError {
    BatchError(msg.into())
}

fn slice(buf: &[u8], start: u32, end: u32) -> &[u8] {
    &buf[start as usize..end as usize]
}

impl Columns {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Encodes events into a batch.
    pub fn encode<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut builder = ColumnsBuilder::default();
        for event in events {
            builder.push(event);
        }
        builder.finish()
    }

    /// Checks that every list agrees with the others: lengths, offsets in order and in
    /// bounds, field ids and kinds known, text and keys valid UTF-8, no field twice in
    /// one event. The host runs this on every batch a plugin returns.
    ///
    /// # Errors
    /// A [`BatchError`] saying which list is inconsistent, and where.
    pub fn validate(&self) -> Result<(), BatchError> {
        self.check_structure()?;
        if std::str::from_utf8(&self.key_text).is_err() {
            return Err(bad("event keys are not valid UTF-8"));
        }
        if let Some(name) = self.names.iter().find(|name| name.len() > MAX_FIELD_NAME_BYTES) {
            let shown: String = name.chars().take(40).collect();
            return Err(bad(format!("field name {shown:?}… is {} bytes; at most {MAX_FIELD_NAME_BYTES}", name.len())));
        }
        if let Some((e, &time)) =
            self.times.iter().enumerate().find(|(_, t)| !(MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(*t))
        {
            return Err(bad(format!(
                "event {e} has time {time} µs, outside years 0001 to 9999 (what RFC 3339 and the sinks can write); check its unit"
            )));
        }
        let mut distinct = std::collections::HashSet::with_capacity(self.names.len());
        if let Some(name) = self.names.iter().find(|name| !distinct.insert(name.as_str())) {
            return Err(bad(format!("field name {name:?} is listed twice in the batch's names")));
        }
        let mut start = 0u32;
        for (v, (&kind, &end)) in self.kinds.iter().zip(&self.text_ends).enumerate() {
            if kind == ValueKind::Text as u8 || kind == ValueKind::Json as u8 {
                let Ok(text) = std::str::from_utf8(slice(&self.text, start, end)) else {
                    return Err(bad(format!(
                        "value {v} ({}) is not valid UTF-8",
                        ValueKind::from_tag(kind).map_or("?", ValueKind::as_str)
                    )));
                };
                // A json value must be one JSON document, nested at most 128 deep: sinks
                // and readers parse it, some recursively.
                if kind == ValueKind::Json as u8 {
                    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                        return Err(bad(format!("value {v} (json) is not valid JSON: {e}")));
                    }
                    if !json_nesting_within(text, MAX_JSON_DEPTH) {
                        return Err(bad(format!("value {v} (json) nests deeper than {MAX_JSON_DEPTH} levels")));
                    }
                }
            }
            start = end;
        }
        // Which event last used each name: a field twice in one event is found in one pass
        // over the values, however many fields an event has.
        let mut last_event_of = vec![usize::MAX; self.names.len()];
        let mut value = 0usize;
        for (e, &count) in self.field_counts.iter().enumerate() {
            for &id in &self.field_ids[value..value + count as usize] {
                if std::mem::replace(&mut last_event_of[id as usize], e) == e {
                    return Err(bad(format!("event {e} has field {:?} twice", self.names[id as usize])));
                }
            }
            value += count as usize;
        }
        Ok(())
    }

    /// The checks that make decoding safe: lengths, offsets, field ids and kinds.
    fn check_structure(&self) -> Result<(), BatchError> {
        let events = self.times.len();
        if self.key_ends.len() != events || self.field_counts.len() != events {
            return Err(bad(format!(
                "{events} event times but {} key ends and {} field counts",
                self.key_ends.len(),
                self.field_counts.len()
            )));
        }
        let values: u64 = self.field_counts.iter().map(|&c| u64::from(c)).sum();
        let values_len = self.field_ids.len();
        if values != values_len as u64
            || self.kinds.len() != values_len
            || self.scalars.len() != values_len
            || self.text_ends.len() != values_len
        {
            return Err(bad(format!(
                "field counts add up to {values} values but there are {} field ids, {} kinds, {} scalars and {} text ends",
                values_len,
                self.kinds.len(),
                self.scalars.len(),
                self.text_ends.len()
            )));
        }
        check_offsets("key", &self.key_ends, self.key_text.len())?;
        check_offsets("text", &self.text_ends, self.text.len())?;
        let names = self.names.len() as u32;
        if let Some(v) = self.field_ids.iter().position(|&id| id >= names) {
            return Err(bad(format!("value {v} names field {} but only {names} names were sent", self.field_ids[v])));
        }
        let mut start = 0u32;
        for (v, (&kind, &end)) in self.kinds.iter().zip(&self.text_ends).enumerate() {
            let kind = ValueKind::from_tag(kind).ok_or_else(|| bad(format!("value {v} has unknown kind {kind}")))?;
            if !kind.uses_text() && end != start {
                return Err(bad(format!("value {v} is {kind} but has text")));
            }
            start = end;
        }
        Ok(())
    }

    /// Decodes the batch into owned events, checking it on the way: one pass over the
    /// values, each text validated once as it is copied out. (Fields repeated within an
    /// event are not looked for here; [`Columns::validate`] does that.)
    ///
    /// # Errors
    /// A [`BatchError`] when the batch is inconsistent.
    pub fn decode(&self) -> Result<Vec<Event>, BatchError> {
        let mut decoder = self.decoder()?;
        let mut events = Vec::with_capacity(self.len());
        while let Some(event) = decoder.next_event() {
            events.push(event?);
        }
        Ok(events)
    }

    /// A decoder handing out the batch's events one at a time, into buffers of events
    /// given back with [`EventDecoder::recycle`]: the plugin drivers' way of reading a
    /// batch without allocating a string per text value and a field list per event.
    ///
    /// # Errors
    /// A [`BatchError`] when the lists' lengths, offsets, field ids or kinds disagree
    /// (text that is not UTF-8 is found by [`EventDecoder::next_event`]).
    pub fn decoder(&self) -> Result<EventDecoder<'_>, BatchError> {
        self.check_structure()?;
        Ok(EventDecoder {
            columns: self,
            names: self.names.iter().map(|n| Name::from(n.as_str())).collect(),
            // Checking a whole buffer at once is much cheaper than value by value; when it
            // passes, a value is valid if it starts and ends on character boundaries,
            // which slicing the checked `str` verifies. A buffer holding invalid UTF-8
            // (a `bytes` value, or a malformed batch) is checked value by value instead.
            key_text: std::str::from_utf8(&self.key_text).ok(),
            text: std::str::from_utf8(&self.text).ok(),
            event: 0,
            value: 0,
            key_start: 0,
            text_start: 0,
            spare_text: Vec::new(),
            spare_fields: Vec::new(),
        })
    }
    /// Total payload bytes (keys and text), used by the host's output-size limit.
    pub fn payload_bytes(&self) -> usize {
        let names: usize = self.names.iter().map(|name| name.len()).sum();
        self.key_text.len() + self.text.len() + self.scalars.len() * 8 + names
    }

    /// How many distinct field names the batch uses.
    pub fn field_names(&self) -> usize {
        self.names.len()
    }
}

fn check_offsets(what: &str, ends: &[u32], buf_len: usize) -> Result<(), BatchError> {
    let mut prev = 0u32;
    for (i, &end) in ends.iter().enumerate() {
        if end < prev {
            return Err(bad(format!("{what} offset {i} ({end}) goes backwards from {prev}")));
        }
        prev = end;
    }
    if prev as usize != buf_len {
        return Err(bad(format!("{what} offsets end at {prev} but the {what} buffer has {buf_len} bytes")));
    }
    Ok(())
}

/// Hands out a batch's events one at a time (see [`Columns::decoder`]). The strings and
/// field lists of events given back through [`EventDecoder::recycle`] are reused for the
/// next events, so that a driver decoding, calling the plugin and encoding event by event
/// allocates almost nothing per event once it has warmed up.
#[derive(Debug)]
pub struct EventDecoder<'a> {
    columns: &'a Columns,
    names: Vec<Name>,
    key_text: Option<&'a str>,
    text: Option<&'a str>,
    event: usize,
    value: usize,
    key_start: u32,
    text_start: u32,
    spare_text: Vec<String>,
    spare_fields: Vec<Vec<(Name, Value)>>,
}

/// How many strings and field lists a decoder keeps for reuse: enough for the text values
/// of a few events, bounded however many strings a plugin hands back.
const SPARE_TEXT: usize = 256;
const SPARE_FIELD_LISTS: usize = 4;

impl EventDecoder<'_> {
    /// The next event, `None` after the last.
    ///
    /// # Errors
    /// A [`BatchError`] when its key or one of its text values is not valid UTF-8.
    pub fn next_event(&mut self) -> Option<Result<Event, BatchError>> {
        let c = self.columns;
        let e = self.event;
        if e >= c.len() {
            return None;
        }
        self.event += 1;
        let key_end = c.key_ends[e];
        let key = match key_end > self.key_start {
            true => match self.text_of(Buffer::Key, self.key_start, key_end) {
                Ok(key) => Some(key),
                Err(()) => return Some(Err(bad(format!("the key of event {e} is not valid UTF-8")))),
            },
            false => None,
        };
        self.key_start = key_end;
        let count = c.field_counts[e] as usize;
        let mut fields = self.spare_fields.pop().unwrap_or_default();
        fields.reserve(count);
        for v in self.value..self.value + count {
            let (start, end) = (self.text_start, c.text_ends[v]);
            self.text_start = end;
            let scalar = c.scalars[v];
            let value = match ValueKind::from_tag(c.kinds[v]) {
                Some(ValueKind::Null) | None => Value::Null,
                Some(ValueKind::Bool) => Value::Bool(scalar != 0),
                Some(ValueKind::Int) => Value::Int(scalar),
                Some(ValueKind::Float) => Value::Float(f64::from_bits(scalar as u64)),
                Some(ValueKind::Timestamp) => Value::Timestamp(scalar),
                Some(kind @ (ValueKind::Text | ValueKind::Json)) => match self.text_of(Buffer::Text, start, end) {
                    Ok(text) if kind == ValueKind::Text => Value::Text(text),
                    Ok(text) => Value::Json(text),
                    Err(()) => return Some(Err(bad(format!("value {v} is not valid UTF-8")))),
                },
                Some(ValueKind::Bytes) => Value::Bytes(slice(&c.text, start, end).to_vec()),
            };
            fields.push((self.names[c.field_ids[v] as usize].clone(), value));
        }
        self.value += count;
        Some(Ok(Event { key, time: c.times[e], fields }))
    }

    /// Takes back an event (one decoded here, or any other) so that its key, text values
    /// and field list hold the next events' data.
    pub fn recycle(&mut self, event: Event) {
        let Event { key, fields, .. } = event;
        let mut keep = |text: String| {
            if self.spare_text.len() < SPARE_TEXT {
                self.spare_text.push(text);
            }
        };
        if let Some(key) = key {
            keep(key);
        }
        let mut fields = fields;
        for (_, value) in fields.drain(..) {
            if let Value::Text(text) | Value::Json(text) = value {
                keep(text);
            }
        }
        if self.spare_fields.len() < SPARE_FIELD_LISTS {
            self.spare_fields.push(fields);
        }
    }

    /// The text between `start` and `end` of the key or text buffer, in a reused string;
    /// `Err` when it is not UTF-8.
    fn text_of(&mut self, buffer: Buffer, start: u32, end: u32) -> Result<String, ()> {
        let (checked, bytes) = match buffer {
            Buffer::Key => (self.key_text, &self.columns.key_text),
            Buffer::Text => (self.text, &self.columns.text),
        };
        let text = match checked.and_then(|all| all.get(start as usize..end as usize)) {
            Some(text) => text,
            None => std::str::from_utf8(slice(bytes, start, end)).map_err(|_| ())?,
        };
        let mut owned = self.spare_text.pop().unwrap_or_default();
        owned.clear();
        owned.push_str(text);
        Ok(owned)
    }
}

#[derive(Clone, Copy)]
enum Buffer {
    Key,
    Text,
}

/// The deepest nesting of arrays and objects a `json` value may have.
pub const MAX_JSON_DEPTH: usize = 128;

/// The longest field name, in bytes: a column name in Parquet, DuckDB and the warehouse.
pub const MAX_FIELD_NAME_BYTES: usize = 256;

/// The earliest event time, 0001-01-01T00:00:00Z in µs since the Unix epoch: RFC 3339
/// (the sinks' and the NDJSON form's) has four-digit years.
pub const MIN_EVENT_TIME: i64 = -62_135_596_800_000_000;

/// The latest event time, 9999-12-31T23:59:59.999999Z in µs since the Unix epoch.
pub const MAX_EVENT_TIME: i64 = 253_402_300_799_999_999;

/// Whether the arrays and objects of the JSON text `text` nest at most `limit` deep: one
/// pass over the bytes, brackets inside strings not counted.
fn json_nesting_within(text: &str, limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Writes events into a [`Columns`] batch, interning field names.
#[derive(Debug, Default)]
pub struct ColumnsBuilder {
    columns: Columns,
    name_ids: HashMap<Name, u32>,
    /// Field ids of the previous event, position by position: consecutive events usually
    /// have the same fields in the same order, so a pointer or string comparison finds
    /// the id without hashing.
    previous: Vec<(Name, u32)>,
}

impl ColumnsBuilder {
    /// A builder with room for a batch the size of `like`: an enricher's output is about
    /// its input, and growing the lists as it is written copies them several times.
    pub fn with_capacity_like(like: &Columns) -> Self {
        let values = like.field_ids.len();
        let columns = Columns {
            names: Vec::with_capacity(like.names.len()),
            key_text: Vec::with_capacity(like.key_text.len()),
            key_ends: Vec::with_capacity(like.len()),
            times: Vec::with_capacity(like.len()),
            field_counts: Vec::with_capacity(like.len()),
            field_ids: Vec::with_capacity(values),
            kinds: Vec::with_capacity(values),
            scalars: Vec::with_capacity(values),
            text: Vec::with_capacity(like.text.len()),
            text_ends: Vec::with_capacity(values),
        };
        Self { columns, ..Self::default() }
    }

    /// Appends one event.
    pub fn push(&mut self, event: &Event) {
        let c = &mut self.columns;
        if let Some(key) = &event.key {
            c.key_text.extend_from_slice(key.as_bytes());
        }
        c.key_ends.push(c.key_text.len() as u32);
        c.times.push(event.time);
        c.field_counts.push(event.fields.len() as u32);
        for (position, (name, value)) in event.fields.iter().enumerate() {
            let id = match self.previous.get(position) {
                Some((prev, id)) if std::sync::Arc::ptr_eq(prev, name) || prev == name => *id,
                _ => {
                    let next = self.name_ids.len() as u32;
                    let id = *self.name_ids.entry(name.clone()).or_insert_with(|| {
                        c.names.push(name.to_string());
                        next
                    });
                    if position < self.previous.len() {
                        self.previous[position] = (name.clone(), id);
                    } else {
                        self.previous.push((name.clone(), id));
                    }
                    id
                }
            };
            c.field_ids.push(id);
            c.kinds.push(value.kind() as u8);
            let scalar = match value {
                Value::Null | Value::Text(_) | Value::Bytes(_) | Value::Json(_) => 0,
                Value::Bool(b) => i64::from(*b),
                Value::Int(i) | Value::Timestamp(i) => *i,
                Value::Float(f) => f.to_bits() as i64,
            };
            c.scalars.push(scalar);
            match value {
                Value::Text(s) | Value::Json(s) => c.text.extend_from_slice(s.as_bytes()),
                Value::Bytes(b) => c.text.extend_from_slice(b),
                _ => {}
            }
            c.text_ends.push(c.text.len() as u32);
        }
    }

    /// Number of events pushed so far.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The finished batch.
    pub fn finish(self) -> Columns {
        self.columns
    }
}

// How `weir:plugin@0.3.0` carries the number columns of an `event-batch`: one
// little-endian word per element in a `list<u8>`, which every language's bindings copy in
// one piece. Plain functions, not generic ones, so that they are compiled (optimised)
// here rather than in each crate that invokes `event_batch_conversions!`.

/// A `u32` column as the WIT carries it.
pub fn pack_u32(words: &[u32]) -> Vec<u8> {
    pack(words, u32::to_le_bytes)
}

/// An `s64` column as the WIT carries it.
pub fn pack_i64(words: &[i64]) -> Vec<u8> {
    pack(words, i64::to_le_bytes)
}

/// A packed `u32` column back as numbers.
///
/// # Errors
/// A [`BatchError`] naming the column when its length is not a whole number of elements.
pub fn unpack_u32(column: &str, bytes: &[u8]) -> Result<Vec<u32>, BatchError> {
    unpack(column, "u32", bytes, u32::from_le_bytes)
}

/// A packed `s64` column back as numbers.
///
/// # Errors
/// A [`BatchError`] naming the column when its length is not a whole number of elements.
pub fn unpack_i64(column: &str, bytes: &[u8]) -> Result<Vec<i64>, BatchError> {
    unpack(column, "s64", bytes, i64::from_le_bytes)
}

fn pack<W: Copy, const N: usize>(words: &[W], to_le: impl Fn(W) -> [u8; N]) -> Vec<u8> {
    // Into a zeroed buffer of fixed-size chunks: no capacity check per element, so the
    // loop compiles to a plain copy on little-endian targets.
    let mut out = vec![0; words.len() * N];
    for (chunk, &word) in out.as_chunks_mut::<N>().0.iter_mut().zip(words) {
        *chunk = to_le(word);
    }
    out
}

fn unpack<W, const N: usize>(
    column: &str,
    wit: &str,
    bytes: &[u8],
    from_le: impl Fn([u8; N]) -> W,
) -> Result<Vec<W>, BatchError> {
    let (words, rest) = bytes.as_chunks::<N>();
    if !rest.is_empty() {
        let len = bytes.len();
        return Err(bad(format!("{column} has {len} bytes, not a whole number of packed {wit} ({N} bytes each)")));
    }
    Ok(words.iter().map(|&w| from_le(w)).collect())
}

/// Writes the conversions between [`Columns`] and a WIT-generated `event-batch` record
/// (the host's wasmtime bindings, a guest's wit-bindgen bindings), so that its fields and
/// their packing are listed in one place: `From<Columns>` for the batch (packs the number
/// columns) and `TryFrom<batch>` for `Columns` (a column of the wrong length is a
/// [`BatchError`] naming it). The generated type must be local to the crate that invokes
/// the macro.
#[macro_export]
macro_rules! event_batch_conversions {
    ($batch:ty) => {
        impl ::core::convert::From<$crate::Columns> for $batch {
            fn from(c: $crate::Columns) -> Self {
                Self {
                    key_ends: $crate::pack_u32(&c.key_ends),
                    times: $crate::pack_i64(&c.times),
                    field_counts: $crate::pack_u32(&c.field_counts),
                    field_ids: $crate::pack_u32(&c.field_ids),
                    scalars: $crate::pack_i64(&c.scalars),
                    text_ends: $crate::pack_u32(&c.text_ends),
                    names: c.names,
                    key_text: c.key_text,
                    kinds: c.kinds,
                    text: c.text,
                }
            }
        }
        impl ::core::convert::TryFrom<$batch> for $crate::Columns {
            type Error = $crate::BatchError;
            fn try_from(b: $batch) -> ::core::result::Result<Self, $crate::BatchError> {
                ::core::result::Result::Ok(Self {
                    key_ends: $crate::unpack_u32("key-ends", &b.key_ends)?,
                    times: $crate::unpack_i64("times", &b.times)?,
                    field_counts: $crate::unpack_u32("field-counts", &b.field_counts)?,
                    field_ids: $crate::unpack_u32("field-ids", &b.field_ids)?,
                    scalars: $crate::unpack_i64("scalars", &b.scalars)?,
                    text_ends: $crate::unpack_u32("text-ends", &b.text_ends)?,
                    names: b.names,
                    key_text: b.key_text,
                    kinds: b.kinds,
                    text: b.text,
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_columns_are_packed_little_endian_and_back() {
        let words = [0u32, 1, 0x0102_0304, u32::MAX];
        let packed = pack_u32(&words);
        assert_eq!(&packed[8..12], &[4, 3, 2, 1]);
        assert_eq!(unpack_u32("field-ids", &packed), Ok(words.to_vec()));
        let times = [i64::MIN, -1, 0, 1_700_000_000_000_000, i64::MAX];
        assert_eq!(unpack_i64("times", &pack_i64(&times)), Ok(times.to_vec()));
        assert_eq!(&pack_i64(&[-2])[..], &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn a_packed_column_cut_inside_an_element_is_refused_by_name() {
        assert_eq!(
            unpack_u32("text-ends", &[1, 0, 0, 0, 2]),
            Err(bad("text-ends has 5 bytes, not a whole number of packed u32 (4 bytes each)"))
        );
        assert_eq!(
            unpack_i64("scalars", &[0; 12]),
            Err(bad("scalars has 12 bytes, not a whole number of packed s64 (8 bytes each)"))
        );
    }

    fn sample() -> Vec<Event> {
        vec![
            Event::new(1_000)
                .with_key("r1")
                .with("order_id", "o-1")
                .with("total", 23.5)
                .with("items", 3i64)
                .with("test", false)
                .with("raw", vec![0u8, 255])
                .with("nested", Value::Json("{\"a\":[1,2]}".into()))
                .with("placed_at", Value::Timestamp(-5))
                .with("note", Value::Null),
            Event::new(2_000).with("total", 1.0).with("order_id", "o-2"),
            Event::new(3_000),
            Event::new(4_000).with_key("r2").with("city", "São Paulo"),
        ]
    }

    #[test]
    fn a_field_twice_in_one_large_event_is_found() {
        let mut columns = Columns::encode(&[Event::new(0)]);
        columns.names = (0..100_000).map(|i| format!("f{i}")).collect();
        columns.field_ids = (0..100_000).chain([99_999]).collect();
        columns.field_counts = vec![100_001];
        columns.kinds = vec![ValueKind::Int as u8; 100_001];
        columns.scalars = vec![0; 100_001];
        columns.text_ends = vec![0; 100_001];
        assert_eq!(columns.validate(), Err(bad("event 0 has field \"f99999\" twice")));
        columns.field_ids[100_000] = 5;
        columns.field_counts = vec![100_000, 1];
        columns.times = vec![0, 0];
        columns.key_ends = vec![0, 0];
        assert_eq!(columns.validate(), Ok(()), "the same field in two events is fine");
    }

    #[test]
    fn a_name_listed_twice_and_json_that_does_not_parse_are_refused() {
        let mut columns = Columns::encode(&[Event::new(0).with("a", 1i64).with("b", 2i64)]);
        columns.names[1] = "a".into();
        assert!(columns.validate().unwrap_err().0.contains("\"a\" is listed twice"));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deepest = format!("{}{}", "[".repeat(128), "]".repeat(128));
        let brackets_in_text = format!("[\"{}\\\"\"]", "[".repeat(300));
        for (json, ok) in [
            ("{\"a\":[1,2]}", true),
            ("{\"a\":", false),
            ("1 2", false),
            (&*deep, false),
            (&*deepest, true),
            (&*brackets_in_text, true),
        ] {
            let columns = Columns::encode(&[Event::new(0).with("j", Value::Json(json.into()))]);
            assert_eq!(columns.validate().is_ok(), ok, "{json}");
        }
    }

    #[test]
    fn overlong_field_names_and_times_outside_years_1_to_9999_are_refused() {
        let long = "n".repeat(MAX_FIELD_NAME_BYTES + 1);
        let err = Columns::encode(&[Event::new(0).with(&long, 1i64)]).validate().unwrap_err();
        assert!(err.to_string().contains(&format!("is {} bytes; at most 256", MAX_FIELD_NAME_BYTES + 1)), "{err}");
        let longest = "n".repeat(MAX_FIELD_NAME_BYTES);
        assert!(Columns::encode(&[Event::new(0).with(&longest, 1i64)]).validate().is_ok());

        for time in [i64::MIN, MIN_EVENT_TIME - 1, MAX_EVENT_TIME + 1, i64::MAX] {
            let err = Columns::encode(&[Event::new(0), Event::new(time)]).validate().unwrap_err();
            assert!(
                err.to_string().contains(&format!("event 1 has time {time} µs, outside years 0001 to 9999")),
                "{err}"
            );
        }
        for time in [MIN_EVENT_TIME, 0, MAX_EVENT_TIME] {
            assert!(Columns::encode(&[Event::new(time)]).validate().is_ok(), "{time}");
        }
        assert_eq!(crate::time::format_rfc3339(MIN_EVENT_TIME), "0001-01-01T00:00:00Z");
        assert_eq!(crate::time::format_rfc3339(MAX_EVENT_TIME), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn field_names_count_in_the_payload() {
        let short = Columns::encode(&[Event::new(0).with("a", 1i64)]);
        let long = Columns::encode(&[Event::new(0).with(&"a".repeat(100), 1i64)]);
        assert_eq!(long.payload_bytes() - short.payload_bytes(), 99);
        assert_eq!(long.field_names(), 1);
    }

    #[test]
    fn encode_then_decode_gives_back_the_same_events() {
        let events = sample();
        let columns = Columns::encode(&events);
        assert_eq!(columns.names.len(), 9, "each name is sent once: {:?}", columns.names);
        assert_eq!(columns.decode().unwrap(), events);
    }

    #[test]
    fn a_batch_with_offsets_past_its_buffer_is_refused() {
        let mut columns = Columns::encode(&sample());
        columns.text_ends[0] = 9_999;
        let err = columns.validate().unwrap_err();
        assert!(err.0.contains("text offset"), "{err}");
    }

    #[test]
    fn a_batch_with_mismatched_lengths_is_refused() {
        let mut columns = Columns::encode(&sample());
        columns.kinds.pop();
        assert!(columns.validate().unwrap_err().0.contains("kinds"));
    }

    #[test]
    fn invalid_utf8_text_and_unknown_kinds_are_refused() {
        let mut columns = Columns::encode(&[Event::new(0).with("s", "ab")]);
        columns.text[0] = 0xff;
        assert!(columns.validate().unwrap_err().0.contains("UTF-8"));
        let mut columns = Columns::encode(&[Event::new(0).with("n", 1i64)]);
        columns.kinds[0] = 42;
        assert!(columns.validate().unwrap_err().0.contains("unknown kind 42"));
    }

    #[test]
    fn decoding_invalid_utf8_is_an_error_not_a_panic() {
        let mut columns = Columns::encode(&[Event::new(0).with_key("k").with("s", "ab")]);
        columns.text[1] = 0xff;
        assert_eq!(columns.decode().unwrap_err().0, "value 0 is not valid UTF-8");
        columns.key_text[0] = 0xff;
        assert_eq!(columns.decode().unwrap_err().0, "the key of event 0 is not valid UTF-8");
    }

    #[test]
    fn a_decoder_fed_back_its_events_decodes_the_same_events_into_their_buffers() {
        // Events of different shapes in turn, so that recycled strings and field lists
        // hold longer, shorter and differently typed data than the next event's.
        let events: Vec<Event> = sample().into_iter().cycle().take(40).collect();
        let columns = Columns::encode(&events);
        let mut decoder = columns.decoder().unwrap();
        let mut decoded = Vec::new();
        while let Some(event) = decoder.next_event() {
            let event = event.unwrap();
            decoded.push(event.clone());
            decoder.recycle(event.with("added", "by a plugin").with_key("a longer key than any in the batch"));
        }
        assert_eq!(decoded, events);
        assert!(decoder.spare_text.len() <= SPARE_TEXT && decoder.spare_fields.len() <= SPARE_FIELD_LISTS);
        for _ in 0..SPARE_TEXT {
            decoder.recycle(Event::new(0).with("a", "x").with("b", "y"));
        }
        assert_eq!(decoder.spare_text.len(), SPARE_TEXT, "the spares stay bounded");
    }

    #[test]
    fn text_beside_bytes_that_are_not_utf8_decodes_value_by_value() {
        let events = vec![
            Event::new(0).with("raw", vec![0xffu8, 0xfe]).with("city", "São Paulo").with("raw2", vec![0xc3u8]),
            Event::new(1).with("city", "Zürich"),
        ];
        let columns = Columns::encode(&events);
        assert!(std::str::from_utf8(&columns.text).is_err(), "the buffer as a whole is not UTF-8");
        assert_eq!(columns.decode().unwrap(), events);
        // A text value that starts inside a character of a valid buffer is refused.
        let mut columns = Columns::encode(&[Event::new(0).with("a", "é").with("b", "x")]);
        columns.text_ends[0] = 1;
        columns.kinds[1] = ValueKind::Bytes as u8;
        assert_eq!(columns.decode().unwrap_err().0, "value 0 is not valid UTF-8");
    }

    #[test]
    fn a_field_repeated_within_one_event_is_refused() {
        let mut columns = Columns::encode(&[Event::new(0).with("a", 1i64).with("b", 2i64)]);
        columns.field_ids[1] = 0;
        assert!(columns.validate().unwrap_err().0.contains("twice"));
    }
}
