use std::fmt::Display;
use std::str::FromStr;

/// The configuration given to a plugin when an instance starts: `(key, value)` pairs from
/// the pipeline configuration (or the harness's `--config KEY=VALUE`).
///
/// When a key is given more than once, the last value wins, so a later `--config`
/// overrides an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// A configuration holding `pairs`.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The value of `key`, if it was given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default` when it was not given.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key` parsed as a `T`, `None` when it was not given.
    ///
    /// # Errors
    /// A message naming the key and the value when the value does not parse.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(key)
            .map(|value| value.parse().map_err(|e| format!("config key {key}: {value:?} is not valid: {e}")))
            .transpose()
    }

    /// Checks that every key given is one of `known`, so that a misspelt key is reported
    /// instead of silently ignored.
    ///
    /// # Errors
    /// A message naming the unknown key and listing the known ones.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self.pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((key, _)) if known.is_empty() => {
                Err(format!("unknown config key {key}: this plugin takes no configuration"))
            }
            Some((key, _)) => Err(format!("unknown config key {key}: expected one of {}", known.join(", "))),
        }
    }

    /// Every `(key, value)` pair, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self::new(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_value_of_a_repeated_key_wins() {
        let config: Config = [("table", "a"), ("table", "b")].into_iter().collect();
        assert_eq!(config.get("table"), Some("b"));
        assert_eq!(config.get_or("missing", "fallback"), "fallback");
    }

    #[test]
    fn parse_names_the_key_and_value_it_cannot_parse() {
        let config: Config = [("limit", "12"), ("strict", "yes")].into_iter().collect();
        assert_eq!(config.parse::<u32>("limit"), Ok(Some(12)));
        assert_eq!(config.parse::<u32>("absent"), Ok(None));
        let err = config.parse::<bool>("strict").unwrap_err();
        assert!(err.starts_with("config key strict: \"yes\" is not valid"), "{err}");
    }

    #[test]
    fn unknown_keys_are_reported_with_the_known_ones() {
        let config: Config = [("tabel", "x")].into_iter().collect();
        let err = config.reject_unknown(&["table", "strict"]).unwrap_err();
        assert_eq!(err, "unknown config key tabel: expected one of table, strict");
        assert!(config.reject_unknown(&[]).unwrap_err().contains("takes no configuration"));
        assert_eq!(Config::default().reject_unknown(&[]), Ok(()));
    }
}
