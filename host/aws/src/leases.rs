//! Shard leases in the checkpoint table, as the Kinesis Client Library keeps them: the
//! checkpoint item of (consumer, stream, shard) also holds `lease_owner` (the worker
//! holding it), `lease_counter` (bumped by every renewal: the heartbeat) and
//! `lease_epoch` (bumped by every take-over), and `ended` once the shard was read to its
//! end and committed.
//!
//! - **Expiry without clocks**: a worker that sees a lease's (owner, counter) unchanged
//!   for the lease time, on its own monotonic clock, considers it expired, as the KCL
//!   does — no two hosts' wall clocks are compared.
//! - **Fencing**: every checkpoint write of a leased shard is conditioned on
//!   `lease_owner` and `lease_epoch` being this worker's; a take-over bumps the epoch, so
//!   the old owner's writes fail from that moment on, even if it takes the lease back
//!   later. Renewals bump only the counter, so they never fail a commit in flight.
//! - **Balancing**: each round a worker takes at most one lease — an expired or unowned
//!   one, else one from the worker holding the most — while it holds fewer than its fair
//!   share (the shards not ended divided among the workers with live leases).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as Av, KeysAndAttributes};
use weir_log::{LeaseRound, LogError, ShardId};

use crate::checkpoints::{DynamoCheckpoints, service};

/// How long a lease not renewed stays with its owner, by default (the KCL's default
/// failover time is 10 s).
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(10);

/// Keys per `BatchGetItem` call (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;
/// Rounds of `UnprocessedKeys` retried before a balancing round gives up.
const UNPROCESSED_RETRIES: u32 = 8;

/// This worker's view of the leases: those it holds (by item id, with the epoch it took
/// them at), those it lost, and what it observed of the others.
#[derive(Debug)]
pub(crate) struct LeaseState {
    /// This worker's id, written as `lease_owner`.
    pub(crate) worker: String,
    pub(crate) lease_time: Duration,
    held: Mutex<HashMap<String, Hold>>,
    /// Per item: the (owner, counter) last seen and since when, on this host's clock.
    observed: Mutex<HashMap<String, Observed>>,
}

/// A lease's owner, counter and epoch as last seen, and since when.
type Observed = (Option<String>, u64, Option<u64>, Instant);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Held { epoch: u64 },
    Lost,
}

/// How a checkpoint write of one shard is fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fence {
    /// The shard was never leased by this worker (one host, or the conformance suite):
    /// nothing to check.
    Unleased,
    /// Held at this epoch: the write is conditioned on owner and epoch.
    Held { owner: String, epoch: u64 },
}

impl LeaseState {
    pub(crate) fn new(lease_time: Duration) -> Self {
        Self { worker: worker_id(), lease_time, held: Mutex::default(), observed: Mutex::default() }
    }

    /// The fence for writes of the checkpoint `id`.
    ///
    /// # Errors
    /// The lease was lost: why, for the refusal.
    pub(crate) fn fence(&self, id: &str) -> Result<Fence, String> {
        match self.held.lock().expect("lease map").get(id) {
            None => Ok(Fence::Unleased),
            Some(Hold::Held { epoch }) => Ok(Fence::Held { owner: self.worker.clone(), epoch: *epoch }),
            Some(Hold::Lost) => Err(format!(
                "worker {} no longer holds the lease on this shard (another host took it over); the shard's new owner commits it",
                self.worker
            )),
        }
    }

    /// Marks the lease on `id` lost: its checkpoint writes are refused from now on.
    pub(crate) fn lose(&self, id: &str) {
        self.held.lock().expect("lease map").insert(id.to_owned(), Hold::Lost);
    }

    fn hold(&self, id: &str, epoch: u64) {
        self.held.lock().expect("lease map").insert(id.to_owned(), Hold::Held { epoch });
    }

    fn forget(&self, id: &str) {
        self.held.lock().expect("lease map").remove(id);
    }

    fn held_epoch(&self, id: &str) -> Option<u64> {
        match self.held.lock().expect("lease map").get(id) {
            Some(Hold::Held { epoch }) => Some(*epoch),
            _ => None,
        }
    }

    /// Whether the lease with (`owner`, `counter`, `epoch`) on `id` is expired as this
    /// host sees it: no owner, or the same owner, counter and epoch seen for at least the
    /// lease time. The epoch matters: a take-over resets the counter, and an owner that
    /// took a lease back must not look unchanged since an old sighting.
    fn expired(&self, id: &str, owner: Option<&str>, counter: u64, epoch: Option<u64>, now: Instant) -> bool {
        let mut observed = self.observed.lock().expect("observations");
        let seen = observed.entry(id.to_owned()).or_insert_with(|| (owner.map(str::to_owned), counter, epoch, now));
        if seen.0.as_deref() != owner || seen.1 != counter || seen.2 != epoch {
            *seen = (owner.map(str::to_owned), counter, epoch, now);
        }
        owner.is_none() || now.duration_since(seen.3) >= self.lease_time
    }
}

/// `host-pid-random`: unique per process, readable in the table.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}-{:06x}", std::process::id(), fastrand::u32(..1 << 24))
}

/// One lease as read from the table.
#[derive(Debug, Clone)]
struct Lease {
    shard: ShardId,
    id: String,
    owner: Option<String>,
    counter: u64,
    epoch: Option<u64>,
    ended: bool,
}

impl DynamoCheckpoints {
    /// This worker's id (`lease_owner` in the table).
    pub fn worker_id(&self) -> &str {
        &self.leases.worker
    }

    /// The leases of `shards`, read consistently in batches of 100.
    async fn read_leases(&self, consumer: &str, stream: &str, shards: &[ShardId]) -> Result<Vec<Lease>, LogError> {
        let mut found: HashMap<String, HashMap<String, Av>> = HashMap::new();
        for chunk in shards.chunks(BATCH_GET_KEYS) {
            let keys: Vec<HashMap<String, Av>> = chunk
                .iter()
                .map(|shard| HashMap::from([("id".to_owned(), Av::S(Self::id(consumer, stream, shard)))]))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .projection_expression("id, lease_owner, lease_counter, lease_epoch, ended")
                    .build()
                    .map_err(|e| service("BatchGetItem", stream, e))?,
            );
            let mut attempt = 0;
            while let Some(keys) = request.take() {
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| service("BatchGetItem", stream, e))?;
                for item in answer.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some(id) = crate::checkpoints::text(item, "id") {
                        found.insert(id, item.clone());
                    }
                }
                if let Some(rest) = answer.unprocessed_keys().and_then(|u| u.get(&self.table)).cloned()
                    && !rest.keys().is_empty()
                {
                    attempt += 1;
                    if attempt > UNPROCESSED_RETRIES {
                        return Err(LogError::Service {
                            service: "DynamoDB",
                            operation: "BatchGetItem",
                            stream: stream.to_owned(),
                            reason: format!("leases still unread after {UNPROCESSED_RETRIES} retries (throttled)"),
                        });
                    }
                    tokio::time::sleep(crate::backoff(attempt, Duration::from_millis(50), Duration::from_secs(2)))
                        .await;
                    request = Some(rest);
                }
            }
        }
        Ok(shards
            .iter()
            .map(|shard| {
                let id = Self::id(consumer, stream, shard);
                let item = found.get(&id);
                let number = |name: &str| {
                    item.and_then(|i| i.get(name)).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok())
                };
                Lease {
                    shard: shard.clone(),
                    owner: item.and_then(|i| crate::checkpoints::text(i, "lease_owner")),
                    counter: number("lease_counter").unwrap_or(0),
                    epoch: number("lease_epoch"),
                    ended: item.and_then(|i| i.get("ended")).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
                    id,
                }
            })
            .collect())
    }

    /// Bumps the counter of a lease this worker holds; `false` when it was lost.
    async fn renew(&self, lease: &Lease, epoch: u64, stream: &str) -> Result<bool, LogError> {
        let renewed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", Av::S(lease.id.clone()))
            .update_expression("SET lease_counter = lease_counter + :one")
            .condition_expression("lease_owner = :me AND lease_epoch = :epoch")
            .expression_attribute_values(":one", Av::N("1".into()))
            .expression_attribute_values(":me", Av::S(self.leases.worker.clone()))
            .expression_attribute_values(":epoch", Av::N(epoch.to_string()))
            .send()
            .await;
        match renewed {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(service("UpdateItem", stream, e)),
        }
    }

    /// Takes `lease` over as it was read (its epoch unchanged since, not ended); `false`
    /// when another worker changed it first.
    async fn take(&self, lease: &Lease, stream: &str) -> Result<bool, LogError> {
        let next = lease.epoch.unwrap_or(0) + 1;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", Av::S(lease.id.clone()))
            .update_expression("SET lease_owner = :me, lease_epoch = :next, lease_counter = :zero")
            .expression_attribute_values(":me", Av::S(self.leases.worker.clone()))
            .expression_attribute_values(":next", Av::N(next.to_string()))
            .expression_attribute_values(":zero", Av::N("0".into()))
            .expression_attribute_values(":true", Av::Bool(true));
        update = match lease.epoch {
            Some(epoch) => update
                .condition_expression("lease_epoch = :epoch AND (attribute_not_exists(ended) OR ended <> :true)")
                .expression_attribute_values(":epoch", Av::N(epoch.to_string())),
            None => update.condition_expression(
                "attribute_not_exists(lease_epoch) AND (attribute_not_exists(ended) OR ended <> :true)",
            ),
        };
        match update.send().await {
            Ok(_) => {
                self.leases.hold(&lease.id, next);
                tracing::info!(
                    worker = %self.leases.worker, stream, shard = %lease.shard, previous_owner = ?lease.owner,
                    "took the lease on a shard"
                );
                Ok(true)
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(service("UpdateItem", stream, e)),
        }
    }

    /// See [`weir_log::ShardLeases::balance`]; `stream` is the Kinesis stream's name.
    ///
    /// # Errors
    /// DynamoDB failed.
    pub async fn balance(&self, consumer: &str, stream: &str, shards: &[ShardId]) -> Result<LeaseRound, LogError> {
        let leases = self.read_leases(consumer, stream, shards).await?;
        let now = Instant::now();
        let me = self.leases.worker.as_str();
        let mut round = LeaseRound::default();
        let mut takeable: Vec<&Lease> = Vec::new();
        let mut lost_now: std::collections::HashSet<String> = std::collections::HashSet::new();
        // Live leases of other workers, by owner.
        let mut others: BTreeMap<&str, Vec<&Lease>> = BTreeMap::new();
        for lease in &leases {
            if lease.ended {
                round.ended.push(lease.shard.clone());
                if self.leases.held_epoch(&lease.id).is_some() {
                    self.leases.forget(&lease.id);
                }
                continue;
            }
            let mine = lease.owner.as_deref() == Some(me);
            match self.leases.held_epoch(&lease.id) {
                Some(epoch) if mine && lease.epoch == Some(epoch) => {
                    if self.renew(lease, epoch, stream).await? {
                        round.held.push(lease.shard.clone());
                    } else {
                        self.leases.lose(&lease.id);
                        lost_now.insert(lease.id.clone());
                    }
                    continue;
                }
                Some(_) => {
                    tracing::warn!(worker = me, stream, shard = %lease.shard, owner = ?lease.owner, "lost the lease on a shard");
                    self.leases.lose(&lease.id);
                    lost_now.insert(lease.id.clone());
                }
                None => {}
            }
            if lost_now.contains(&lease.id) {
                // Not taken back in the round it was lost: the consumer must see the loss
                // (and stop the shard's stage) before this host holds it under a new epoch.
            } else if self.leases.expired(&lease.id, lease.owner.as_deref(), lease.counter, lease.epoch, now) {
                takeable.push(lease);
            } else if let Some(owner) = lease.owner.as_deref() {
                others.entry(owner).or_default().push(lease);
            }
        }
        let open = leases.len() - round.ended.len();
        let workers = others.len() + 1;
        let fair_share = open.div_ceil(workers);
        let held = round.held.len();
        // An expired or unowned lease first while below the fair share, picked at random
        // so that workers starting together do not all race for the same one; else one
        // from the worker holding the most, when it holds at least two more than this one
        // (so 4 shards on 3 workers settle at 2, 1, 1 rather than leaving one idle).
        let candidate = if !takeable.is_empty() && held < fair_share {
            Some(takeable[fastrand::usize(..takeable.len())])
        } else if takeable.is_empty() {
            others
                .values()
                .filter(|theirs| theirs.len() >= held + 2)
                .max_by_key(|theirs| theirs.len())
                .map(|theirs| theirs[fastrand::usize(..theirs.len())])
        } else {
            None
        };
        if let Some(lease) = candidate
            && self.take(lease, stream).await?
        {
            round.held.push(lease.shard.clone());
        }
        Ok(round)
    }

    /// See [`weir_log::ShardLeases::shard_ended`].
    ///
    /// # Errors
    /// The lease is not held; DynamoDB failed.
    pub async fn shard_ended(&self, consumer: &str, stream: &str, shard: &ShardId) -> Result<(), LogError> {
        self.give_up(consumer, stream, shard, true).await
    }

    /// See [`weir_log::ShardLeases::release`].
    ///
    /// # Errors
    /// DynamoDB failed.
    pub async fn release(&self, consumer: &str, stream: &str, shard: &ShardId) -> Result<(), LogError> {
        self.give_up(consumer, stream, shard, false).await
    }

    async fn give_up(&self, consumer: &str, stream: &str, shard: &ShardId, ended: bool) -> Result<(), LogError> {
        let id = Self::id(consumer, stream, shard);
        let Some(epoch) = self.leases.held_epoch(&id) else {
            if ended {
                // Never leased (one host): the flag alone.
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("id", Av::S(id))
                    .update_expression("SET ended = :true")
                    .expression_attribute_values(":true", Av::Bool(true))
                    .send()
                    .await
                    .map_err(|e| service("UpdateItem", stream, e))?;
            }
            return Ok(());
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", Av::S(id.clone()))
            .condition_expression("lease_owner = :me AND lease_epoch = :epoch")
            .expression_attribute_values(":me", Av::S(self.leases.worker.clone()))
            .expression_attribute_values(":epoch", Av::N(epoch.to_string()));
        let update = if ended {
            update
                .update_expression("SET ended = :true REMOVE lease_owner")
                .expression_attribute_values(":true", Av::Bool(true))
        } else {
            update.update_expression("REMOVE lease_owner")
        };
        match update.send().await {
            Ok(_) => {
                // Only now: after a failed write the table still names this worker, and
                // the lease must keep being renewed (or expire) rather than be orphaned.
                self.leases.forget(&id);
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                self.leases.lose(&id);
                Err(LogError::Service {
                    service: "DynamoDB",
                    operation: "UpdateItem",
                    stream: stream.to_owned(),
                    reason: format!("the lease on shard {shard} was taken over before it was given up"),
                })
            }
            Err(e) => Err(service("UpdateItem", stream, e)),
        }
    }
}
