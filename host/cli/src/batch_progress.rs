//! `weir batch run`'s progress and summary on standard error: one line rewritten in
//! place on a terminal, a line a second otherwise (logs, CI).

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use weir_batch::{RunFinished, RunObserver, RunProgress};

/// Prints a run's progress and, when it completes, its summary.
pub(crate) struct ConsoleProgress {
    terminal: bool,
    /// When the last line was printed; `None` before the run's first.
    last_line: Mutex<Option<Instant>>,
}

impl ConsoleProgress {
    pub(crate) fn new() -> Self {
        Self { terminal: std::io::stderr().is_terminal(), last_line: Mutex::new(None) }
    }
}

impl RunObserver for ConsoleProgress {
    fn progress(&self, progress: &RunProgress<'_>) {
        let line = progress_line(progress);
        let mut last = self.last_line.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.terminal {
            *last = Some(Instant::now());
            let _ = write!(std::io::stderr(), "\r{line}\x1b[K");
        } else if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            eprintln!("{line}");
        }
    }

    fn finished(&self, finished: &RunFinished<'_>) {
        // The next run of a backfill starts its own lines.
        let shown = self.last_line.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().is_some();
        if self.terminal && shown {
            eprintln!();
        }
        if let Ok(manifest) = finished.outcome {
            let levels: Vec<String> =
                manifest.levels.iter().map(|(name, level)| format!("{name} {} rows", level.rows)).collect();
            eprintln!(
                "job {} run {} completed in {:.1} s: {} records, {} events, {} dead letters; {}",
                finished.job,
                manifest.run,
                finished.elapsed.as_secs_f64(),
                manifest.records,
                manifest.events,
                manifest.dead_letters,
                if levels.is_empty() { "no levels".to_owned() } else { levels.join(", ") }
            );
        }
    }
}

/// `orders-daily 20261203T000000Z: 12345 records, 3.4 of 5.0 MB in 2 files, 2.1 s, ETA 1.0 s`
fn progress_line(p: &RunProgress<'_>) -> String {
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let eta = p.eta.map_or_else(|| "ETA unknown".to_owned(), |left| format!("ETA {:.1} s", left.as_secs_f64()));
    format!(
        "{} {}: {} records, {:.1} of {:.1} MB in {} files, {:.1} s, {eta}",
        p.job,
        p.run,
        p.records,
        mb(p.read_bytes),
        mb(p.file_bytes),
        p.files,
        p.elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_names_the_run_and_says_what_is_left() {
        let progress = RunProgress {
            job: "orders-daily",
            run: "20261203T000000Z",
            files: 2,
            file_bytes: 5_000_000,
            records: 12_345,
            read_bytes: 2_500_000,
            elapsed: Duration::from_millis(2_100),
            eta: Some(Duration::from_millis(1_500)),
        };
        assert_eq!(
            progress_line(&progress),
            "orders-daily 20261203T000000Z: 12345 records, 2.5 of 5.0 MB in 2 files, 2.1 s, ETA 1.5 s"
        );
        let first = RunProgress { eta: None, ..progress };
        assert!(progress_line(&first).ends_with("2.1 s, ETA unknown"), "{}", progress_line(&first));
    }
}
