//! Reading typed values out of toml's spanned document tree, one key at a time.
//!
//! The configuration is not deserialized with `#[derive(Deserialize)]`: serde stops at the
//! first error, and we want every problem of the file at once, each with its key path and
//! line. Instead the file is parsed into toml's [`DeTable`] (every key and value with its
//! byte span) and each key is converted on its own; a bad value is reported and reading
//! goes on with the next key.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::LatePolicy;
use super::error::{ConfigError, ConfigErrors};
use super::units::{ByteSize, HumanDuration};

/// A byte range in the configuration text.
pub(super) type Span = Range<usize>;

/// A value of the document with its span.
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// Where a key is: `streams[0].aggregator.window`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// The document itself.
    pub(super) fn root() -> Self {
        Self::default()
    }

    /// The key `key` of this table.
    pub(super) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// The element `index` of this array.
    pub(super) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether TOML accepts `key` unquoted.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A value read from the document, with where it was.
#[derive(Debug, Clone)]
pub(super) struct Located<T> {
    pub(super) value: T,
    pub(super) span: Span,
    pub(super) path: KeyPath,
}

/// A table of the document, with its key path and span (for a `[header]` table, the
/// header; for an inline table, the braces).
#[derive(Debug)]
pub(super) struct Table<'a, 'i> {
    pub(super) path: KeyPath,
    pub(super) span: Span,
    map: &'a DeTable<'i>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// The value of `key`, if present.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.map.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }

    /// Every key (with its span) and value, in key order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&'a str, Span, &'a Value<'i>)> + use<'a, 'i> {
        self.map.iter().map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
    }
}

/// Collects the problems of one configuration text.
#[derive(Debug)]
pub(super) struct Report<'t> {
    text: &'t str,
    origin: String,
    errors: Vec<ConfigError>,
}

impl<'t> Report<'t> {
    pub(super) fn new(text: &'t str, origin: &str) -> Self {
        Self { text, origin: origin.to_owned(), errors: Vec::new() }
    }

    /// The line (1-based) on which `span` starts.
    pub(super) fn line(&self, span: &Span) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// The column (1-based, in characters) at which `span` starts.
    pub(super) fn column(&self, span: &Span) -> usize {
        let end = span.start.min(self.text.len());
        let line_start = self.text.as_bytes()[..end].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.text.get(line_start..end).map_or(1, |before| before.chars().count() + 1)
    }

    /// Records a problem at `key`, on the line of `span` (none: a problem of the file).
    pub(super) fn error(&mut self, key: &KeyPath, span: Option<Span>, message: impl Into<String>) {
        let line = span.as_ref().map(|span| self.line(span));
        self.errors.push(ConfigError {
            origin: self.origin.clone(),
            line,
            key: key.to_string(),
            message: message.into(),
            span,
        });
    }

    /// `value` when it is there and no problem was recorded, else every problem.
    pub(super) fn finish<T>(mut self, value: Option<T>) -> Result<T, ConfigErrors> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => {
                if self.errors.is_empty() {
                    // Not reached: no value comes with a reason. Still, never an empty list.
                    self.error(&KeyPath::root(), None, "the configuration could not be read");
                }
                Err(ConfigErrors::new(self.errors))
            }
        }
    }

    /// `value` as a table whose keys must be among `allowed` (`None`: any key). Reports
    /// (and returns `None`) when it is not a table; reports each unknown key.
    pub(super) fn table<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        path: KeyPath,
        allowed: Option<&[&str]>,
    ) -> Option<Table<'a, 'i>> {
        match value.get_ref() {
            DeValue::Table(map) => {
                let table = Table { path, span: value.span(), map };
                if let Some(allowed) = allowed {
                    self.unknown_keys(&table, allowed);
                }
                Some(table)
            }
            other => {
                self.error(&path, Some(value.span()), format!("expected a table, found {}", describe(other)));
                None
            }
        }
    }

    /// Reports each key of `table` that is not in `allowed`, naming the allowed ones.
    pub(super) fn unknown_keys(&mut self, table: &Table<'_, '_>, allowed: &[&str]) {
        for (key, span, _) in table.entries() {
            if !allowed.contains(&key) {
                self.error(
                    &table.path.key(key),
                    Some(span),
                    format!("unknown key {key:?}; allowed keys are: {}", allowed.join(", ")),
                );
            }
        }
    }

    /// Converts `value`, reporting a problem at `path` when it does not fit.
    pub(super) fn convert<T: FromValue>(&mut self, value: &Value<'_>, path: &KeyPath) -> Option<T> {
        match T::from_value(value.get_ref()) {
            Ok(converted) => Some(converted),
            Err(message) => {
                self.error(path, Some(value.span()), message);
                None
            }
        }
    }

    /// The value of `key` in `table`: `None` when absent or when it does not fit (then
    /// reported).
    pub(super) fn get<T: FromValue>(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Located<T>> {
        let value = table.get(key)?;
        let path = table.path.key(key);
        let converted = self.convert(value, &path)?;
        Some(Located { value: converted, span: value.span(), path })
    }

    /// Like [`get`](Self::get), and a missing key is reported, saying what it should hold.
    pub(super) fn require<T: FromValue>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        expected: &str,
    ) -> Option<Located<T>> {
        if table.get(key).is_none() {
            self.error(&table.path.key(key), Some(table.span.clone()), format!("missing; expected {expected}"));
            return None;
        }
        self.get(table, key)
    }

    /// The array at `key`, each element converted on its own (a bad element is reported
    /// at its index and left out). `None` when absent or not an array.
    pub(super) fn list<T: FromValue>(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Vec<Located<T>>> {
        let value = table.get(key)?;
        let path = table.path.key(key);
        let DeValue::Array(array) = value.get_ref() else {
            let found = value.get_ref();
            let mut message = format!("expected an array, found {}", describe(found));
            if let DeValue::String(s) = found {
                message.push_str(&format!("; write [{s:?}]"));
            }
            self.error(&path, Some(value.span()), message);
            return None;
        };
        let mut items = Vec::with_capacity(array.len());
        for (index, element) in array.iter().enumerate() {
            let element_path = path.index(index);
            if let Some(converted) = self.convert(element, &element_path) {
                items.push(Located { value: converted, span: element.span(), path: element_path });
            }
        }
        Some(items)
    }
}

/// A type a configuration value converts to.
pub(super) trait FromValue: Sized {
    /// What is expected, for messages: `a string`, `a duration such as "30s"`.
    const EXPECTED: &'static str;

    /// Converts `value`, or says what is wrong with it.
    fn from_value(value: &DeValue<'_>) -> Result<Self, String>;
}

/// `expected …, found …`.
fn mismatch<T: FromValue>(found: &DeValue<'_>) -> String {
    format!("expected {}, found {}", T::EXPECTED, describe(found))
}

/// A value as a message shows it: `the integer 30`, `a table`.
pub(super) fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(x) => format!("the float {}", x.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// An integer of the document; TOML integers are 64-bit, so `i128` holds any.
fn integer(value: &DeValue<'_>) -> Option<i128> {
    match value {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "a string";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::String(s) => Ok(s.to_string()),
            other => Err(mismatch::<Self>(other)),
        }
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "true or false";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::Boolean(b) => Ok(*b),
            other => Err(mismatch::<Self>(other)),
        }
    }
}

impl FromValue for u64 {
    const EXPECTED: &'static str = "a whole number";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        let number = integer(value).ok_or_else(|| mismatch::<Self>(value))?;
        u64::try_from(number).map_err(|_| format!("expected a whole number of at least 0, found {number}"))
    }
}

impl FromValue for ByteSize {
    const EXPECTED: &'static str = "a size such as \"64KiB\" or \"1MiB\", or a number of bytes";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::String(s) => s.parse().map_err(|e| format!("{e}")),
            DeValue::Integer(_) => match integer(value).map(u64::try_from) {
                Some(Ok(bytes)) => Ok(ByteSize(bytes)),
                _ => Err(format!("a size cannot be negative; expected {}", Self::EXPECTED)),
            },
            other => Err(mismatch::<Self>(other)),
        }
    }
}

impl FromValue for HumanDuration {
    const EXPECTED: &'static str = "a duration such as \"500ms\", \"30s\", \"5m\" or \"1h\"";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::String(s) => s.parse().map_err(|e| format!("{e}")),
            DeValue::Integer(i) => Err(format!("{i} has no unit; expected {}", Self::EXPECTED)),
            other => Err(mismatch::<Self>(other)),
        }
    }
}

impl FromValue for SocketAddr {
    const EXPECTED: &'static str = "an IP address and port such as \"127.0.0.1:8080\" or \"0.0.0.0:8080\"";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::String(s) => {
                s.parse().map_err(|_| format!("{s:?} is not an IP address and port; expected e.g. \"127.0.0.1:8080\""))
            }
            other => Err(mismatch::<Self>(other)),
        }
    }
}

impl FromValue for LatePolicy {
    const EXPECTED: &'static str = "\"dead-letter\" or \"drop\"";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::String(s) => LatePolicy::ALL
                .into_iter()
                .find(|policy| policy.as_str() == s.as_ref())
                .ok_or_else(|| format!("unknown policy {s:?}; expected {}", Self::EXPECTED)),
            other => Err(mismatch::<Self>(other)),
        }
    }
}

/// A plugin configuration value: any scalar, as text.
#[derive(Debug)]
pub(super) struct ScalarText(pub(super) String);

impl FromValue for ScalarText {
    const EXPECTED: &'static str = "a string, number or boolean";

    fn from_value(value: &DeValue<'_>) -> Result<Self, String> {
        match value {
            DeValue::String(s) => Ok(Self(s.to_string())),
            // The text as written (`0x1F`, `1_000` included) would surprise a plugin that
            // parses numbers: pass the number's value.
            DeValue::Integer(_) => integer(value).map(|i| Self(i.to_string())).ok_or_else(|| mismatch::<Self>(value)),
            DeValue::Float(x) => {
                x.as_str().parse::<f64>().map(|x| Self(x.to_string())).map_err(|_| mismatch::<Self>(value))
            }
            DeValue::Boolean(b) => Ok(Self(b.to_string())),
            DeValue::Datetime(d) => Ok(Self(d.to_string())),
            other => Err(mismatch::<Self>(other)),
        }
    }
}
