//! Files attached to messages: what a message carries about each (`Attachment`), and
//! the REST bodies of `POST /uploads` and its download links.
//!
//! An upload is stored first (`POST /uploads` answers an [`Upload`] with its `id`);
//! a `message_send` (or REST send) then names upload ids in `attachments`, and the
//! stored message carries one [`Attachment`] per id. Downloads are authorised per
//! request (the uploader, or members of the room the upload is attached to).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An upload's id: random and URL-safe, so ids cannot be enumerated.
pub type UploadId = String;

/// A file attached to a message: its metadata as sniffed and sanitized by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Attachment {
    pub id: UploadId,
    /// The uploader's file name, sanitized (no path, no control characters).
    pub filename: String,
    /// Sniffed from the file's bytes, never taken from the uploader.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Pixels, for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
    /// Path of the file (`/api/v1/uploads/{id}`), downloadable with a bearer token; a
    /// browser `<img>` uses a signed link instead (`GET /api/v1/uploads/{id}/link`).
    pub url: String,
    /// Path of the server-made thumbnail, for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

/// `POST /uploads`: the stored upload, not yet attached to any message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Upload {
    /// What a message carries once the upload is attached.
    #[serde(flatten)]
    pub attachment: Attachment,
    /// Hex SHA-256 of the bytes stored.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// `GET /uploads/{id}/link`: short-lived signed URLs, for clients that cannot send an
/// `Authorization` header (a browser's `<img src>`, a download link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct UploadLink {
    /// The file, signed for the caller: `/api/v1/uploads/{id}?user=…&expires=…&sig=…`.
    pub url: String,
    /// The thumbnail, signed the same way, for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// When both stop working; ask for a new link after that.
    pub expires_at: DateTime<Utc>,
}
