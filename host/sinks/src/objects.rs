//! Reads and deletes of lake objects that may have gone: removed by a rerun, a roll or a
//! compaction since they were listed, or never written.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// The object at `path`, or `None` when there is none.
pub(crate) async fn get_if_present(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<bytes::Bytes>, object_store::Error> {
    match store.get(path).await {
        Ok(got) => got.bytes().await.map(Some),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes the object at `path`, if there is one.
pub(crate) async fn delete_if_present(store: &dyn ObjectStore, path: &Path) -> Result<(), object_store::Error> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
