//! The distinct field names a stream's outputs have had, bounded: the lake and the
//! warehouse keep a column per name, so a plugin that names a field per event (each call
//! within its own `max_output_fields`) must not grow every file by a column per call.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// The field names one output of a stream (its events, or its aggregates) has had since
/// the host started, at most `cap` of them. Shared by the stream's shard stages.
#[derive(Debug)]
pub(crate) struct FieldNames {
    what: &'static str,
    cap: usize,
    seen: Mutex<HashSet<Box<str>>>,
}

impl FieldNames {
    /// `what` names the output in refusals ("events", "aggregates").
    pub(crate) fn new(what: &'static str, cap: usize) -> Self {
        Self { what, cap, seen: Mutex::new(HashSet::new()) }
    }

    /// Admits a whole batch's names when they fit, which is the usual case and costs a
    /// lookup per name of the batch, not per event. False when some would not fit: the
    /// caller then admits event by event ([`FieldNames::admit`]).
    pub(crate) fn admit_all<'a>(&self, names: impl IntoIterator<Item = &'a str> + Clone) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let new: HashSet<&str> = names.into_iter().filter(|n| !seen.contains(*n)).collect();
        if seen.len() + new.len() > self.cap {
            return false;
        }
        seen.extend(new.into_iter().map(Box::from));
        true
    }

    /// Admits one event's names, all or none: `Err` with the reason, naming the first
    /// name that does not fit, when they would bring the stream past its cap.
    pub(crate) fn admit<'a>(
        &self,
        stream: &str,
        names: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), String> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut new: Vec<&str> = names.into_iter().filter(|n| !seen.contains(*n)).collect();
        new.sort_unstable();
        new.dedup();
        if seen.len() + new.len() <= self.cap {
            seen.extend(new.into_iter().map(Box::from));
            return Ok(());
        }
        let first = new.first().copied().unwrap_or_default();
        let shown: String = first.chars().take(64).collect();
        Err(format!(
            "field {shown:?} would be distinct field name {} of stream {stream}'s {}, over its limit of {} \
             (streams.max_fields): the lake and the warehouse keep a column per name; give varying data as values, \
             not as field names, or raise max_fields",
            seen.len() + 1,
            self.what,
            self.cap
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_admitted_up_to_the_cap_and_a_new_one_past_it_is_refused_by_name() {
        let names = FieldNames::new("events", 3);
        assert!(names.admit_all(["a", "b", "a"]));
        assert!(names.admit_all(["a", "b"]), "known names always fit");
        assert!(!names.admit_all(["c", "d"]), "two new names do not fit in one");
        assert_eq!(names.admit("orders", ["a", "c"]), Ok(()));
        let refused = names.admit("orders", ["a", "zz"]).unwrap_err();
        assert!(refused.contains("field \"zz\" would be distinct field name 4 of stream orders's events"), "{refused}");
        assert!(refused.contains("over its limit of 3 (streams.max_fields)"), "{refused}");
        assert_eq!(names.admit("orders", ["c", "b", "a"]), Ok(()), "events with known names still pass");
    }

    #[test]
    fn an_event_is_admitted_whole_or_not_at_all() {
        let names = FieldNames::new("events", 2);
        assert!(names.admit("s", ["a", "b", "c"]).is_err());
        assert_eq!(names.admit("s", ["b", "c"]), Ok(()), "the refused event added none of its names");
    }
}
