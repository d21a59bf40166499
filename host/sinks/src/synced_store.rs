//! The local filesystem as an object store whose writes are durable when they return:
//! object_store 0.13 (the version DataFusion uses) has no fsync option, so each
//! completed write syncs the file and its directory before it is acknowledged. A stage
//! checkpoints a commit only after every sink acknowledged it: without the sync, a power
//! loss after the checkpoint could lose lake objects the log no longer holds.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// A [`LocalFileSystem`] that syncs every object it writes.
#[derive(Debug)]
pub(crate) struct SyncedLocalStore {
    inner: LocalFileSystem,
}

impl SyncedLocalStore {
    pub(crate) fn new(inner: LocalFileSystem) -> Self {
        Self { inner }
    }
}

impl fmt::Display for SyncedLocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Synced{}", self.inner)
    }
}

/// Syncs the file at `path` and the directory holding it (so the rename that published
/// it survives a crash too).
async fn sync(path: PathBuf) -> Result<()> {
    let synced = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::File::open(&path)?.sync_all()?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await;
    match synced {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) }),
        Err(e) => Err(object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) }),
    }
}

#[async_trait::async_trait]
impl ObjectStore for SyncedLocalStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        sync(self.inner.path_to_filesystem(location)?).await?;
        Ok(result)
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(SyncedUpload { upload, file: self.inner.path_to_filesystem(location)? }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        sync(self.inner.path_to_filesystem(to)?).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await?;
        sync(self.inner.path_to_filesystem(to)?).await
    }
}

/// A multipart upload whose completion syncs the object.
#[derive(Debug)]
struct SyncedUpload {
    upload: Box<dyn MultipartUpload>,
    file: PathBuf,
}

#[async_trait::async_trait]
impl MultipartUpload for SyncedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.upload.complete().await?;
        sync(self.file.clone()).await?;
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }
}
