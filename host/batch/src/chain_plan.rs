//! The plugin step of a job as a DataFusion plan: a table whose scan reads the period's
//! raw archive files and puts their records through the parser and the enrichers, one
//! partition per group of files. The same plan runs in this process (one partition per
//! worker) or on a Ballista cluster, whose executors rebuild it from its [`ChainSpec`]
//! and load the pinned components themselves (see `cluster.rs`).
//!
//! A partition's output is one row per raw record: the record as archived and what it
//! became — its events, or the plugin, stage and reason of its refusal — so the planner
//! can dead-letter it and name its events exactly as a run in one process does.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use base64::Engine as _;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use weir_events::Event;
use weir_events::json::{value_from_json, value_to_json};
use weir_events::time::parse_rfc3339;
use weir_runtime::RawRecord;

use crate::chain::{ChunkOutput, Refusal, run_chunk};
use crate::error::BatchError;
use crate::plugins::{PinnedPlugin, PluginSource};
use crate::raw_archive::ArchivedRecord;

/// What a partition of the plugin step needs, planned once and sent to every executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpec {
    /// The job (for labels in plugin logs and errors).
    pub job: String,
    /// The run id.
    pub run: String,
    /// The lake sink the raw archive is read from, by name in the configuration.
    pub lake: String,
    /// Records that arrived in `[from, to)` (µs) are read; others in the files are not.
    pub from: i64,
    pub to: i64,
    /// The raw archive files (object paths in the lake) of each partition.
    pub partitions: Vec<Vec<String>>,
    /// The parser, then each enricher in order.
    pub plugins: Vec<PinnedPlugin>,
    /// Records per plugin call.
    pub batch_size: usize,
}

/// What running the plugin step needs in a process: the lakes and the plugins.
#[derive(Clone)]
pub struct ChainEnv {
    lakes: BTreeMap<String, Arc<dyn ObjectStore>>,
    plugins: PluginSource,
}

impl fmt::Debug for ChainEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainEnv").field("lakes", &self.lakes.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl ChainEnv {
    /// The lakes jobs read (object store by lake sink name) and the plugins' source.
    pub fn new(lakes: BTreeMap<String, Arc<dyn ObjectStore>>, plugins: PluginSource) -> Self {
        Self { lakes, plugins }
    }
}

/// The columns of the plugin step's output.
pub(crate) static CHAIN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("id", false),
        text("key", true),
        text("content_type", false),
        Field::new("arrival_time", DataType::Int64, false),
        Field::new("data", DataType::Binary, false),
        // The record's events as JSON (see `encode_events`); null when it was refused.
        text("events", true),
        text("plugin", true),
        text("stage", true),
        text("reason", true),
    ]))
});

/// The plugin step as a table: scanning it runs the step.
#[derive(Debug)]
pub(crate) struct ChainTable {
    pub(crate) spec: Arc<ChainSpec>,
    /// `None` where plans are only made (the client and scheduler of a cluster).
    pub(crate) env: Option<Arc<ChainEnv>>,
}

#[async_trait::async_trait]
impl TableProvider for ChainTable {
    fn schema(&self) -> SchemaRef {
        CHAIN_SCHEMA.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize> = (0..CHAIN_SCHEMA.fields().len()).collect();
        if projection.is_some_and(|p| *p != all) {
            return Err(DataFusionError::NotImplemented("the plugin step is read whole".into()));
        }
        // The files travel as data, one partition of paths per partition of the step:
        // Ballista gives each task only its partitions of an in-memory source, while it
        // would hand a leaf of its own kind every partition (each task running them all).
        let schema = FILES_SCHEMA.clone();
        let mut partitions = Vec::with_capacity(self.spec.partitions.len().max(1));
        for files in &self.spec.partitions {
            let column: ArrayRef = Arc::new(StringArray::from(files.clone()));
            partitions.push(vec![RecordBatch::try_new(schema.clone(), vec![column])?]);
        }
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        let files = MemorySourceConfig::try_new_exec(&partitions, schema, None)?;
        let spec = Arc::new(ChainSpec { partitions: Vec::new(), ..(*self.spec).clone() });
        Ok(Arc::new(ChainExec::new(spec, self.env.clone(), files)))
    }
}

/// The plugin step's input: the raw archive files of each partition.
static FILES_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| Arc::new(Schema::new(vec![Field::new("file", DataType::Utf8, false)])));

/// The plugin step's execution plan: over an input of file paths, one output partition
/// per input partition.
#[derive(Debug)]
pub(crate) struct ChainExec {
    pub(crate) spec: Arc<ChainSpec>,
    pub(crate) env: Option<Arc<ChainEnv>>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ChainExec {
    pub(crate) fn new(spec: Arc<ChainSpec>, env: Option<Arc<ChainEnv>>, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(CHAIN_SCHEMA.clone()),
            Partitioning::UnknownPartitioning(input.properties().output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self { spec, env, input, properties: Arc::new(properties) }
    }
}

impl DisplayAs for ChainExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plugins: Vec<String> = self
            .spec
            .plugins
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version.as_deref().unwrap_or("file")))
            .collect();
        write!(f, "WeirPluginStepExec: job={} run={} plugins={}", self.spec.job, self.spec.run, plugins.join(">"))
    }
}

impl ExecutionPlan for ChainExec {
    fn name(&self) -> &str {
        "WeirPluginStepExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Self::new(self.spec.clone(), self.env.clone(), input))),
            Err(_) => Err(DataFusionError::Internal("the plugin step has one input".into())),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let env = self.env.clone().ok_or_else(|| {
            DataFusionError::Execution(
                "the plugin step runs only on a weir executor (`weir batch executor`), which loads the plugins".into(),
            )
        })?;
        let mut input = self.input.execute(partition, context)?;
        // One partition's batches through a small channel: the plugins run ahead of the
        // reader by at most two batches, and stop when the reader goes away.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<DfResult<RecordBatch>>(2);
        let spec = self.spec.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt as _;
            let mut files = Vec::new();
            while let Some(batch) = input.next().await {
                match batch {
                    Ok(batch) => {
                        if let Some(column) = batch.column_by_name("file") {
                            let column = column.as_string::<i32>();
                            files.extend((0..column.len()).map(|i| column.value(i).to_owned()));
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if let Err(e) = run_partition(&spec, &env, &files, &tx).await {
                let _ = tx.send(Err(DataFusionError::External(Box::new(e)))).await;
            }
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Box::pin(RecordBatchStreamAdapter::new(CHAIN_SCHEMA.clone(), stream)))
    }
}

/// Reads `files` and sends each chunk of records, through the plugins, as a batch.
async fn run_partition(
    spec: &ChainSpec,
    env: &ChainEnv,
    files: &[String],
    tx: &tokio::sync::mpsc::Sender<DfResult<RecordBatch>>,
) -> Result<(), BatchError> {
    let lake = env.lakes.get(&spec.lake).ok_or_else(|| {
        BatchError::Invalid(format!("the lake {} the job reads is not in this process's configuration", spec.lake))
    })?;
    let (parser_pin, enricher_pins) =
        spec.plugins.split_first().ok_or_else(|| BatchError::Invalid("the plugin step has no parser".into()))?;
    let parser = env.plugins.load_pinned(parser_pin).await?;
    let mut enrichers = Vec::with_capacity(enricher_pins.len());
    for pin in enricher_pins {
        enrichers.push(env.plugins.load_pinned(pin).await?);
    }
    let label = format!("job {} run {}", spec.job, spec.run);
    tracing::info!(job = %spec.job, run = %spec.run, files = files.len(), "plugin step partition started");
    for file in files {
        let bytes = lake
            .get(&ObjectPath::from(file.as_str()))
            .await
            .map_err(|e| BatchError::Archive(format!("{file}: {e}")))?
            .bytes()
            .await
            .map_err(|e| BatchError::Archive(format!("{file}: {e}")))?;
        let records = parse_archive(&bytes, file, spec.from, spec.to)?;
        for chunk in records.chunks(spec.batch_size.max(1)) {
            let raw: Vec<RawRecord> = chunk.iter().map(|a| a.record.clone()).collect();
            let output = run_chunk(&parser, &enrichers, &label, 0, &raw).await;
            let batch = chunk_batch(chunk, output)?;
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One line of the raw archive, as the lake writes it (`weir_sinks::push_raw_line`).
#[derive(Deserialize)]
struct ArchiveLine {
    id: String,
    key: Option<String>,
    content_type: Option<String>,
    arrival_time: String,
    data: Option<String>,
    data_base64: Option<String>,
}

/// The records of an archive file that arrived in `[from, to)`.
fn parse_archive(bytes: &[u8], file: &str, from: i64, to: i64) -> Result<Vec<ArchivedRecord>, BatchError> {
    let mut records = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |why: String| BatchError::Archive(format!("{file} line {}: {why}", n + 1));
        let line: ArchiveLine =
            serde_json::from_slice(line).map_err(|e| bad(format!("not a raw archive line: {e}")))?;
        let arrival_time = parse_rfc3339(&line.arrival_time).map_err(bad)?;
        if arrival_time < from || arrival_time >= to {
            continue;
        }
        let data = match (line.data, line.data_base64) {
            (Some(text), _) => text.into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| bad(format!("data_base64 is not base64: {e}")))?,
            (None, None) => Vec::new(),
        };
        records.push(ArchivedRecord {
            id: line.id,
            record: RawRecord {
                data,
                key: line.key,
                content_type: line.content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                arrival_time,
            },
        });
    }
    Ok(records)
}

/// A chunk's rows: each record with its events or its refusal.
fn chunk_batch(chunk: &[ArchivedRecord], output: ChunkOutput) -> Result<RecordBatch, BatchError> {
    let mut events: Vec<Vec<Event>> = vec![Vec::new(); chunk.len()];
    for (record, _, event) in output.events {
        if let Some(list) = events.get_mut(record) {
            list.push(event);
        }
    }
    let mut refused: Vec<Option<Refusal>> = vec![None; chunk.len()];
    for refusal in output.refused {
        let record = refusal.record;
        if let Some(slot) = refused.get_mut(record) {
            slot.get_or_insert(refusal);
        }
    }
    let text = |values: Vec<Option<String>>| Arc::new(StringArray::from(values)) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        text(chunk.iter().map(|a| Some(a.id.clone())).collect()),
        text(chunk.iter().map(|a| a.record.key.clone()).collect()),
        text(chunk.iter().map(|a| Some(a.record.content_type.clone())).collect()),
        Arc::new(Int64Array::from(chunk.iter().map(|a| a.record.arrival_time).collect::<Vec<_>>())),
        Arc::new(BinaryArray::from(chunk.iter().map(|a| a.record.data.as_slice()).collect::<Vec<_>>())),
        text(refused.iter().zip(&events).map(|(r, e)| r.is_none().then(|| encode_events(e))).collect()),
        text(refused.iter().map(|r| r.as_ref().map(|r| r.plugin.clone())).collect()),
        text(refused.iter().map(|r| r.as_ref().map(|r| r.stage.to_owned())).collect()),
        text(refused.iter().map(|r| r.as_ref().map(|r| r.reason.clone())).collect()),
    ];
    RecordBatch::try_new(CHAIN_SCHEMA.clone(), columns).map_err(|e| BatchError::Engine(e.to_string()))
}

/// Events as JSON that keeps the order of their fields: `[{"key","time","fields":[[name,
/// value], …]}, …]`, values in weir's JSON form.
fn encode_events(events: &[Event]) -> String {
    let list: Vec<Json> = events
        .iter()
        .map(|event| {
            let fields: Vec<Json> = event
                .fields
                .iter()
                .map(|(name, value)| Json::from(vec![Json::from(&**name), value_to_json(value)]))
                .collect();
            serde_json::json!({ "key": event.key, "time": event.time, "fields": fields })
        })
        .collect();
    Json::Array(list).to_string()
}

fn decode_events(text: &str) -> Result<Vec<Event>, String> {
    let list: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let malformed = || "malformed events of the plugin step".to_owned();
    let mut events = Vec::new();
    for item in list.as_array().ok_or_else(malformed)? {
        let mut event = Event::new(item["time"].as_i64().ok_or_else(malformed)?);
        event.key = item["key"].as_str().map(str::to_owned);
        for pair in item["fields"].as_array().ok_or_else(malformed)? {
            let (Some(name), Some(value)) = (pair[0].as_str(), pair.get(1)) else { return Err(malformed()) };
            event.fields.push((Arc::from(name), value_from_json(value)?));
        }
        events.push(event);
    }
    Ok(events)
}

/// The bytes of the records' data in a batch of the plugin step's output.
pub(crate) fn data_bytes(batch: &RecordBatch) -> u64 {
    let data = batch.column_by_name("data").and_then(|data| data.as_binary_opt::<i32>());
    data.map_or(0, |data| offsets_span(data.value_offsets()))
}

/// The bytes of a variable-length column's values, from its offsets.
fn offsets_span(offsets: &[i32]) -> u64 {
    let (first, last) = (offsets.first().copied().unwrap_or(0), offsets.last().copied().unwrap_or(0));
    u64::try_from(last - first).unwrap_or(0)
}

/// About how many bytes of the raw archive a batch of the plugin step's output was read
/// from, for a run's progress: each record's line holds its data JSON-escaped (about an
/// eighth more for JSON payloads), its id and the parts the id is made of, its key and
/// content type, and about 110 bytes of member names, quotes and arrival time.
pub(crate) fn archive_line_bytes(batch: &RecordBatch) -> u64 {
    let text_bytes = |name: &str| {
        let text = batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>());
        text.map_or(0, |text| offsets_span(text.value_offsets()))
    };
    let data = data_bytes(batch);
    data + data / 8
        + 2 * text_bytes("id")
        + text_bytes("key")
        + text_bytes("content_type")
        + 110 * batch.num_rows() as u64
}

/// One record of the plugin step's output, decoded: the record, and its events or why a
/// plugin refused it (plugin, stage, reason).
pub(crate) struct OutputRow {
    archived: ArchivedRecord,
    outcome: Result<Vec<Event>, (String, String, String)>,
}

/// Decodes a batch of the plugin step's output into `rows`, so that the caller decodes
/// while the partitions still run and drops each batch at once.
pub(crate) fn decode_rows(batch: &RecordBatch, rows: &mut Vec<OutputRow>) -> Result<(), BatchError> {
    let lost = || BatchError::Engine("the plugin step's output lost a column".into());
    let text = |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>()).ok_or_else(lost);
    let (id, key, content_type, events, plugin, stage, reason) = (
        text("id")?,
        text("key")?,
        text("content_type")?,
        text("events")?,
        text("plugin")?,
        text("stage")?,
        text("reason")?,
    );
    let arrival = batch.column_by_name("arrival_time").ok_or_else(lost)?.as_primitive::<Int64Type>();
    let data = batch.column_by_name("data").ok_or_else(lost)?.as_binary::<i32>();
    let optional = |column: &StringArray, row: usize| (!column.is_null(row)).then(|| column.value(row).to_owned());
    for row in 0..batch.num_rows() {
        let outcome = if events.is_null(row) {
            Err((
                optional(plugin, row).unwrap_or_default(),
                optional(stage, row).unwrap_or_default(),
                optional(reason, row).unwrap_or_default(),
            ))
        } else {
            Ok(decode_events(events.value(row)).map_err(BatchError::Engine)?)
        };
        rows.push(OutputRow {
            archived: ArchivedRecord {
                id: id.value(row).to_owned(),
                record: RawRecord {
                    data: data.value(row).to_vec(),
                    key: optional(key, row),
                    content_type: content_type.value(row).to_owned(),
                    arrival_time: arrival.value(row),
                },
            },
            outcome,
        });
    }
    Ok(())
}

/// The plugin step's output in record id order: the records, and their events and
/// refusals by index into them — what a run in one process computes.
pub(crate) fn in_id_order(mut rows: Vec<OutputRow>) -> (Vec<ArchivedRecord>, ChunkOutput) {
    rows.sort_by(|a, b| a.archived.id.cmp(&b.archived.id));
    let mut archived = Vec::with_capacity(rows.len());
    let mut output = ChunkOutput::default();
    for (index, row) in rows.into_iter().enumerate() {
        match row.outcome {
            Ok(events) => output.events.extend(events.into_iter().enumerate().map(|(n, e)| (index, n as u32, e))),
            Err((plugin, stage, reason)) => output.refused.push(Refusal {
                record: index,
                plugin,
                stage: if stage == "parse" { "parse" } else { "enrich" },
                reason,
            }),
        }
        archived.push(row.archived);
    }
    (archived, output)
}

/// The raw archive files of `stream` in the dates `[from, to)` touches, with their sizes,
/// from the `date=` partitions of those dates only.
pub(crate) async fn archive_files(
    lake: &dyn ObjectStore,
    stream: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(String, u64)>, BatchError> {
    use futures_util::TryStreamExt as _;
    const DAY: i64 = 86_400_000_000;
    let mut files = Vec::new();
    let mut day = from.div_euclid(DAY) * DAY;
    while day < to {
        let prefix = ObjectPath::from(format!("raw/stream={stream}/date={}", weir_sinks::date_of(day)));
        let listed: Vec<_> = lake
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| BatchError::Archive(format!("cannot list {prefix}: {e}")))?;
        files.extend(
            listed
                .into_iter()
                .filter(|meta| meta.location.as_ref().ends_with(".ndjson"))
                .map(|meta| (meta.location.to_string(), meta.size)),
        );
        day += DAY;
    }
    files.sort();
    Ok(files)
}

/// `files` in at most `partitions` groups of about equal bytes (largest file first into
/// the lightest group); at least one group, empty when there are no files.
pub(crate) fn partition_files(mut files: Vec<(String, u64)>, partitions: usize) -> Vec<Vec<String>> {
    let count = partitions.max(1).min(files.len().max(1));
    let mut groups: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); count];
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (file, size) in files {
        if let Some(lightest) = groups.iter_mut().min_by_key(|(bytes, _)| *bytes) {
            lightest.0 += size.max(1);
            lightest.1.push(file);
        }
    }
    groups.into_iter().map(|(_, files)| files).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_events::Value;

    #[test]
    fn events_keep_their_field_order_and_value_kinds_through_the_plan() {
        let mut event = Event::new(1_764_547_200_000_000);
        event.key = Some("r-1".into());
        event.fields = vec![
            (Arc::from("zeta"), Value::Float(1.0)),
            (Arc::from("alpha"), Value::Int(7)),
            (Arc::from("when"), Value::Timestamp(5)),
            (Arc::from("raw"), Value::Bytes(vec![0, 255])),
            (Arc::from("none"), Value::Null),
        ];
        let decoded = decode_events(&encode_events(std::slice::from_ref(&event))).unwrap();
        assert_eq!(decoded, vec![event]);
    }

    #[test]
    fn files_are_spread_by_size_over_the_partitions() {
        let files = vec![("a".into(), 100), ("b".into(), 60), ("c".into(), 50), ("d".into(), 10)];
        let groups = partition_files(files, 2);
        assert_eq!(groups, vec![vec!["a".to_owned(), "d".to_owned()], vec!["b".to_owned(), "c".to_owned()]]);
        assert_eq!(partition_files(Vec::new(), 4), vec![Vec::<String>::new()]);
        assert_eq!(partition_files(vec![("x".into(), 1)], 8).len(), 1);
    }
}
