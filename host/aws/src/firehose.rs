//! The raw archive through Amazon Data Firehose: each raw record as its line of the lake's
//! raw archive, sent with `PutRecordBatch`.

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use tokio::sync::OnceCell;
use weir_sinks::{Sink, SinkCommit, SinkError, SinkFuture, SinkItem, WriteReport};

/// Records per `PutRecordBatch` call, at most (Firehose's limit).
pub const MAX_BATCH_RECORDS: usize = 500;
/// Bytes per `PutRecordBatch` call, at most (Firehose's limit).
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Bytes per record, at most (Firehose's limit: 1 000 KiB); a larger one is rejected and
/// dead-lettered.
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// Where a [`FirehoseSink`] sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirehoseSettings {
    /// The delivery stream's name.
    pub delivery_stream: String,
    /// The region; `None`: the standard chain's.
    pub region: Option<String>,
    /// Firehose's endpoint; `None`: AWS's for the region.
    pub endpoint: Option<String>,
}

/// The raw archive through a Firehose delivery stream (which writes it to S3 with keys of
/// its own choosing).
///
/// Each raw record becomes one Firehose record: its line of the lake's raw archive
/// ([`weir_sinks::push_raw_line`], newline included), so the archive Firehose writes
/// reads like the lake's. Calls carry at most [`MAX_BATCH_RECORDS`] records and
/// [`MAX_BATCH_BYTES`]; a record over [`MAX_RECORD_BYTES`] is rejected (dead-lettered with
/// the reason) before anything is sent. The entries a response marks failed
/// (`FailedPutCount`) are reported failed and retried alone; a call that fails as a whole
/// fails every record it carried. A record is reported written only when Firehose's
/// response for it carries a record id.
///
/// Firehose chooses the S3 keys, so a replay after a crash archives the replayed records
/// again: every line carries its record's `id` (the same on every replay) for readers to
/// drop duplicates.
#[derive(Debug)]
pub struct FirehoseSink {
    name: String,
    settings: FirehoseSettings,
    static_credentials: Option<(String, String)>,
    client: OnceCell<aws_sdk_firehose::Client>,
}

impl FirehoseSink {
    /// A sink named `name` sending to `settings.delivery_stream`, with credentials from
    /// the standard AWS chain, else `static_credentials` (for local servers). The client
    /// is made on the first write.
    pub fn new(name: &str, settings: FirehoseSettings, static_credentials: Option<(String, String)>) -> Self {
        Self { name: name.to_owned(), settings, static_credentials, client: OnceCell::new() }
    }

    async fn client(&self) -> &aws_sdk_firehose::Client {
        self.client
            .get_or_init(|| async {
                let sdk = crate::sdk_config(self.settings.region.as_deref(), self.static_credentials.as_ref()).await;
                let mut config = aws_sdk_firehose::config::Builder::from(&sdk);
                if let Some(endpoint) = &self.settings.endpoint {
                    config = config.endpoint_url(endpoint);
                }
                aws_sdk_firehose::Client::from_conf(config.build())
            })
            .await
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let mut report = WriteReport::all_written();
        // (index in the commit, line) of every raw record that fits.
        let mut lines: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, record) in commit.records.iter().enumerate() {
            if !matches!(record.item, SinkItem::Raw(_)) {
                continue;
            }
            let mut line = Vec::new();
            weir_sinks::push_raw_line(&mut line, commit, record).map_err(|message| SinkError::Encode {
                sink: self.name.clone(),
                target: self.settings.delivery_stream.clone(),
                message,
            })?;
            if line.len() > MAX_RECORD_BYTES {
                let why = format!(
                    "its archive line is {} bytes and Firehose takes at most {MAX_RECORD_BYTES} bytes per record; \
                     it stays in the lake's raw archive if the stream routes raw records there",
                    line.len()
                );
                report.rejected.push((i, why));
            } else {
                lines.push((i, line));
            }
        }
        let client = self.client().await;
        for batch in batches(&lines) {
            // Each line moves into its call's record, not copied.
            let indices: Vec<usize> = lines[batch.clone()].iter().map(|(i, _)| *i).collect();
            let data: Vec<Vec<u8>> = lines[batch].iter_mut().map(|(_, line)| std::mem::take(line)).collect();
            report.failed.extend(self.put_batch(client, &indices, data).await);
        }
        Ok(report)
    }

    /// Sends one batch (`data[i]` is the line of commit record `batch[i]`); returns the
    /// indices of its records that were not accepted.
    async fn put_batch(
        &self,
        client: &aws_sdk_firehose::Client,
        batch: &[usize],
        data: Vec<Vec<u8>>,
    ) -> Vec<(usize, String)> {
        let records: Vec<Record> = data
            .into_iter()
            .map(|line| Record::builder().data(Blob::new(line)).build().expect("data is set"))
            .collect();
        let sent = client
            .put_record_batch()
            .delivery_stream_name(&self.settings.delivery_stream)
            .set_records(Some(records))
            .send()
            .await;
        let all_failed = |why: String| batch.iter().map(|i| (*i, why.clone())).collect();
        let output = match sent {
            Ok(output) => output,
            Err(error) => {
                let why = format!(
                    "Firehose PutRecordBatch to {} failed: {}",
                    self.settings.delivery_stream,
                    aws_sdk_firehose::error::DisplayErrorContext(&error)
                );
                return all_failed(why);
            }
        };
        let responses = output.request_responses();
        if responses.len() != batch.len() {
            // Which entries were accepted cannot be told: resend them all (the ids let
            // readers drop the duplicates).
            return all_failed(format!(
                "Firehose answered {} entries for {} records; resending them all",
                responses.len(),
                batch.len()
            ));
        }
        let mut failed = Vec::new();
        for (index, response) in batch.iter().zip(responses) {
            if response.record_id().is_none() || response.error_code().is_some() {
                let why = format!(
                    "Firehose refused the record for now: {} {}",
                    response.error_code().unwrap_or("no record id"),
                    response.error_message().unwrap_or("")
                );
                failed.push((*index, why));
            }
        }
        if !failed.is_empty() {
            tracing::debug!(sink = %self.name, failed = failed.len(), of = batch.len(), "Firehose failed part of a batch");
        }
        failed
    }
}

impl Sink for FirehoseSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }
}

/// Splits `lines` into consecutive ranges of at most [`MAX_BATCH_RECORDS`] records and
/// [`MAX_BATCH_BYTES`] bytes (each line is at most [`MAX_RECORD_BYTES`], so fits alone).
fn batches(lines: &[(usize, Vec<u8>)]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (_, line)) in lines.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_RECORDS || bytes + line.len() > MAX_BATCH_BYTES) {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += line.len();
    }
    if start < lines.len() {
        ranges.push(start..lines.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(sizes: &[usize]) -> Vec<(usize, Vec<u8>)> {
        sizes.iter().enumerate().map(|(i, &n)| (i, vec![b'x'; n])).collect()
    }

    #[test]
    fn batches_hold_at_most_500_records_and_4_mib() {
        assert_eq!(batches(&lines(&[10; 1001])), vec![0..500, 500..1000, 1000..1001]);
        // Five records of 1 000 KiB: four fit in 4 MiB, the fifth starts a new call.
        assert_eq!(batches(&lines(&[MAX_RECORD_BYTES; 5])), vec![0..4, 4..5]);
        assert_eq!(batches(&lines(&[])), Vec::<std::ops::Range<usize>>::new());
        let sizes = [MAX_RECORD_BYTES, 1, MAX_RECORD_BYTES, MAX_RECORD_BYTES, MAX_RECORD_BYTES, 7];
        for range in batches(&lines(&sizes)) {
            let total: usize = sizes[range.clone()].iter().sum();
            assert!(total <= MAX_BATCH_BYTES && range.len() <= MAX_BATCH_RECORDS, "{range:?}: {total}");
        }
    }
}
