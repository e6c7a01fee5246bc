//! Where uploaded bytes live: a small [`BlobStore`] trait and the one implementation
//! shipped, [`LocalDisk`] (a directory under the data dir).
//!
//! The trait is shaped for an S3-compatible store as much as for a disk: keys are
//! opaque strings (`files/<id>`), never paths; `put` takes a stream, so a file is never
//! held in memory whole (a multipart upload on S3, a temp file renamed on disk); `get`
//! answers a stream and its size; everything is async. A `put` that fails, including
//! when its stream ends with an error (the upload went over a limit, the client went
//! away), leaves nothing under the key.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

/// A body of bytes as a stream of chunks; `'a` lets a caller inspect what it streams.
pub type ByteStream<'a> = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'a>>;

/// A stored blob, ready to be streamed out.
pub struct Blob {
    /// Bytes, for `Content-Length`.
    pub size: u64,
    pub body: ByteStream<'static>,
}

/// Why the blob store failed. The stream's own error (a limit, a client gone) comes
/// back as `Body`, so the caller can tell it from a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The stream given to `put` failed; nothing was stored.
    #[error("upload stream failed: {0}")]
    Body(io::Error),
    /// The store itself failed (disk full, permissions, network to the object store).
    #[error("blob store: {0}")]
    Storage(io::Error),
    /// A key no blob can have (the store's keys are `[A-Za-z0-9_-]` segments).
    #[error("invalid blob key")]
    InvalidKey,
}

/// Stores blobs by key. Implementations must be safe to share between instances that
/// serve the same database (a shared volume, an object store).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` under `key` (replacing any blob there) and returns its size. On
    /// any error nothing is left under `key`.
    async fn put(&self, key: &str, body: ByteStream<'_>) -> Result<u64, BlobError>;
    /// The blob under `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError>;
    /// Removes the blob under `key`; a missing blob is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// Blobs as files under one directory (`<data-dir>/uploads` by default), written to a
/// temp file and renamed into place once complete and synced, so a reader never sees
/// half a file and a crash leaves only a temp file behind.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    root: PathBuf,
}

impl LocalDisk {
    /// A store under `root`, created (0700) if missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        crate::files::create_private_dir(&root)?;
        crate::files::create_private_dir(&root.join(".tmp"))?;
        Ok(Self { root })
    }

    /// The file of `key`, refusing anything that is not `segment/segment…` of safe
    /// characters (no `..`, no absolute path, no separators of other systems).
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let safe = !key.is_empty()
            && key.split('/').all(|segment| {
                !segment.is_empty()
                    && !segment.starts_with('.')
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if safe {
            Ok(self.root.join(key))
        } else {
            Err(BlobError::InvalidKey)
        }
    }

    async fn write_temp(temp: &Path, mut body: ByteStream<'_>) -> Result<u64, BlobError> {
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(temp).await.map_err(BlobError::Storage)?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(BlobError::Storage)?;
        }
        file.flush().await.map_err(BlobError::Storage)?;
        // Durable before the row that names it is committed.
        file.sync_all().await.map_err(BlobError::Storage)?;
        Ok(size)
    }
}

#[async_trait]
impl BlobStore for LocalDisk {
    async fn put(&self, key: &str, body: ByteStream<'_>) -> Result<u64, BlobError> {
        let path = self.path(key)?;
        let temp = self
            .root
            .join(".tmp")
            .join(format!("{:032x}", rand::random::<u128>()));
        let written = Self::write_temp(&temp, body).await;
        let size = match written {
            Ok(size) => size,
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
        };
        let placed = async {
            if let Some(parent) = path.parent() {
                crate::files::create_private_dir(parent)?;
            }
            tokio::fs::rename(&temp, &path).await
        };
        if let Err(err) = placed.await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(BlobError::Storage(err));
        }
        Ok(size)
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        let path = self.path(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(BlobError::Storage(err)),
        };
        let size = file.metadata().await.map_err(BlobError::Storage)?.len();
        let body = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
        Ok(Some(Blob {
            size,
            body: Box::pin(body),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(BlobError::Storage(err)),
            _ => Ok(()),
        }
    }
}

/// Reads a whole blob into memory, refusing one larger than `max` bytes: for the
/// thumbnailer, which needs the image in one piece (uploads are size-limited).
pub async fn read_all(blob: Blob, max: u64) -> io::Result<Vec<u8>> {
    if blob.size > max {
        return Err(io::Error::other("blob larger than expected"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
    let mut body = blob.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(io::Error::other("blob larger than expected"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: Vec<io::Result<Bytes>>) -> ByteStream<'static> {
        Box::pin(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn put_get_delete_round_trip_and_failed_puts_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalDisk::open(dir.path().join("uploads")).expect("store");
        let size = store
            .put(
                "files/abc",
                stream(vec![
                    Ok(Bytes::from_static(b"hello ")),
                    Ok(Bytes::from_static(b"world")),
                ]),
            )
            .await
            .expect("put");
        assert_eq!(size, 11);
        let blob = store.get("files/abc").await.expect("get").expect("found");
        assert_eq!(blob.size, 11);
        assert_eq!(read_all(blob, 100).await.expect("read"), b"hello world");

        let failed = store
            .put(
                "files/def",
                stream(vec![
                    Ok(Bytes::from_static(b"part")),
                    Err(io::Error::other("too big")),
                ]),
            )
            .await;
        assert!(matches!(failed, Err(BlobError::Body(_))));
        assert!(store.get("files/def").await.expect("get").is_none());
        let temps = std::fs::read_dir(dir.path().join("uploads/.tmp"))
            .expect("tmp dir")
            .count();
        assert_eq!(temps, 0, "a failed put leaves no temp file");

        store.delete("files/abc").await.expect("delete");
        store
            .delete("files/abc")
            .await
            .expect("deleting twice is fine");
        assert!(store.get("files/abc").await.expect("get").is_none());
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalDisk::open(dir.path()).expect("store");
        for key in [
            "../x",
            "/etc/passwd",
            "a/../b",
            "",
            "a//b",
            ".tmp/x",
            "a\\b",
        ] {
            assert!(
                matches!(store.get(key).await, Err(BlobError::InvalidKey)),
                "{key:?}"
            );
        }
    }
}
