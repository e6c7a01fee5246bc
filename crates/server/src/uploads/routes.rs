//! REST routes of attachments: `POST /uploads`, `GET /uploads/{id}` (and its
//! `/thumbnail`), `GET /uploads/{id}/link`, `DELETE /uploads/{id}`.

use std::io;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use socket_hub_protocol::rest::Problem;
use socket_hub_protocol::{Upload, UploadLink, UserId};

use super::Uploads;
use super::blob::{BlobError, ByteStream, read_all};
use super::sniff::{self, SNIFF_BYTES};
use super::store::{UploadRow, file_path, thumbnail_path};
use super::thumbnail::{self, ThumbnailError};
use crate::auth::{Auth, AuthUser, bearer_token};
use crate::error::{Error, Result};
use crate::http::{PathParam, QueryParams, created};
use crate::store::{StoreError, from_millis, now_millis};

/// Routes under `/api/v1/uploads`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Uploads: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route("/uploads", post(upload))
        .route("/uploads/{id}", get(download).delete(delete_upload))
        .route("/uploads/{id}/thumbnail", get(download_thumbnail))
        .route("/uploads/{id}/link", get(link))
}

/// The policy of every download: nothing in it may run, load or be framed, whatever a
/// browser makes of the bytes (`sandbox` also gives it an opaque origin).
const DOWNLOAD_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
                            frame-ancestors 'none'; sandbox";

/// Query of `POST /uploads`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The file's name as the user knows it; sanitized (no path, no control or
    /// invisible characters, at most 200 characters). `file` when absent.
    filename: Option<String>,
}

/// What the server learns about an upload while streaming it to the blob store.
struct Inspection {
    size: u64,
    /// Bytes allowed: the per-file limit or the quota left, whichever is smaller.
    allowed: u64,
    over: bool,
    sha256: Sha256,
    head: Vec<u8>,
}

impl Inspection {
    fn take(&mut self, chunk: Result<Bytes, axum::Error>) -> io::Result<Bytes> {
        let chunk = chunk.map_err(io::Error::other)?;
        self.size += chunk.len() as u64;
        if self.size > self.allowed {
            self.over = true;
            return Err(io::Error::other("over the upload limit"));
        }
        self.sha256.update(&chunk);
        if self.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        Ok(chunk)
    }
}

/// Upload a file: the request body is the file's bytes, streamed to storage. Its
/// content type is sniffed from the bytes (the request's `Content-Type` is ignored);
/// images get their size and a thumbnail. Attach it by sending a message with its id in
/// `attachments`.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads",
    security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes"),
    responses(
        (status = 201, description = "Stored, not attached yet", body = Upload),
        (status = 413, description = "`file_too_large` (over `--upload-max-bytes`) or `quota_exceeded` (over `--upload-quota-bytes` in all)", body = Problem),
        (status = 422, description = "Empty file, or an image of more than `--upload-max-pixels` pixels", body = Problem),
    ))]
pub async fn upload(
    State(uploads): State<Uploads>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let limits = uploads.limits;
    let filename = sniff::sanitize_filename(query.filename.as_deref().unwrap_or_default());
    let used = u64::try_from(uploads.store.used_bytes(user.id).await?).unwrap_or(0);
    let left = limits.quota_bytes.saturating_sub(used);
    let quota_exceeded = || Error::QuotaExceeded {
        quota: limits.quota_bytes,
        left,
    };
    // A declared length over the limit is refused before reading; the count below is
    // what enforces it, whatever was declared.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_bytes) {
        return Err(Error::FileTooLarge(limits.max_bytes));
    }
    if left == 0 || declared.is_some_and(|len| len > left) {
        return Err(quota_exceeded());
    }

    let id = new_upload_id();
    let key = format!("files/{id}");
    let mut inspection = Inspection {
        size: 0,
        allowed: limits.max_bytes.min(left),
        over: false,
        sha256: Sha256::new(),
        head: Vec::with_capacity(SNIFF_BYTES),
    };
    let stream: ByteStream<'_> =
        Box::pin(body.into_data_stream().map(|chunk| inspection.take(chunk)));
    match uploads.blobs.put(&key, stream).await {
        Ok(_) => {}
        Err(BlobError::Body(_)) if inspection.over => {
            return Err(if inspection.size > limits.max_bytes {
                Error::FileTooLarge(limits.max_bytes)
            } else {
                quota_exceeded()
            });
        }
        Err(BlobError::Body(err)) => {
            return Err(Error::InvalidInput(format!(
                "the upload was interrupted: {err}"
            )));
        }
        Err(err) => return Err(storage(err)),
    }
    if inspection.size == 0 {
        discard(&uploads, &key, None).await;
        return Err(Error::InvalidInput("the file is empty".into()));
    }
    let content_type = sniff::content_type(&inspection.head);
    let mut row = UploadRow {
        id: id.clone(),
        owner_id: user.id,
        filename,
        content_type,
        size: i64::try_from(inspection.size).unwrap_or(i64::MAX),
        sha256: hex(&inspection.sha256.finalize()),
        blob_key: key.clone(),
        width: None,
        height: None,
        thumbnail_key: None,
        room_id: None,
        created_at: now_millis(),
    };
    if sniff::is_inline_image(&row.content_type)
        && let Err(err) = add_thumbnail(&uploads, &mut row).await
    {
        discard(&uploads, &key, row.thumbnail_key.as_deref()).await;
        return Err(err);
    }
    let quota = i64::try_from(limits.quota_bytes).unwrap_or(i64::MAX);
    match uploads.store.insert(&row, quota).await {
        Ok(true) => {}
        Ok(false) => {
            discard(&uploads, &key, row.thumbnail_key.as_deref()).await;
            return Err(quota_exceeded());
        }
        Err(err) => {
            discard(&uploads, &key, row.thumbnail_key.as_deref()).await;
            return Err(err.into());
        }
    }
    Ok(created(Upload {
        attachment: row.attachment(),
        sha256: row.sha256,
        created_at: from_millis(row.created_at),
    }))
}

/// Decodes the stored image (bounded, off the runtime) and stores its thumbnail;
/// records its size in `row`. An image that does not decode is kept as a plain file;
/// one of too many pixels is refused.
async fn add_thumbnail(uploads: &Uploads, row: &mut UploadRow) -> Result<()> {
    let permit = uploads
        .thumbnailers
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::Internal("thumbnailer closed".into()))?;
    let blob = uploads
        .blobs
        .get(&row.blob_key)
        .await
        .map_err(storage)?
        .ok_or_else(|| Error::Internal("a stored upload vanished".into()))?;
    let bytes = read_all(blob, uploads.limits.max_bytes)
        .await
        .map_err(|err| storage(BlobError::Storage(err)))?;
    let content_type = row.content_type.clone();
    let max_pixels = uploads.limits.max_pixels;
    let made = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        thumbnail::make(&bytes, &content_type, max_pixels)
    })
    .await
    .map_err(|err| Error::Internal(format!("thumbnail task: {err}")))?;
    let thumb = match made {
        Ok(thumb) => thumb,
        Err(err @ ThumbnailError::TooManyPixels { .. }) => {
            return Err(Error::InvalidInput(err.to_string()));
        }
        Err(ThumbnailError::Undecodable(why)) => {
            tracing::debug!(upload = %row.id, %why, "image kept as a file: no thumbnail");
            return Ok(());
        }
    };
    let ending = match thumbnail::content_type(&thumb.bytes) {
        "image/png" => "png",
        _ => "jpg",
    };
    let key = format!("thumbs/{}-{ending}", row.id);
    let body: ByteStream<'static> = Box::pin(futures_util::stream::iter([Ok::<_, io::Error>(
        Bytes::from(thumb.bytes),
    )]));
    uploads.blobs.put(&key, body).await.map_err(storage)?;
    row.width = Some(i64::from(thumb.width));
    row.height = Some(i64::from(thumb.height));
    row.thumbnail_key = Some(key);
    Ok(())
}

/// Removes the blobs of an upload that will not be stored; failures are only logged
/// (an orphan blob costs disk, never correctness).
async fn discard(uploads: &Uploads, key: &str, thumbnail: Option<&str>) {
    for key in std::iter::once(key).chain(thumbnail) {
        if let Err(err) = uploads.blobs.delete(key).await {
            tracing::warn!(%key, error = %err, "cannot delete a discarded upload blob");
        }
    }
}

fn storage(err: BlobError) -> Error {
    Error::Store(StoreError::Unavailable(err.to_string()))
}

/// Query of a signed download link (see [`super::links`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LinkQuery {
    /// The user the link was signed for.
    user: Option<UserId>,
    /// Unix seconds after which the link is refused.
    expires: Option<i64>,
    /// The link's signature.
    sig: Option<String>,
}

/// Download an upload: its uploader, or members of the room it is attached to, with
/// the bearer token or a signed link (`GET /uploads/{id}/link`). Anyone else gets 404.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "uploads",
    security(("bearer" = []), ()),
    params(("id" = String, Path, description = "Upload id"), LinkQuery),
    responses(
        (status = 200, description = "The bytes, with the sniffed `Content-Type`, `Content-Disposition` (`inline` only for images the server decoded), `nosniff` and a sandboxing CSP", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No token and no valid, unexpired link", body = Problem),
        (status = 404, description = "No such upload, or not yours to read", body = Problem),
    ))]
pub async fn download(
    State(uploads): State<Uploads>,
    State(auth): State<Auth>,
    PathParam(id): PathParam<String>,
    QueryParams(link): QueryParams<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let row = readable(&uploads, &auth, &id, &link, &headers).await?;
    let inline = sniff::is_inline_image(&row.content_type) && row.width.is_some();
    serve(
        &uploads,
        &row.blob_key,
        &row.content_type,
        &format!("\"{}\"", row.sha256),
        &sniff::content_disposition(inline, &row.filename),
        &headers,
    )
    .await
}

/// Download an image upload's thumbnail (at most 320 pixels a side), under the same
/// rules as the file.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/thumbnail", tag = "uploads",
    security(("bearer" = []), ()),
    params(("id" = String, Path, description = "Upload id"), LinkQuery),
    responses(
        (status = 200, description = "PNG or JPEG thumbnail", content_type = "image/jpeg"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No token and no valid, unexpired link", body = Problem),
        (status = 404, description = "No such upload, no thumbnail, or not yours to read", body = Problem),
    ))]
pub async fn download_thumbnail(
    State(uploads): State<Uploads>,
    State(auth): State<Auth>,
    PathParam(id): PathParam<String>,
    QueryParams(link): QueryParams<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let row = readable(&uploads, &auth, &id, &link, &headers).await?;
    let key = row.thumbnail_key.ok_or(Error::NotFound("thumbnail"))?;
    // The key ends with the encoding chosen when it was made (see `add_thumbnail`).
    let content_type = if key.ends_with("-png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    serve(
        &uploads,
        &key,
        content_type,
        &format!("\"{}-t\"", row.sha256),
        &sniff::content_disposition(true, &format!("thumbnail-{}", row.filename)),
        &headers,
    )
    .await
}

/// The upload `id` if the request may read it; see [`download`].
async fn readable(
    uploads: &Uploads,
    auth: &Auth,
    id: &str,
    link: &LinkQuery,
    headers: &HeaderMap,
) -> Result<UploadRow> {
    if !is_upload_id(id) {
        return Err(Error::NotFound("upload"));
    }
    let user = if let Some(token) = bearer_token(headers) {
        crate::auth::authenticate(auth, token).await?.user()?.id
    } else if let (Some(user), Some(expires), Some(sig)) = (link.user, link.expires, &link.sig) {
        let now = now_millis() / 1000;
        if !uploads.links.verify(id, user, expires, sig, now) {
            return Err(Error::Unauthorized);
        }
        user
    } else {
        return Err(Error::Unauthorized);
    };
    uploads
        .store
        .readable(id, user)
        .await?
        .ok_or(Error::NotFound("upload"))
}

/// Streams blob `key` with the download headers; `304` when `If-None-Match` names
/// `etag`.
async fn serve(
    uploads: &Uploads,
    key: &str,
    content_type: &str,
    etag: &str,
    disposition: &str,
    headers: &HeaderMap,
) -> Result<Response> {
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| Error::Internal("unrepresentable header".into()))
    };
    let fixed = [
        (header::ETAG, value(etag)?),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOWNLOAD_CSP),
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let blob = uploads
            .blobs
            .get(key)
            .await
            .map_err(storage)?
            .ok_or(Error::NotFound("upload"))?;
        let mut response = Body::from_stream(blob.body).into_response();
        let out = response.headers_mut();
        out.insert(header::CONTENT_TYPE, value(content_type)?);
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
        out.insert(header::CONTENT_DISPOSITION, value(disposition)?);
        response
    };
    let out = response.headers_mut();
    for (name, value) in fixed {
        out.insert(name, value);
    }
    Ok(response)
}

/// A signed link to an upload (and its thumbnail) for the caller, good for
/// `--upload-link-ttl-secs`: for `<img src>` and download links, which cannot carry
/// the bearer token.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/link", tag = "uploads",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses(
        (status = 200, description = "Signed URLs", body = UploadLink),
        (status = 404, description = "No such upload, or not yours to read", body = Problem),
    ))]
pub async fn link(
    State(uploads): State<Uploads>,
    AuthUser(user): AuthUser,
    PathParam(id): PathParam<String>,
) -> Result<Json<UploadLink>> {
    if !is_upload_id(&id) {
        return Err(Error::NotFound("upload"));
    }
    let row = uploads
        .store
        .readable(&id, user.id)
        .await?
        .ok_or(Error::NotFound("upload"))?;
    let ttl = i64::try_from(uploads.links.ttl().as_secs()).unwrap_or(i64::MAX);
    let expires = now_millis() / 1000 + ttl;
    let sig = uploads.links.sign(&id, user.id, expires);
    let query = format!("?user={}&expires={expires}&sig={sig}", user.id);
    Ok(Json(UploadLink {
        url: format!("{}{query}", file_path(&id)),
        thumbnail_url: row
            .thumbnail_key
            .as_ref()
            .map(|_| format!("{}{query}", thumbnail_path(&id))),
        expires_at: from_millis(expires * 1000),
    }))
}

/// Delete one of your uploads that no message carries (attached ones stay with their
/// message); frees its bytes from your quota.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such upload of yours", body = Problem),
        (status = 409, description = "Attached to a message", body = Problem),
    ))]
pub async fn delete_upload(
    State(uploads): State<Uploads>,
    AuthUser(user): AuthUser,
    PathParam(id): PathParam<String>,
) -> Result<Response> {
    if !is_upload_id(&id) {
        return Err(Error::NotFound("upload"));
    }
    match uploads.store.delete_unattached(&id, user.id).await? {
        Some(row) => {
            discard(&uploads, &row.blob_key, row.thumbnail_key.as_deref()).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None if uploads.store.owned(&id, user.id).await?.is_some() => Err(Error::Conflict(
            "the upload is attached to a message and stays with it",
        )),
        None => Err(Error::NotFound("upload")),
    }
}

/// 16 random bytes, base64url: 22 characters.
fn new_upload_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Whether `id` has the shape of an upload id (and so is safe in a blob key).
pub fn is_upload_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
