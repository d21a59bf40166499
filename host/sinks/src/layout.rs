//! Where the lake keeps each kind of object, and the single `put` that writes one.

use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::SinkError;
use crate::sink::SinkCommit;

/// The kinds of objects the lake holds, each under its own top-level prefix.
///
/// Keys are `<prefix>/stream=<stream>/date=<YYYY-MM-DD>/shard=<shard:04>/<first:020>-<last:020>.<ext>`
/// for a log range (`<prefix>/job=<job>/date=<YYYY-MM-DD>/run=<run>/part-<partition:05>.<ext>`
/// for a job partition, see [`CommitId`](crate::CommitId)),
/// where the date is that of the commit's [`arrival_time`](SinkCommit::arrival_time) (UTC)
/// and the stream name is percent-encoded where object stores forbid a character. The key
/// depends only on the commit's range, so a replay overwrites the same object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LakeObject {
    /// `raw/…ndjson`: the raw archive.
    Raw,
    /// `events/…parquet`: events out of the plugin chain.
    Events,
    /// `aggregates/…parquet`: aggregates emitted by `finish`.
    Aggregates,
    /// `dead-letters/…ndjson`: records the plugins refused.
    DeadLetters,
}

impl LakeObject {
    /// The top-level prefix: `raw`, `events`, `aggregates` or `dead-letters`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Events => "events",
            Self::Aggregates => "aggregates",
            Self::DeadLetters => "dead-letters",
        }
    }

    /// The file extension: `ndjson` or `parquet`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Raw | Self::DeadLetters => "ndjson",
            Self::Events | Self::Aggregates => "parquet",
        }
    }

    /// The object key of this kind for `commit`.
    pub fn key(self, commit: &SinkCommit) -> Path {
        let (source, part) = commit.id.lake_dirs();
        let parts = [
            PathPart::from(self.prefix()),
            PathPart::from(source),
            PathPart::from(format!("date={}", date_of(commit.arrival_time))),
            PathPart::from(part),
            PathPart::from(format!("{}.{}", commit.id.file_stem(), self.extension())),
        ];
        Path::from_iter(parts)
    }
}

/// `YYYY-MM-DD` (UTC) of a time in microseconds since the Unix epoch.
pub fn date_of(micros: i64) -> String {
    let mut text = weir_events::time::format_rfc3339(micros);
    text.truncate(text.find('T').unwrap_or(text.len()));
    text
}

/// Objects larger than this are uploaded in parts ([`MULTIPART_PART_SIZE`] each): S3
/// takes one `PUT` of up to 5 GB, but a large object in parts is retried part by part,
/// and each part's request stays short.
pub const MULTIPART_THRESHOLD: usize = 8 << 20;

/// The size of each part of a multipart upload (S3 wants at least 5 MiB, the last part
/// excepted).
pub const MULTIPART_PART_SIZE: usize = 8 << 20;

/// Writes `bytes` at `key` (overwriting), all or nothing: one `put` up to
/// [`MULTIPART_THRESHOLD`], a multipart upload beyond it. Neither is ever visible half
/// written — an object store shows a multipart upload only once it is completed, the
/// local filesystem writes a temporary file renamed into place — and a multipart upload
/// that failed is aborted, so its parts are not left behind.
pub(crate) async fn put_object(
    sink: &str,
    store: &dyn ObjectStore,
    key: &Path,
    bytes: Vec<u8>,
) -> Result<(), SinkError> {
    let written = if bytes.len() > MULTIPART_THRESHOLD {
        put_in_parts(store, key, bytes).await
    } else {
        store.put(key, PutPayload::from(bytes)).await.map(drop)
    };
    written.map_err(|source| SinkError::Write {
        sink: sink.to_owned(),
        target: key.to_string(),
        source: Box::new(source),
    })
}

async fn put_in_parts(store: &dyn ObjectStore, key: &Path, bytes: Vec<u8>) -> object_store::Result<()> {
    let upload = store.put_multipart(key).await?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_SIZE);
    writer.put(bytes::Bytes::from(bytes));
    // Every part but the last is uploaded by now or failed; a failure aborts the upload
    // (completing it after a failed part is refused anyway).
    if let Err(error) = writer.wait_for_capacity(0).await {
        if let Err(abort) = writer.abort().await {
            tracing::warn!(%key, "cannot abort a failed multipart upload ({abort}); its parts stay until the bucket's lifecycle rule removes them");
        }
        return Err(error);
    }
    writer.finish().await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_partition_by_stream_date_and_shard() {
        let commit = SinkCommit {
            id: crate::CommitId::log_range("orders", "3", "42", "57"),
            arrival_time: weir_events::time::parse_rfc3339("2026-11-26T23:59:59.999Z").unwrap(),
            records: Vec::new(),
        };
        assert_eq!(
            LakeObject::Events.key(&commit).as_ref(),
            "events/stream=orders/date=2026-11-26/shard=0003/00000000000000000042-00000000000000000057.parquet"
        );
        assert_eq!(
            LakeObject::DeadLetters.key(&commit).as_ref(),
            "dead-letters/stream=orders/date=2026-11-26/shard=0003/00000000000000000042-00000000000000000057.ndjson"
        );
    }

    #[test]
    fn stream_names_cannot_escape_their_partition() {
        let commit = SinkCommit {
            id: crate::CommitId::log_range("../a/b", "0", "0", "0"),
            arrival_time: 0,
            records: Vec::new(),
        };
        let key = LakeObject::Raw.key(&commit);
        assert_eq!(key.parts().count(), 5, "{key}");
        assert!(key.as_ref().starts_with("raw/stream=..%2Fa%2Fb/date=1970-01-01/"), "{key}");
    }

    #[test]
    fn dates_before_the_epoch_are_days_too() {
        assert_eq!(date_of(-1), "1969-12-31");
        assert_eq!(date_of(0), "1970-01-01");
    }
}

/// Removes what a write interrupted by a crash left behind in a local lake: the local
/// object store writes each object to `<key>#<n>` and renames it into place, so a crash
/// mid-write leaves a `#<n>` file that is never part of the lake (the replay writes the
/// object again). Returns how many were removed.
///
/// # Errors
/// When a directory cannot be read or a leftover cannot be removed.
pub fn remove_interrupted_writes(root: &std::path::Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else if is_interrupted_write(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(&path)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// `name#<digits>`: a temporary file of the local object store.
pub fn is_interrupted_write(file_name: &str) -> bool {
    file_name.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod interrupted_write_tests {
    use super::*;

    #[test]
    fn leftovers_of_interrupted_writes_are_removed_and_objects_kept() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("raw/stream=orders/date=2026-11-26/shard=0001");
        std::fs::create_dir_all(&shard).unwrap();
        std::fs::write(shard.join("00000000000000000060-00000000000000000072.ndjson"), "{}").unwrap();
        std::fs::write(shard.join("00000000000000000060-00000000000000000072.ndjson#1"), "{").unwrap();
        assert_eq!(remove_interrupted_writes(dir.path()).unwrap(), 1);
        let left: Vec<_> = std::fs::read_dir(&shard).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("00000000000000000060-00000000000000000072.ndjson")]);
        assert!(!is_interrupted_write("a#b.ndjson") && !is_interrupted_write("a.ndjson#"));
    }
}
