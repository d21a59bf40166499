//! Each consumer's checkpoint per (stream, shard) in a DynamoDB table: one item per
//! shard, every change a conditional write, so two hosts can never both move one
//! checkpoint (the second's condition fails), and a commit is finished only if it is the
//! one pending.
//!
//! Item `ckpt/<consumer>/<stream>/<shard>`: `committed`, `pending_first`/`pending_last`
//! while a commit is pending, `version` (incremented by every write), and the
//! consumer's state: inline in `state` when it fits an item (DynamoDB items hold
//! 400 KB), else in `state_chunks` items of its own under a fresh generation, which the
//! checkpoint points to once they are all written — the switch is one conditional write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as Av, KeyType};
use weir_log::{CommitRange, LogError, Position, ShardCheckpoint, ShardId};

use crate::leases::{DEFAULT_LEASE_TIME, Fence, LeaseState};

/// The state kept inline in the checkpoint item, at most; larger states go to chunks.
const INLINE_STATE_BYTES: usize = 300 << 10;
/// One state chunk item's data.
const CHUNK_BYTES: usize = 300 << 10;
/// How many times a write that lost a race with another writer is tried again.
const CONFLICT_RETRIES: usize = 3;

/// Checkpoints in the DynamoDB table `table` (created on open when missing).
#[derive(Debug, Clone)]
pub struct DynamoCheckpoints {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// This worker's leases (shared by the clones).
    pub(crate) leases: Arc<LeaseState>,
}

pub(crate) fn service(operation: &'static str, stream: &str, error: impl std::error::Error) -> LogError {
    LogError::Service {
        service: "DynamoDB",
        operation,
        stream: stream.to_owned(),
        reason: DisplayErrorContext(error).to_string(),
    }
}

pub(crate) fn text(item: &HashMap<String, Av>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &HashMap<String, Av>, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn position(stream: &str, what: &str, text: &str) -> Result<Position, LogError> {
    Position::parse(text).map_err(|reason| LogError::Service {
        service: "DynamoDB",
        operation: "GetItem",
        stream: stream.to_owned(),
        reason: format!("the checkpoint's {what} is corrupt: {reason}"),
    })
}

/// A checkpoint item as read, with what a conditional write needs.
struct Stored {
    checkpoint: ShardCheckpoint,
    version: u64,
    state_chunks: Option<(String, u64)>,
}

impl DynamoCheckpoints {
    /// Checkpoints in `table`, which is created (on-demand capacity, key `id`) when it
    /// does not exist; an existing table must have the string key `id`.
    ///
    /// # Errors
    /// DynamoDB refused or could not be reached; the table has another key.
    pub async fn open(client: Client, table: &str) -> Result<Self, LogError> {
        crate::tables::ensure_table(&client, table, &[("id", KeyType::Hash)], "the checkpoint table", true).await?;
        Ok(Self { client, table: table.to_owned(), leases: Arc::new(LeaseState::new(DEFAULT_LEASE_TIME)) })
    }

    /// The same table with leases that expire after `lease_time` without renewal (by
    /// default 10 s), for a fresh worker id.
    #[must_use]
    pub fn with_lease_time(self, lease_time: Duration) -> Self {
        Self { leases: Arc::new(LeaseState::new(lease_time)), ..self }
    }

    pub(crate) fn id(consumer: &str, stream: &str, shard: &ShardId) -> String {
        format!("ckpt/{consumer}/{stream}/{shard}")
    }

    fn chunk_id(id: &str, generation: &str, index: u64) -> String {
        format!("state/{id}/{generation}/{index}")
    }

    /// The checkpoint item; with `with_state` false only what a commit step decides on
    /// (positions, version, the state's generation) is read, not the state itself, which
    /// may be megabytes.
    async fn load(
        &self,
        consumer: &str,
        stream: &str,
        shard: &ShardId,
        with_state: bool,
    ) -> Result<Option<Stored>, LogError> {
        let id = Self::id(consumer, stream, shard);
        let mut request =
            self.client.get_item().table_name(&self.table).key("id", Av::S(id.clone())).consistent_read(true);
        if !with_state {
            request = request
                .projection_expression("committed, pending_first, pending_last, version, state_gen, state_chunks");
        }
        let found = request.send().await.map_err(|e| service("GetItem", stream, e))?;
        let Some(item) = found.item() else { return Ok(None) };
        let committed = text(item, "committed").map(|t| position(stream, "committed position", &t)).transpose()?;
        let pending = match (text(item, "pending_first"), text(item, "pending_last")) {
            (Some(first), Some(last)) => Some(CommitRange {
                first: position(stream, "pending range", &first)?,
                last: position(stream, "pending range", &last)?,
            }),
            _ => None,
        };
        let state_chunks = text(item, "state_gen").map(|generation| (generation, number(item, "state_chunks")));
        let state = match &state_chunks {
            _ if !with_state => Vec::new(),
            Some((generation, chunks)) => {
                let mut state = Vec::new();
                for index in 0..*chunks {
                    let chunk = self
                        .client
                        .get_item()
                        .table_name(&self.table)
                        .key("id", Av::S(Self::chunk_id(&id, generation, index)))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(|e| service("GetItem", stream, e))?;
                    let data =
                        chunk.item().and_then(|c| c.get("data")).and_then(|d| d.as_b().ok()).ok_or_else(|| {
                            LogError::Service {
                                service: "DynamoDB",
                                operation: "GetItem",
                                stream: stream.to_owned(),
                                reason: format!("state chunk {index} of generation {generation} of {id} is missing"),
                            }
                        })?;
                    state.extend_from_slice(data.as_ref());
                }
                state
            }
            None => item.get("state").and_then(|s| s.as_b().ok()).map(|b| b.as_ref().to_vec()).unwrap_or_default(),
        };
        Ok(Some(Stored {
            checkpoint: ShardCheckpoint { committed, pending, state },
            version: number(item, "version"),
            state_chunks,
        }))
    }

    fn refused(consumer: &str, stream: &str, shard: &ShardId, range: &CommitRange, reason: String) -> LogError {
        LogError::InvalidCommit {
            consumer: consumer.to_owned(),
            stream: stream.to_owned(),
            shard: shard.to_string(),
            range: range.to_string(),
            reason,
        }
    }

    /// `consumer`'s checkpoint in (stream, shard).
    ///
    /// # Errors
    /// DynamoDB failed.
    pub async fn checkpoint(
        &self,
        consumer: &str,
        stream: &str,
        shard: &ShardId,
    ) -> Result<Option<ShardCheckpoint>, LogError> {
        Ok(self.load(consumer, stream, shard, true).await?.map(|stored| stored.checkpoint))
    }

    /// See [`weir_log::CheckpointStore::begin_commit`]; the shard's end is not checked
    /// (Kinesis cannot say cheaply which record is a shard's last).
    ///
    /// # Errors
    /// The range is refused; DynamoDB failed; another writer kept changing the item.
    pub async fn begin_commit(
        &self,
        consumer: &str,
        stream: &str,
        shard: &ShardId,
        range: CommitRange,
    ) -> Result<CommitRange, LogError> {
        let id = Self::id(consumer, stream, shard);
        for _ in 0..CONFLICT_RETRIES {
            // A host that lost the lease is refused before anything, even the pending
            // range: it is the new owner's to redo.
            let fence = self.leases.fence(&id).map_err(|why| Self::refused(consumer, stream, shard, &range, why))?;
            let stored = self.load(consumer, stream, shard, false).await?;
            if let Some(pending) = stored.as_ref().and_then(|s| s.checkpoint.pending.clone()) {
                return Ok(pending);
            }
            if range.last < range.first {
                return Err(Self::refused(consumer, stream, shard, &range, "it ends before it starts".into()));
            }
            if let Some(committed) = stored.as_ref().and_then(|s| s.checkpoint.committed.as_ref())
                && range.first <= *committed
            {
                return Err(Self::refused(
                    consumer,
                    stream,
                    shard,
                    &range,
                    format!("it starts at or before the committed position {committed}"),
                ));
            }
            let version = stored.as_ref().map_or(0, |s| s.version);
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", Av::S(Self::id(consumer, stream, shard)))
                .update_expression("SET pending_first = :first, pending_last = :last, version = :next")
                .expression_attribute_values(":first", Av::S(range.first.to_string()))
                .expression_attribute_values(":last", Av::S(range.last.to_string()))
                .expression_attribute_values(":next", Av::N((version + 1).to_string()));
            // A lease item without a commit yet has no version.
            let unchanged = if stored.is_some() {
                update = update.expression_attribute_values(":version", Av::N(version.to_string()));
                "(attribute_not_exists(version) OR version = :version)"
            } else {
                "attribute_not_exists(id)"
            };
            update = match &fence {
                Fence::Unleased => update.condition_expression(unchanged),
                Fence::Held { owner, epoch } => update
                    .condition_expression(format!("{unchanged} AND lease_owner = :owner AND lease_epoch = :epoch"))
                    .expression_attribute_values(":owner", Av::S(owner.clone()))
                    .expression_attribute_values(":epoch", Av::N(epoch.to_string())),
            };
            match update.send().await {
                Ok(_) => return Ok(range),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    if let Err(lost) = self.check_lease(&id, &fence, stream).await {
                        return Err(Self::refused(consumer, stream, shard, &range, lost.to_string()));
                    }
                    continue;
                }
                Err(e) => return Err(service("UpdateItem", stream, e)),
            }
        }
        Err(Self::refused(consumer, stream, shard, &range, "another writer kept changing the checkpoint".into()))
    }

    /// See [`weir_log::CheckpointStore::finish_commit`].
    ///
    /// # Errors
    /// `range` is not the pending commit; DynamoDB failed.
    pub async fn finish_commit(
        &self,
        consumer: &str,
        stream: &str,
        shard: &ShardId,
        range: CommitRange,
        state: Vec<u8>,
    ) -> Result<(), LogError> {
        let id = Self::id(consumer, stream, shard);
        let previous = self.load(consumer, stream, shard, false).await?;
        let pending = previous.as_ref().and_then(|p| p.checkpoint.pending.clone());
        if pending.as_ref() != Some(&range) {
            let pending = pending.map_or_else(|| "none".to_owned(), |p| p.to_string());
            return Err(Self::refused(
                consumer,
                stream,
                shard,
                &range,
                format!("it is not the pending commit ({pending})"),
            ));
        }
        let fence = self.leases.fence(&id).map_err(|why| Self::refused(consumer, stream, shard, &range, why))?;
        let condition = match &fence {
            Fence::Unleased => "pending_first = :first AND pending_last = :last",
            Fence::Held { .. } => {
                "pending_first = :first AND pending_last = :last AND lease_owner = :owner AND lease_epoch = :epoch"
            }
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", Av::S(id.clone()))
            .condition_expression(condition)
            .expression_attribute_values(":first", Av::S(range.first.to_string()))
            .expression_attribute_values(":last", Av::S(range.last.to_string()))
            .expression_attribute_values(":one", Av::N("1".into()));
        if let Fence::Held { owner, epoch } = &fence {
            update = update
                .expression_attribute_values(":owner", Av::S(owner.clone()))
                .expression_attribute_values(":epoch", Av::N(epoch.to_string()));
        }
        let mut written_chunks = None;
        if state.len() <= INLINE_STATE_BYTES {
            update = update
                .update_expression("SET committed = :last, version = version + :one, #state = :state REMOVE pending_first, pending_last, state_gen, state_chunks")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", Av::B(Blob::new(state)));
        } else {
            let generation = format!("{:016x}", fastrand::u64(..));
            let chunks = state.chunks(CHUNK_BYTES).count() as u64;
            for (index, chunk) in state.chunks(CHUNK_BYTES).enumerate() {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("id", Av::S(Self::chunk_id(&id, &generation, index as u64)))
                    .item("data", Av::B(Blob::new(chunk.to_vec())))
                    .send()
                    .await
                    .map_err(|e| service("PutItem", stream, e))?;
            }
            update = update
                .update_expression("SET committed = :last, version = version + :one, state_gen = :gen, state_chunks = :chunks REMOVE pending_first, pending_last, #state")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":gen", Av::S(generation.clone()))
                .expression_attribute_values(":chunks", Av::N(chunks.to_string()));
            written_chunks = Some((generation, chunks));
        }
        match update.send().await {
            Ok(_) => {
                // The previous generation's chunks are no longer pointed to.
                if let Some((generation, chunks)) = previous.and_then(|p| p.state_chunks) {
                    self.delete_chunks(&id, &generation, chunks).await;
                }
                Ok(())
            }
            Err(e) => {
                if let Some((generation, chunks)) = written_chunks {
                    self.delete_chunks(&id, &generation, chunks).await;
                }
                if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) {
                    if let Err(lost) = self.check_lease(&id, &fence, stream).await {
                        return Err(Self::refused(consumer, stream, shard, &range, lost.to_string()));
                    }
                    Err(Self::refused(consumer, stream, shard, &range, "it is no longer the pending commit".into()))
                } else {
                    Err(service("UpdateItem", stream, e))
                }
            }
        }
    }

    /// After a refused conditional write under `fence`: whether the lease is still this
    /// worker's; when it is not, it is marked lost and the error says so.
    async fn check_lease(&self, id: &str, fence: &Fence, stream: &str) -> Result<(), LogError> {
        let Fence::Held { owner, epoch } = fence else { return Ok(()) };
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", Av::S(id.to_owned()))
            .consistent_read(true)
            .projection_expression("lease_owner, lease_epoch")
            .send()
            .await
            .map_err(|e| service("GetItem", stream, e))?;
        let item = found.item();
        let now_owner = item.and_then(|i| text(i, "lease_owner"));
        let now_epoch = item.map_or(0, |i| number(i, "lease_epoch"));
        if now_owner.as_deref() == Some(owner.as_str()) && now_epoch == *epoch {
            return Ok(());
        }
        self.leases.lose(id);
        Err(LogError::Service {
            service: "DynamoDB",
            operation: "UpdateItem",
            stream: stream.to_owned(),
            reason: format!(
                "worker {owner} lost the lease on {id} to {} (epoch {now_epoch}); its checkpoint write was refused",
                now_owner.as_deref().unwrap_or("no one")
            ),
        })
    }

    /// Deletes a state generation's chunks; a failure leaves garbage, never wrong data,
    /// so it is logged and not returned.
    async fn delete_chunks(&self, id: &str, generation: &str, chunks: u64) {
        for index in 0..chunks {
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("id", Av::S(Self::chunk_id(id, generation, index)))
                .send()
                .await;
            if let Err(e) = deleted {
                tracing::warn!(
                    checkpoint = id,
                    "could not delete old state chunk {index} of generation {generation}: {}",
                    DisplayErrorContext(&e)
                );
            }
        }
    }
}
