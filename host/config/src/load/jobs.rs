//! `[[jobs]]` and `[[jobs.levels]]`, checked against the streams, plugins and sinks.

use std::collections::BTreeMap;

use toml::de::DeValue;
use weir_runtime::World;

use super::{Loader, root_key};
use crate::document::{KeyPath, Value, describe};
use crate::job::{JobConfig, JobLevel, JobTable, LevelCompute, Schedule, TableFormat};
use crate::{ByteSize, HumanDuration, OutputKind, ReferenceConfig, StreamConfig};

const JOB_KEYS: &[&str] = &[
    "name",
    "stream",
    "input",
    "parser",
    "enrichers",
    "period",
    "lateness",
    "schedule",
    "batch_size",
    "max_input_bytes",
    "events",
    "dead_letters",
    "tables",
    "levels",
];
const TABLE_KEYS: &[&str] = &["name", "path", "reference", "format", "partitions"];
const LEVEL_KEYS: &[&str] =
    &["name", "sql", "aggregator", "window", "key_field", "sinks", "replaces_stream_aggregates"];
const DEFAULT_JOB_BATCH_SIZE: usize = 1024;
/// A run holds its period in memory, up to about 9× the raw archive's bytes (BENCHMARKS.md:
/// 2 million orders, 736 MB of archive, 6.7 GB at the peak): 1 GiB of records is ~9 GiB.
const DEFAULT_MAX_INPUT_BYTES: ByteSize = ByteSize::gib(1);
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

impl Loader<'_> {
    pub(super) fn jobs(
        &mut self,
        value: Option<&Value<'_>>,
        streams: &[StreamConfig],
        references: &BTreeMap<String, ReferenceConfig>,
    ) -> Vec<JobConfig> {
        let Some(value) = value else { return Vec::new() };
        let path = root_key("jobs");
        let DeValue::Array(array) = value.get_ref() else {
            let message = format!(
                "expected an array of tables (one [[jobs]] header per job), found {}",
                describe(value.get_ref())
            );
            self.report.error(&path, Some(value.span()), message);
            return Vec::new();
        };
        let mut seen = BTreeMap::new();
        array
            .iter()
            .enumerate()
            .filter_map(|(index, element)| self.job(element, path.index(index), streams, references, &mut seen))
            .collect()
    }

    fn job(
        &mut self,
        value: &Value<'_>,
        path: KeyPath,
        streams: &[StreamConfig],
        references: &BTreeMap<String, ReferenceConfig>,
        seen: &mut BTreeMap<String, usize>,
    ) -> Option<JobConfig> {
        let table = self.report.table(value, path, Some(JOB_KEYS))?;
        let name = self.report.require::<String>(&table, "name", "the job's name, e.g. \"restaurant-daily\"");
        if let Some(name) = &name
            && self.check_name(&name.path, &name.span, &name.value, "job")
        {
            let line = self.report.line(&name.span);
            if let Some(first) = seen.get(&name.value) {
                let message = format!("job {:?} is already defined at line {first}", name.value);
                self.report.error(&name.path, Some(name.span.clone()), message);
            } else {
                seen.insert(name.value.clone(), line);
            }
        }
        let stream_name =
            self.report.require::<String>(&table, "stream", "the name of the stream whose raw archive the job reads");
        let stream = match &stream_name {
            Some(wanted) => match streams.iter().find(|s| s.name == wanted.value) {
                Some(stream) => Some(stream),
                None => {
                    let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
                    let message =
                        format!("unknown stream {:?}; defined streams are: {}", wanted.value, names.join(", "));
                    self.report.error(&wanted.path, Some(wanted.span.clone()), message);
                    None
                }
            },
            None => None,
        };

        let is_lake = |loader: &Self, sink: &str| {
            loader.sink_types.get(sink).is_some_and(|t| t.is_some_and(|t| t.as_str() == "lake"))
        };
        let input = match self.report.get::<String>(&table, "input") {
            Some(input) => {
                if !is_lake(self, &input.value) && self.sink_types.get(&input.value).is_none_or(Option::is_some) {
                    let message = format!(
                        "{:?} is not a sink of type lake; the job reads the raw archive a lake sink holds",
                        input.value
                    );
                    self.report.error(&input.path, Some(input.span.clone()), message);
                }
                Some(input.value)
            }
            None => {
                let found = stream.and_then(|s| s.routes.raw.iter().find(|sink| is_lake(self, sink)).cloned());
                if found.is_none() && stream.is_some() {
                    self.report.error(
                        &table.path.key("input"),
                        Some(table.span.clone()),
                        "the stream routes its raw records to no lake sink, so there is no raw archive to read; \
                         add a lake sink to its raw route, or name one with input = \"…\"",
                    );
                }
                found
            }
        };

        let parser = match self.report.get::<String>(&table, "parser") {
            Some(parser) => {
                self.plugin_ref(&parser, World::Parser);
                Some(parser.value)
            }
            None => stream.map(|s| s.parser.clone()),
        };
        let enrichers = match self.report.list::<String>(&table, "enrichers") {
            Some(list) => {
                for enricher in &list {
                    self.plugin_ref(enricher, World::Enricher);
                }
                list.into_iter().map(|e| e.value).collect()
            }
            None => stream.map(|s| s.enrichers.clone()).unwrap_or_default(),
        };
        let period = self
            .report
            .get::<HumanDuration>(&table, "period")
            .and_then(|p| self.positive(p))
            .map_or(HumanDuration(DAY), |p| p.value);
        let lateness = self
            .report
            .get::<HumanDuration>(&table, "lateness")
            .map_or(HumanDuration(std::time::Duration::from_secs(3600)), |l| l.value);
        let schedule = self.report.get::<String>(&table, "schedule").and_then(|text| {
            Schedule::parse(&text.value)
                .map_err(|message| self.report.error(&text.path, Some(text.span.clone()), message))
                .ok()
        });
        let batch_size = self
            .count(&table, "batch_size", 1, super::MAX_BATCH_SIZE)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_JOB_BATCH_SIZE);
        let max_input_bytes = self
            .report
            .get::<ByteSize>(&table, "max_input_bytes")
            .and_then(|size| self.positive(size))
            .map_or(DEFAULT_MAX_INPUT_BYTES, |size| size.value);
        let events = self.sink_list(&table, "events", OutputKind::Events).unwrap_or_default();
        let dead_letters = self
            .sink_list(&table, "dead_letters", OutputKind::DeadLetters)
            .or_else(|| stream.map(|s| s.routes.dead_letters.clone()))
            .unwrap_or_default();
        let tables = self.tables(&table, references);
        let levels = self.levels(&table, period, stream);
        Some(JobConfig {
            name: name?.value,
            stream: stream_name?.value,
            input: input?,
            parser: parser?,
            enrichers,
            period,
            lateness,
            schedule,
            batch_size,
            max_input_bytes,
            events,
            dead_letters,
            tables,
            levels: levels?,
        })
    }

    /// `[[jobs.tables]]`.
    fn tables(&mut self, job: &super::Table<'_, '_>, references: &BTreeMap<String, ReferenceConfig>) -> Vec<JobTable> {
        let Some(value) = job.get("tables") else { return Vec::new() };
        let path = job.path.key("tables");
        let DeValue::Array(array) = value.get_ref() else {
            let message = format!(
                "expected an array of tables (one [[jobs.tables]] header per table), found {}",
                describe(value.get_ref())
            );
            self.report.error(&path, Some(value.span()), message);
            return Vec::new();
        };
        let mut names: Vec<String> = Vec::new();
        let mut tables = Vec::new();
        for (index, element) in array.iter().enumerate() {
            let Some(table) = self.report.table(element, path.index(index), Some(TABLE_KEYS)) else { continue };
            let name = self.report.require::<String>(&table, "name", "the SQL name of the table, e.g. \"payments\"");
            if let Some(name) = &name {
                let valid = !name.value.is_empty()
                    && name.value.len() <= 64
                    && name.value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !name.value.starts_with(|c: char| c.is_ascii_digit());
                if !valid || name.value == "events" || names.contains(&name.value) {
                    let message = format!(
                        "{:?} cannot name a table: expected 1 to 64 characters among a-z, 0-9 and '_', not starting \
                         with a digit, not \"events\" (the run's events) and not used by another table of the job",
                        name.value
                    );
                    self.report.error(&name.path, Some(name.span.clone()), message);
                }
                names.push(name.value.clone());
            }
            let reference = self.report.get::<String>(&table, "reference");
            if let Some(reference) = &reference {
                match references.get(&reference.value).map(|r| &r.source) {
                    Some(crate::ReferenceSource::File(_)) => {}
                    Some(_) => {
                        let message = format!(
                            "reference table {:?} is not of type file; a job reads only file reference tables as SQL \
                             tables (export the others to the lake and name their prefix in `path`)",
                            reference.value
                        );
                        self.report.error(&reference.path, Some(reference.span.clone()), message);
                    }
                    None => {
                        let known: Vec<&str> = references.keys().map(String::as_str).collect();
                        let message = format!(
                            "no [reference.{}]; the reference tables are: {}",
                            reference.value,
                            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                        );
                        self.report.error(&reference.path, Some(reference.span.clone()), message);
                    }
                }
                if table.get("path").is_some() {
                    self.report.error(
                        &reference.path,
                        Some(reference.span.clone()),
                        "give `path` (a lake prefix) or `reference` (a reference table), not both",
                    );
                }
            }
            let prefix = match &reference {
                Some(reference) => Some(crate::document::Located {
                    value: String::new(),
                    span: reference.span.clone(),
                    path: reference.path.clone(),
                }),
                None => self.report.require::<String>(
                    &table,
                    "path",
                    "the prefix in the lake, e.g. \"events/stream=payments\" (or `reference` for a reference table)",
                ),
            };
            if let Some(prefix) = prefix.as_ref().filter(|_| reference.is_none())
                && (prefix.value.is_empty()
                    || prefix.value.starts_with('/')
                    || prefix.value.split('/').any(|part| part == ".." || part == "."))
            {
                let message = format!(
                    "{:?} is not a prefix inside the lake; write it relative to the lake's root, e.g. \
                     \"events/stream=payments\"",
                    prefix.value
                );
                self.report.error(&prefix.path, Some(prefix.span.clone()), message);
            }
            let format = match self.report.get::<String>(&table, "format") {
                None => TableFormat::Parquet,
                Some(f) if f.value == "parquet" => TableFormat::Parquet,
                Some(f) if f.value == "ndjson" => TableFormat::Ndjson,
                Some(f) => {
                    let message = format!("unknown format {:?}; expected \"parquet\" or \"ndjson\"", f.value);
                    self.report.error(&f.path, Some(f.span.clone()), message);
                    TableFormat::Parquet
                }
            };
            let partitions = self
                .report
                .list::<String>(&table, "partitions")
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.value)
                .collect();
            if let (Some(name), Some(prefix)) = (name, prefix) {
                tables.push(JobTable {
                    name: name.value,
                    path: prefix.value.trim_end_matches('/').to_owned(),
                    reference: reference.map(|r| r.value),
                    format,
                    partitions,
                });
            }
        }
        tables
    }

    /// The sinks listed at `key`, each checked to take `output`.
    fn sink_list(&mut self, table: &super::Table<'_, '_>, key: &str, output: OutputKind) -> Option<Vec<String>> {
        let list = self.report.list::<String>(table, key)?;
        let mut sinks = Vec::new();
        for sink in list {
            self.sink_ref(&sink, output);
            if sinks.contains(&sink.value) {
                let message = format!("sink {:?} is listed twice", sink.value);
                self.report.error(&sink.path, Some(sink.span), message);
            } else {
                sinks.push(sink.value);
            }
        }
        Some(sinks)
    }

    fn levels(
        &mut self,
        job: &super::Table<'_, '_>,
        period: HumanDuration,
        stream: Option<&StreamConfig>,
    ) -> Option<Vec<JobLevel>> {
        let path = job.path.key("levels");
        let missing = "the job computes nothing; add a [[jobs.levels]] table with a name, an sql query or an \
                       aggregator, and its sinks";
        let Some(value) = job.get("levels") else {
            self.report.error(&path, Some(job.span.clone()), missing);
            return None;
        };
        let DeValue::Array(array) = value.get_ref() else {
            let message = format!(
                "expected an array of tables (one [[jobs.levels]] header per level), found {}",
                describe(value.get_ref())
            );
            self.report.error(&path, Some(value.span()), message);
            return None;
        };
        if array.is_empty() {
            self.report.error(&path, Some(value.span()), missing);
        }
        let mut names: Vec<String> = Vec::new();
        let mut levels = Vec::new();
        let mut complete = true;
        for (index, element) in array.iter().enumerate() {
            match self.level(element, path.index(index), period, stream, &mut names) {
                Some(level) => levels.push(level),
                None => complete = false,
            }
        }
        complete.then_some(levels)
    }

    fn level(
        &mut self,
        value: &Value<'_>,
        path: KeyPath,
        period: HumanDuration,
        stream: Option<&StreamConfig>,
        names: &mut Vec<String>,
    ) -> Option<JobLevel> {
        let table = self.report.table(value, path, Some(LEVEL_KEYS))?;
        let name = self.report.require::<String>(&table, "name", "the level's name, e.g. \"restaurant-day\"");
        if let Some(name) = &name
            && self.check_name(&name.path, &name.span, &name.value, "level")
        {
            if names.contains(&name.value) {
                let message = format!("level {:?} is already defined in this job", name.value);
                self.report.error(&name.path, Some(name.span.clone()), message);
            }
            names.push(name.value.clone());
        }
        let sql = self.report.get::<String>(&table, "sql");
        let aggregator = self.report.get::<String>(&table, "aggregator");
        let window = self.report.get::<HumanDuration>(&table, "window").and_then(|w| self.positive(w));
        let key_field = self.report.get::<String>(&table, "key_field");
        let compute = match (sql, aggregator) {
            (Some(sql), None) => {
                if sql.value.trim().is_empty() {
                    self.report.error(&sql.path, Some(sql.span.clone()), "the query is empty");
                }
                for (key, located) in [
                    ("window", window.as_ref().map(|w| (&w.path, &w.span))),
                    ("key_field", key_field.as_ref().map(|k| (&k.path, &k.span))),
                ] {
                    if let Some((path, span)) = located {
                        let message = format!("{key} applies to an aggregator level; an sql level groups in its query");
                        self.report.error(path, Some(span.clone()), message);
                    }
                }
                Some(LevelCompute::Sql(sql.value))
            }
            (None, Some(plugin)) => {
                self.plugin_ref(&plugin, World::Aggregator);
                Some(LevelCompute::Aggregator {
                    plugin: plugin.value,
                    window: window.map_or(period, |w| w.value),
                    key_field: key_field.map(|k| k.value),
                })
            }
            (Some(sql), Some(_)) => {
                self.report.error(&sql.path, Some(sql.span.clone()), "a level has either sql or aggregator, not both");
                None
            }
            (None, None) => {
                self.report.error(
                    &table.path,
                    Some(table.span.clone()),
                    "the level computes nothing; give it sql = \"SELECT … FROM events GROUP BY …\" or aggregator = \
                     \"<plugin>\"",
                );
                None
            }
        };
        let sinks = match self.sink_list(&table, "sinks", OutputKind::Aggregates) {
            Some(sinks) => Some(sinks),
            None => {
                self.report.error(
                    &table.path.key("sinks"),
                    Some(table.span.clone()),
                    "missing; expected the sinks the level's rows go to, e.g. [\"lake\", \"warehouse\"] (an empty \
                     list computes and writes nothing)",
                );
                None
            }
        };
        let replaces = self.report.get::<bool>(&table, "replaces_stream_aggregates");
        if let (Some(flag), Some(compute), Some(stream)) = (&replaces, &compute, stream)
            && flag.value
        {
            let same = match (compute, &stream.aggregator) {
                (LevelCompute::Aggregator { plugin, window, key_field: None }, Some(a)) => {
                    *plugin == a.plugin && *window == a.window
                }
                _ => false,
            };
            if !same {
                let message = match &stream.aggregator {
                    Some(a) => format!(
                        "only a level that recomputes the stream's aggregates can replace them: aggregator = {:?}, \
                         window = \"{}\" and no key_field, as in [streams.aggregator] of {:?}",
                        a.plugin, a.window, stream.name
                    ),
                    None => format!("stream {:?} has no aggregator, so it has no aggregates to replace", stream.name),
                };
                self.report.error(&flag.path, Some(flag.span.clone()), message);
            }
        }
        Some(JobLevel {
            name: name?.value,
            compute: compute?,
            sinks: sinks?,
            replaces_stream_aggregates: replaces.is_some_and(|f| f.value),
        })
    }
}
