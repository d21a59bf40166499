//! Tumbling event-time windows and the groups an aggregator finishes: one definition for
//! the host, the harness and the guest SDK.

/// A tumbling event-time window `[start, end)`, microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// The first microsecond in the window.
    pub start: i64,
    /// The first microsecond after it.
    pub end: i64,
}

impl Window {
    /// The window of width `width` µs (at least 1) that holds `time`. Windows are aligned
    /// to the Unix epoch. At the ends of the `i64` range the window is cut short instead
    /// of overflowing: no event time makes this panic or wrap.
    pub fn of(time: i64, width: i64) -> Window {
        let width = width.max(1);
        let start = time.div_euclid(width).saturating_mul(width);
        Window { start, end: start.saturating_add(width) }
    }
}

/// One group (window and key) whose aggregate is finished, with the state accumulated
/// for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedGroup {
    /// The state accumulated for the group (opaque to the host).
    pub state: Vec<u8>,
    /// The group's window.
    pub window: Window,
    /// The group's key (empty for events without one).
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_falls_in_the_window_aligned_to_the_epoch_that_holds_it() {
        assert_eq!(Window::of(0, 60), Window { start: 0, end: 60 });
        assert_eq!(Window::of(59, 60), Window { start: 0, end: 60 });
        assert_eq!(Window::of(60, 60), Window { start: 60, end: 120 });
        assert_eq!(Window::of(-1, 60), Window { start: -60, end: 0 });
    }

    #[test]
    fn times_at_the_ends_of_the_range_give_a_cut_window_not_an_overflow() {
        assert_eq!(Window::of(i64::MIN, 7), Window { start: i64::MIN, end: i64::MIN + 7 });
        assert_eq!(Window::of(i64::MAX, 10), Window { start: i64::MAX - 7, end: i64::MAX });
        assert_eq!(Window::of(i64::MAX - 1, 1 << 62).end, i64::MAX);
        assert_eq!(Window::of(5, 0), Window { start: 5, end: 6 }, "a width below 1 counts as 1");
    }
}
