//! Attachments: files uploaded with `POST /uploads`, stored behind a [`BlobStore`]
//! (local disk under the data dir by default), attached to messages by id, downloaded
//! by their uploader and the members of the room they were attached to.
//!
//! - [`blob`]: the blob-store trait and its local-disk implementation.
//! - [`sniff`]: content type from the bytes, file-name sanitizing, `Content-Disposition`.
//! - [`thumbnail`]: bounded image decoding and thumbnails (on `spawn_blocking`).
//! - [`links`]: signed, short-lived download links for `<img src>`.
//! - [`store`]: the `uploads` table; rooms use its `claim` when a message attaches.
//! - [`routes`]: upload, download, thumbnail, link, delete.
//!
//! An upload is streamed straight to the blob store: its size is counted as it arrives
//! (never trusting `Content-Length`) against the per-file limit and the uploader's
//! remaining quota, its SHA-256 computed on the way, and its first bytes kept for
//! sniffing. Only then is the row inserted, so a row always names a complete blob.

pub mod blob;
pub mod links;
pub mod routes;
pub mod sniff;
pub mod store;
pub mod thumbnail;

use std::sync::Arc;

pub use blob::{BlobStore, LocalDisk};
pub use links::LinkSigner;
pub use routes::routes;
pub use store::{ClaimError, UploadRow, UploadStore};

/// What the uploads routes need; cloning bumps a few reference counts.
#[derive(Clone)]
pub struct Uploads {
    pub store: UploadStore,
    pub blobs: Arc<dyn BlobStore>,
    pub links: Arc<LinkSigner>,
    pub limits: UploadLimits,
    /// Thumbnails decoded at once: each holds a decoded image (up to
    /// `max_pixels` × 4 bytes), so their number bounds that memory and the blocking
    /// threads they take.
    pub thumbnailers: Arc<tokio::sync::Semaphore>,
}

/// The configured limits (`--upload-*`).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Bytes one user may have stored in all.
    pub quota_bytes: u64,
    /// Largest image decoded for a thumbnail, in pixels; larger ones are refused.
    pub max_pixels: u64,
}

/// Thumbnails made at once by one process.
pub const THUMBNAIL_WORKERS: usize = 2;
