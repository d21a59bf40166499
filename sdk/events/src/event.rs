use std::fmt;
use std::sync::Arc;

/// A field name. Shared (`Arc<str>`) because every event of a batch repeats the same
/// names: decoding a batch clones a pointer per field instead of copying the text.
pub type Name = Arc<str>;

/// The kind of a [`Value`], numbered as in the WIT `value-kind` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    Null = 0,
    Bool = 1,
    Int = 2,
    Float = 3,
    Text = 4,
    Bytes = 5,
    Timestamp = 6,
    Json = 7,
}

impl ValueKind {
    /// The kind numbered `tag` in the WIT, or `None` for an unknown number.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            0 => Self::Null,
            1 => Self::Bool,
            2 => Self::Int,
            3 => Self::Float,
            4 => Self::Text,
            5 => Self::Bytes,
            6 => Self::Timestamp,
            7 => Self::Json,
            _ => return None,
        })
    }

    /// Whether values of this kind keep their payload in the text buffer.
    pub fn uses_text(self) -> bool {
        matches!(self, Self::Text | Self::Bytes | Self::Json)
    }

    /// The lowercase name used in messages and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Float => "float",
            Self::Text => "text",
            Self::Bytes => "bytes",
            Self::Timestamp => "timestamp",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One typed value of an event field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// A JSON document kept as text, for nested data (objects and arrays).
    Json(String),
}

impl Value {
    /// This value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Self::Null => ValueKind::Null,
            Self::Bool(_) => ValueKind::Bool,
            Self::Int(_) => ValueKind::Int,
            Self::Float(_) => ValueKind::Float,
            Self::Text(_) => ValueKind::Text,
            Self::Bytes(_) => ValueKind::Bytes,
            Self::Timestamp(_) => ValueKind::Timestamp,
            Self::Json(_) => ValueKind::Json,
        }
    }

    /// The text, if this is a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an int value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is an int or a float value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is a bool value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Microseconds since the epoch, if this is a timestamp value.
    pub fn as_timestamp(&self) -> Option<i64> {
        match self {
            Self::Timestamp(t) => Some(*t),
            _ => None,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v $(as $cast)?)
            }
        })*
    };
}

value_from!(bool => Bool, i64 => Int, i32 => Int as i64, u32 => Int as i64, f64 => Float, String => Text, Vec<u8> => Bytes);

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One event: an optional key (partition and group key), an event time, and typed
/// fields in a stable order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// Partition / group key; `None` when the event has none.
    pub key: Option<String>,
    /// Event time, microseconds since the Unix epoch.
    pub time: i64,
    /// Fields in insertion order. Names are unique within an event.
    pub fields: Vec<(Name, Value)>,
}

impl Event {
    /// An event at `time` (microseconds since the Unix epoch) with no key and no fields.
    pub fn new(time: i64) -> Self {
        Self { key: None, time, fields: Vec::new() }
    }

    /// Sets the key, builder-style.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets a field, builder-style.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set(name, value);
        self
    }

    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    /// The text of field `name`, if it is present and text.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// The integer of field `name`, if it is present and an int.
    pub fn get_int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_int)
    }

    /// The number of field `name` as a float, if it is an int or a float.
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }

    /// The boolean of field `name`, if it is present and a bool.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// The timestamp of field `name` (microseconds), if it is present and a timestamp.
    pub fn get_timestamp(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_timestamp)
    }

    /// Sets field `name`, replacing its value if present, else appending it.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((Name::from(name), value)),
        }
    }

    /// Sets field `name` like [`Event::set`], with a name the caller shares across events:
    /// an enricher that adds the same fields to every event allocates no name for them.
    pub fn set_shared(&mut self, name: &Name, value: Value) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.clone(), value)),
        }
    }

    /// Removes field `name` and returns its value, if present.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let at = self.fields.iter().position(|(n, _)| &**n == name)?;
        Some(self.fields.remove(at).1)
    }
}
