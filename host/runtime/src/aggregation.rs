//! Windowed aggregation over an aggregator plugin, the one way the stream stage and the
//! harness drive it: events are grouped per call by (tumbling window, event key), each
//! group's state comes from the caller's open groups (or the plugin's empty state), and
//! the states the plugin returns replace them.

use std::collections::{BTreeMap, HashMap};

use weir_events::{Columns, Event};

use crate::{AccumulateOutput, CallError, CallStats, FinishedGroup, Plugin, Window};

/// A group: its window and the events' key (empty for events without one).
pub type GroupKey = (Window, String);

/// Open groups and their states, in window then key order.
pub type GroupStates = BTreeMap<GroupKey, Vec<u8>>;

/// The groups of one `accumulate` call: each (window, key) once, in first-seen order,
/// and per event the index of its group. Adding an event costs one hash lookup.
#[derive(Debug, Default)]
pub struct CallGroups {
    keys: Vec<GroupKey>,
    index: HashMap<GroupKey, u32>,
    groups: Vec<u32>,
}

impl CallGroups {
    /// Adds an event of `window` with `key` to the call.
    pub fn add(&mut self, window: Window, key: Option<&str>) {
        let key = (window, key.unwrap_or_default().to_owned());
        let next = self.keys.len() as u32;
        let group = *self.index.entry(key).or_insert_with_key(|key| {
            self.keys.push(key.clone());
            next
        });
        self.groups.push(group);
    }

    /// Events added so far.
    pub fn events(&self) -> usize {
        self.groups.len()
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Folds `events` (added to `groups` in the same order) into their groups' states: one
/// `accumulate` call with each group's state from `states` (or the plugin's empty state),
/// whose returned states then replace them in `states`. On an error nothing changes.
///
/// # Errors
/// The call failed as a whole (trap, limit, broken contract).
pub async fn accumulate<'e>(
    plugin: &Plugin,
    label: &str,
    groups: CallGroups,
    events: impl IntoIterator<Item = &'e Event>,
    states: &mut GroupStates,
) -> Result<(AccumulateOutput, CallStats), CallError> {
    let empty = plugin.empty_state().unwrap_or_default();
    let inputs: Vec<Vec<u8>> =
        groups.keys.iter().map(|key| states.get(key).cloned().unwrap_or_else(|| empty.to_vec())).collect();
    let (mut out, stats) = plugin.accumulate(label, inputs, Columns::encode(events), groups.groups).await?;
    states.extend(groups.keys.into_iter().zip(std::mem::take(&mut out.states)));
    Ok((out, stats))
}

/// The groups of `keys` as [`FinishedGroup`]s, with their states from `states`.
pub fn finished_groups<'k>(keys: impl IntoIterator<Item = &'k GroupKey>, states: &GroupStates) -> Vec<FinishedGroup> {
    keys.into_iter()
        .map(|key| FinishedGroup {
            state: states.get(key).cloned().unwrap_or_default(),
            window: key.0,
            key: key.1.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_one_window_and_key_share_a_group_in_first_seen_order() {
        let (w1, w2) = (Window::of(10, 60), Window::of(70, 60));
        let mut groups = CallGroups::default();
        groups.add(w1, Some("a"));
        groups.add(w2, Some("a"));
        groups.add(w1, Some("a"));
        groups.add(w1, None);
        groups.add(w1, Some(""));
        assert_eq!(groups.groups, [0, 1, 0, 2, 2], "no key and the empty key are one group");
        assert_eq!(groups.keys, [(w1, "a".to_owned()), (w2, "a".to_owned()), (w1, String::new())]);
        assert_eq!(groups.events(), 5);
    }

    #[test]
    fn finished_groups_carry_their_states() {
        let window = Window::of(0, 60);
        let key = (window, "k".to_owned());
        let states = GroupStates::from([(key.clone(), b"state".to_vec())]);
        let missing = (window, "none".to_owned());
        let finished = finished_groups([&key, &missing], &states);
        assert_eq!(finished[0], FinishedGroup { state: b"state".to_vec(), window, key: "k".to_owned() });
        assert_eq!(finished[1].state, Vec::<u8>::new());
    }
}
