//! Isolating the record that makes a whole plugin call fail: the policy the stream
//! stages and the harness share.
//!
//! When a call traps, hits a limit or breaks the contract, nothing of the batch is
//! known to be bad except that *something* in it is. The stage then calls the plugin
//! again on each half of the failing range, and so on, down to single records or until
//! the retry budget is spent: the record that fails on its own is dead-lettered with the
//! reason, and the rest of the batch goes on.

use std::future::Future;
use std::ops::Range;

use crate::error::CallError;

/// Extra calls a stage may spend isolating failures in one batch, per plugin. A poison
/// record in a batch of 512 is found in 18 calls; a plugin that fails on everything
/// costs at most this many more calls before the rest is dead-lettered in bulk.
pub const ISOLATION_BUDGET: usize = 24;

/// A range of the batch's inputs and what the plugin made of it.
#[derive(Debug)]
pub struct Piece<O> {
    pub inputs: Range<usize>,
    pub result: Result<O, CallError>,
}

/// Calls `call` on inputs `0..n`; while a call fails as a whole and the budget allows,
/// splits its range in halves and calls each. Returns the pieces in input order.
pub async fn isolate<O, F, Fut>(n: usize, mut budget: usize, mut call: F) -> Vec<Piece<O>>
where
    F: FnMut(Range<usize>) -> Fut,
    Fut: Future<Output = Result<O, CallError>>,
{
    let mut pieces = Vec::new();
    let mut todo: Vec<Range<usize>> = Vec::with_capacity(8);
    todo.push(0..n);
    while let Some(inputs) = todo.pop() {
        let result = call(inputs.clone()).await;
        match result {
            // The plugin cannot start: splitting cannot help, and every other range
            // would fail the same way.
            Err(err) if err.is_start_failure() => {
                pieces.extend(todo.drain(..).map(|rest| Piece { inputs: rest, result: Err(err.clone()) }));
                pieces.push(Piece { inputs, result: Err(err) });
            }
            Err(_) if inputs.len() > 1 && budget >= 2 => {
                budget -= 2;
                let mid = inputs.start + inputs.len() / 2;
                // Pushed in reverse so the first half is called first.
                todo.push(mid..inputs.end);
                todo.push(inputs.start..mid);
            }
            result => pieces.push(Piece { inputs, result }),
        }
    }
    pieces.sort_by_key(|p| p.inputs.start);
    pieces
}

/// The dead-letter reason for the inputs of a failed piece.
pub fn reason(err: &CallError, piece_len: usize) -> String {
    if piece_len == 1 {
        format!("{} (isolated: this record fails the call on its own)", err.reason())
    } else {
        format!("{} (its batch was not split further: the isolation budget was spent)", err.reason())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn failure() -> CallError {
        CallError::for_tests("p@1", "batch", crate::error::CallErrorKind::Trap("boom".into()))
    }

    #[tokio::test]
    async fn a_poison_record_is_isolated_and_the_rest_of_the_batch_succeeds() {
        let calls = RefCell::new(Vec::new());
        let pieces = isolate(10, ISOLATION_BUDGET, |r: Range<usize>| {
            calls.borrow_mut().push(r.clone());
            let fails = r.contains(&7);
            async move { if fails { Err(failure()) } else { Ok(r.len()) } }
        })
        .await;
        let failed: Vec<_> = pieces.iter().filter(|p| p.result.is_err()).map(|p| p.inputs.clone()).collect();
        assert_eq!(failed, vec![7..8]);
        let succeeded: usize = pieces.iter().filter_map(|p| p.result.as_ref().ok()).sum();
        assert_eq!(succeeded, 9, "every other record is processed");
        let covered: Vec<usize> = pieces.iter().flat_map(|p| p.inputs.clone()).collect();
        assert_eq!(covered, (0..10).collect::<Vec<_>>(), "pieces cover the batch once, in order");
        assert_eq!(calls.borrow()[0], 0..10);
    }

    #[tokio::test]
    async fn isolation_stops_when_the_budget_is_spent() {
        let calls = RefCell::new(0);
        let pieces = isolate(512, 4, |_r: Range<usize>| {
            *calls.borrow_mut() += 1;
            async { Err::<usize, _>(failure()) }
        })
        .await;
        assert_eq!(*calls.borrow(), 5, "one call plus the budget");
        assert_eq!(pieces.iter().map(|p| p.inputs.len()).sum::<usize>(), 512);
        assert!(reason(&failure(), 128).contains("not split further"));
        assert!(reason(&failure(), 1).contains("isolated"));
    }

    #[tokio::test]
    async fn a_plugin_that_cannot_start_is_not_split_and_the_rest_is_not_called() {
        let calls = RefCell::new(Vec::new());
        let cannot_start = CallError::for_tests("p@1", "batch", crate::error::CallErrorKind::Start("no".into()));
        let pieces = isolate(100, ISOLATION_BUDGET, |r: Range<usize>| {
            calls.borrow_mut().push(r.clone());
            // The first call traps (a poison record discards the instance); every later
            // one needs a fresh instance, which cannot start.
            let result = if r == (0..100) { Err(failure()) } else { Err(cannot_start.clone()) };
            async move { result.map(|()| 0usize) }
        })
        .await;
        assert_eq!(*calls.borrow(), [0..100, 0..50], "split once by the trap, then stopped");
        assert!(pieces.iter().all(|p| p.result.as_ref().is_err_and(CallError::is_start_failure)));
        let covered: Vec<usize> = pieces.iter().flat_map(|p| p.inputs.clone()).collect();
        assert_eq!(covered, (0..100).collect::<Vec<_>>(), "pieces still cover the batch once, in order");
    }

    #[tokio::test]
    async fn a_batch_that_succeeds_is_called_once() {
        let calls = RefCell::new(0);
        let pieces = isolate(64, ISOLATION_BUDGET, |r: Range<usize>| {
            *calls.borrow_mut() += 1;
            async move { Ok::<_, CallError>(r.len()) }
        })
        .await;
        assert_eq!(*calls.borrow(), 1);
        assert_eq!(pieces.len(), 1);
    }
}
