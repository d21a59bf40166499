//! Configuration problems, each located by key path and line.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file: where it is (file, line, key path) and what is
/// wrong, with what is expected.
///
/// Renders as `orders.toml:31: streams[0].aggregator.window: "1 minute" is not a duration;
/// expected e.g. "30s", "5m", "1h"`; the line is left out for problems with no place in
/// the file (it cannot be read, no stream is defined), the key path for syntax errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given to [`PipelineConfig::from_file`](super::PipelineConfig::from_file)
    /// or as the `origin` of [`PipelineConfig::parse`](super::PipelineConfig::parse).
    pub origin: String,
    /// The line (1-based) the problem is on, when it has a place in the file.
    pub line: Option<usize>,
    /// The key path, e.g. `streams[0].enrichers[1]` or `plugins.orders-parser.limits.cpu`;
    /// empty for syntax errors and problems of the whole file.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
    /// The byte range in the file the problem points at, when it has a place.
    pub span: Option<Range<usize>>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in the order of the file (problems with
/// no line first). Never empty.
///
/// Displays one problem per line, ready to print:
///
/// ```text
/// orders.toml:23: streams[0].enrichers[1]: unknown plugin "restaurant-enrichr"; defined plugins are: orders-parser, restaurant-enricher, restaurant-stats
/// orders.toml:31: streams[0].aggregator.window: "1 minute" is not a duration; expected e.g. "30s", "5m", "1h"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps `errors`, sorted by line (stable: problems on one line keep the order they
    /// were found in).
    ///
    /// # Panics
    ///
    /// If `errors` is empty: a `ConfigErrors` always holds at least one problem.
    pub fn new(mut errors: Vec<ConfigError>) -> Self {
        assert!(!errors.is_empty(), "ConfigErrors needs at least one error");
        errors.sort_by_key(|error| error.line);
        Self { errors }
    }

    /// The problems, in the order of the file.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: there is at least one problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems, in the order of the file.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}
