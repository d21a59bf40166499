//! `weir plugin bench`: the time per input of a component on its fixtures, in the
//! production runtime and limits, beside a previous build of the same plugin measured in
//! the same run — the machine's noise hits both alike, so their ratio is what to read.
//!
//! Each round feeds the same inputs (the fixtures repeated up to `inputs_per_round`) in
//! batches, through each component in turn (the order alternates between rounds); a
//! round's time is the wall time of its calls. The figures are the medians over the
//! rounds, after one warm-up round per component that is not counted.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_events::{Columns, Event};
use weir_runtime::aggregation::{self, CallGroups, GroupStates};
use weir_runtime::{FinishedGroup, Plugin, RawRecord, Window, World};

use crate::{HarnessError, TestOptions, fail, input, load};

/// How to benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// A previous build of the same plugin to compare with; None: this one alone.
    pub against: Option<PathBuf>,
    /// Counted rounds per component (at least 1).
    pub rounds: usize,
    /// Inputs per round: the fixtures repeated (at least once each) up to this many.
    pub inputs_per_round: usize,
}

/// One component's figures.
#[derive(Debug, Clone)]
pub struct Timing {
    pub component: PathBuf,
    /// Nanoseconds per input, one per counted round.
    pub ns_per_input: Vec<f64>,
}

impl Timing {
    /// The median over the rounds.
    pub fn median(&self) -> f64 {
        let mut sorted = self.ns_per_input.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
    }

    /// The fastest round.
    pub fn fastest(&self) -> f64 {
        self.ns_per_input.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// What `weir plugin bench` prints.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub world: World,
    pub input: PathBuf,
    pub fixture_inputs: usize,
    pub inputs_per_round: usize,
    pub batch_size: usize,
    pub current: Timing,
    pub previous: Option<Timing>,
}

impl BenchReport {
    /// The current build's median time per input over the previous build's: above 1 it
    /// is slower.
    pub fn ratio(&self) -> Option<f64> {
        self.previous.as_ref().map(|p| self.current.median() / p.median())
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "bench    {} ({}): {} rounds of {} inputs (the {} of {}, repeated), batches of {}",
            self.current.component.display(),
            self.world,
            self.current.ns_per_input.len(),
            self.inputs_per_round,
            self.fixture_inputs,
            self.input.display(),
            self.batch_size
        )?;
        let line = |f: &mut std::fmt::Formatter<'_>, label: &str, t: &Timing| {
            writeln!(
                f,
                "{label:<8} {:>10.0} ns/input  (median; fastest round {:.0})  {}",
                t.median(),
                t.fastest(),
                t.component.display()
            )
        };
        line(f, "this", &self.current)?;
        if let (Some(previous), Some(ratio)) = (&self.previous, self.ratio()) {
            line(f, "previous", previous)?;
            let verdict = if ratio > 1.05 {
                "slower"
            } else if ratio < 0.95 {
                "faster"
            } else {
                "about the same"
            };
            writeln!(f, "ratio    {ratio:.2}× the previous build's time per input ({verdict}; above 1 is slower)")?;
        }
        Ok(())
    }
}

/// The inputs of one round, of the plugin's world.
enum Inputs {
    Records(Vec<RawRecord>),
    Events(Vec<Event>),
}

impl Inputs {
    fn len(&self) -> usize {
        match self {
            Self::Records(r) => r.len(),
            Self::Events(e) => e.len(),
        }
    }
}

fn repeated<T: Clone>(items: Vec<T>, at_least: usize) -> Vec<T> {
    let n = items.len().max(1);
    let copies = at_least.div_ceil(n).max(1);
    let mut out = Vec::with_capacity(copies * items.len());
    for _ in 0..copies {
        out.extend(items.iter().cloned());
    }
    out
}

/// Runs the benchmark.
///
/// # Errors
/// Unreadable files, a component that cannot be loaded, two components of different
/// worlds, or a call that fails (run `weir plugin test` to see why).
pub async fn bench(options: &TestOptions, bench: &BenchOptions) -> Result<BenchReport, HarnessError> {
    let (current, _) = load(options).await?;
    let world = current.info().world;
    let previous = match &bench.against {
        None => None,
        Some(path) => {
            let (plugin, _) = load(&TestOptions { component: path.clone(), ..options.clone() }).await?;
            let theirs = plugin.info().world;
            if theirs != world {
                return Err(fail(format!(
                    "{} implements the {theirs} world but {} the {world} world: compare two builds of the same plugin",
                    path.display(),
                    options.component.display()
                )));
            }
            Some((path.clone(), plugin))
        }
    };
    let fixtures = match world {
        World::Parser => {
            Inputs::Records(input::raw_records(&options.input, options.records, options.content_type.as_deref())?)
        }
        World::Enricher | World::Aggregator => Inputs::Events(input::events(&options.input)?),
    };
    let fixture_inputs = fixtures.len();
    if fixture_inputs == 0 {
        return Err(fail(format!("{} holds no inputs to benchmark with", options.input.display())));
    }
    let inputs = match fixtures {
        Inputs::Records(r) => Inputs::Records(repeated(r, bench.inputs_per_round)),
        Inputs::Events(e) => Inputs::Events(repeated(e, bench.inputs_per_round)),
    };
    let mut plugins = vec![(options.component.clone(), current)];
    plugins.extend(previous);
    let mut timings: Vec<Vec<f64>> = vec![Vec::new(); plugins.len()];
    for round in 0..=bench.rounds.max(1) {
        for k in 0..plugins.len() {
            // Alternate who goes first, so neither always runs on a warmer machine.
            let which = if round % 2 == 0 { k } else { plugins.len() - 1 - k };
            let (path, plugin) = &plugins[which];
            let elapsed = one_round(plugin, &inputs, options)
                .await
                .map_err(|e| fail(format!("{}: {e}; run weir plugin test on it to see why", path.display())))?;
            if round > 0 {
                timings[which].push(elapsed.as_nanos() as f64 / inputs.len() as f64);
            }
        }
    }
    let mut timings = plugins
        .into_iter()
        .map(|(p, _)| p)
        .zip(timings)
        .map(|(component, ns_per_input)| Timing { component, ns_per_input });
    let current = timings.next().ok_or_else(|| fail("nothing was measured"))?;
    Ok(BenchReport {
        world,
        input: options.input.clone(),
        fixture_inputs,
        inputs_per_round: inputs.len(),
        batch_size: options.batch_size.max(1),
        current,
        previous: timings.next(),
    })
}

/// Feeds every input through the plugin once; the wall time of the calls.
async fn one_round(plugin: &Plugin, inputs: &Inputs, options: &TestOptions) -> Result<Duration, String> {
    let size = options.batch_size.max(1);
    let mut total = Duration::ZERO;
    match inputs {
        Inputs::Records(records) => {
            for chunk in records.chunks(size) {
                let chunk = chunk.to_vec();
                let start = Instant::now();
                plugin.parse("bench", chunk).await.map_err(|e| e.to_string())?;
                total += start.elapsed();
            }
        }
        Inputs::Events(events) if plugin.info().world == World::Enricher => {
            for chunk in events.chunks(size) {
                let columns = Columns::encode(chunk);
                let start = Instant::now();
                plugin.enrich("bench", columns).await.map_err(|e| e.to_string())?;
                total += start.elapsed();
            }
        }
        Inputs::Events(events) => {
            let width = i64::try_from(options.window.as_micros())
                .ok()
                .filter(|w| *w > 0)
                .ok_or("the aggregation window must be positive")?;
            let mut states = GroupStates::new();
            let start = Instant::now();
            for chunk in events.chunks(size) {
                let mut call = CallGroups::default();
                for event in chunk {
                    call.add(Window::of(event.time, width), event.key.as_deref());
                }
                aggregation::accumulate(plugin, "bench", call, chunk, &mut states).await.map_err(|e| e.to_string())?;
            }
            let groups: Vec<FinishedGroup> =
                states.into_iter().map(|((window, key), state)| FinishedGroup { state, window, key }).collect();
            plugin.finish("bench", groups).await.map_err(|e| e.to_string())?;
            total += start.elapsed();
        }
    }
    Ok(total)
}
