//! Event-time tumbling windows with a watermark, and the aggregator states the stage owns
//! between batches (checkpointed with the log offsets).

use std::collections::BTreeMap;

use weir_runtime::Window;

/// Open groups and the watermark, as checkpointed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowState {
    /// Largest event time seen, µs (`i64::MIN` before any event).
    pub max_event_time: i64,
    /// Open groups: (window, key) → the aggregator's state.
    pub groups: BTreeMap<(Window, String), Vec<u8>>,
}

/// Format version of the checkpointed encoding.
const VERSION: u8 = 1;

impl WindowState {
    /// A state before any event.
    pub fn new() -> Self {
        Self { max_event_time: i64::MIN, groups: BTreeMap::new() }
    }

    /// The watermark: the largest event time seen less the allowed lateness. A window
    /// whose end is at or before it is closed.
    pub fn watermark(&self, allowed_lateness: i64) -> i64 {
        self.max_event_time.saturating_sub(allowed_lateness)
    }

    /// Compact binary encoding: version, watermark, then each group's window, key and state.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.max_event_time.to_le_bytes());
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        for ((window, key), state) in &self.groups {
            out.extend_from_slice(&window.start.to_le_bytes());
            out.extend_from_slice(&window.end.to_le_bytes());
            for part in [key.as_bytes(), state.as_slice()] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }

    /// Decodes [`WindowState::encode`]'s output; an empty input is a fresh state.
    ///
    /// # Errors
    /// A message when the bytes are not a state of this version.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::new());
        }
        let mut r = Reader(bytes);
        let version = r.take(1)?[0];
        if version != VERSION {
            return Err(format!("checkpointed window state has format version {version}; this weir reads {VERSION}"));
        }
        let max_event_time = r.i64()?;
        let n = r.u32()?;
        let mut groups = BTreeMap::new();
        for _ in 0..n {
            let window = Window { start: r.i64()?, end: r.i64()? };
            let key_len = r.u32()? as usize;
            let key = String::from_utf8(r.take(key_len)?.to_vec()).map_err(|_| "group key is not UTF-8".to_owned())?;
            let state_len = r.u32()? as usize;
            groups.insert((window, key), r.take(state_len)?.to_vec());
        }
        Ok(Self { max_event_time, groups })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("checkpointed window state is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "truncated")?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "truncated")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_state_round_trips_through_its_encoding() {
        let mut s = WindowState::new();
        s.max_event_time = 1_234;
        s.groups.insert((Window::of(1_234, 1_000), "r-1".into()), b"{\"orders\":1}".to_vec());
        s.groups.insert((Window::of(-5, 1_000), "".into()), vec![]);
        assert_eq!(WindowState::decode(&s.encode()).unwrap(), s);
        assert_eq!(WindowState::decode(&[]).unwrap(), WindowState::new());
        assert!(WindowState::decode(&s.encode()[..10]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn windows_are_tumbling_and_aligned_to_the_epoch() {
        assert_eq!(Window::of(59_999_999, 60_000_000), Window { start: 0, end: 60_000_000 });
        assert_eq!(Window::of(60_000_000, 60_000_000), Window { start: 60_000_000, end: 120_000_000 });
        assert_eq!(Window::of(-1, 60_000_000), Window { start: -60_000_000, end: 0 });
    }
}
