//! The server's one error type, mapped once to an HTTP problem response and once to a
//! WebSocket `error` frame, so REST and WebSocket clients see the same codes.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use socket_hub_protocol::rest::Problem;
use socket_hub_protocol::{ErrorCode, ServerFrame};

use crate::store::StoreError;

/// Why a request failed, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),
    #[error("message content is longer than {0} characters")]
    ContentTooLong(usize),
    #[error("missing or invalid access token")]
    Unauthorized,
    #[error("access token expired; refresh it")]
    TokenExpired,
    #[error("refresh token was already used; every session of that login is revoked")]
    RefreshReused,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("wrong access code")]
    WrongAccessCode,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    /// An invite link that expired, was used up or revoked.
    #[error("{0}")]
    Gone(&'static str),
    #[error("join the room on this connection first")]
    NotJoined,
    /// Refused by a rate limit, brute-force lock or quota; the client may try again
    /// after `retry_after` (REST: `Retry-After`; WebSocket: `retry_after_ms`).
    #[error("too many requests; retry in {}", human(*.retry_after))]
    RateLimited { retry_after: Duration },
    #[error("a connection may join at most {0} rooms; leave one first")]
    TooManyRooms(usize),
    /// An upload over `--upload-max-bytes` (the limit, in bytes).
    #[error("the file is larger than the {} limit", size(*.0))]
    FileTooLarge(u64),
    /// An upload that would take its owner past `--upload-quota-bytes`.
    #[error("the upload exceeds your storage quota of {} ({} left); delete unattached uploads or ask for more", size(*.quota), size(*.left))]
    QuotaExceeded { quota: u64, left: u64 },
    #[error("storage unavailable")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// The machine-readable code shared by REST problems and WebSocket error frames.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::ContentTooLong(_) => ErrorCode::ContentTooLong,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::RefreshReused => ErrorCode::RefreshReused,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::WrongAccessCode => ErrorCode::WrongAccessCode,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Gone(_) => ErrorCode::Gone,
            Self::NotJoined => ErrorCode::NotJoined,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::TooManyRooms(_) => ErrorCode::TooManyRooms,
            Self::FileTooLarge(_) => ErrorCode::FileTooLarge,
            Self::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Self::Store(StoreError::Unavailable(_)) => ErrorCode::Unavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::MalformedJson
            | ErrorCode::UnknownType
            | ErrorCode::InvalidInput
            | ErrorCode::ContentTooLong
            | ErrorCode::NotJoined
            | ErrorCode::TooManyRooms => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::FrameTooLarge | ErrorCode::FileTooLarge | ErrorCode::QuotaExceeded => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ErrorCode::Unauthorized
            | ErrorCode::TokenExpired
            | ErrorCode::RefreshReused
            | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::WrongAccessCode | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Gone => StatusCode::GONE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told; internals are logged, never sent.
    fn public_detail(&self) -> String {
        match self {
            Self::Store(err) => {
                tracing::error!(error = %err, "store failure");
                match err {
                    StoreError::Unavailable(_) => "storage is unavailable; retry later".into(),
                    _ => "internal error".into(),
                }
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal failure");
                "internal error".into()
            }
            other => other.to_string(),
        }
    }

    /// The WebSocket `error` frame for this error; `reference` names the request.
    pub fn to_frame(&self, reference: Option<String>) -> ServerFrame {
        match ServerFrame::error(self.code(), self.public_detail(), reference) {
            ServerFrame::Error {
                code,
                message,
                reference,
                ..
            } if matches!(self, Self::RateLimited { .. }) => ServerFrame::Error {
                code,
                message,
                reference,
                retry_after_ms: self.retry_after().map(millis),
            },
            frame => frame,
        }
    }

    /// How long a refused client should wait, for errors that say.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Builds a problem response; also used for errors that never become an [`Error`]
/// (malformed JSON bodies rejected by the extractor).
pub(crate) fn problem_response(status: StatusCode, code: ErrorCode, detail: String) -> Response {
    crate::metrics::error_sent(code, crate::metrics::Via::Http);
    let problem = Problem {
        kind: format!("urn:socket-hub:problem:{}", code.as_str()),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        code,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = problem_response(status, self.code(), self.public_detail());
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(wait) = self.retry_after() {
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        response
    }
}

/// Milliseconds for the wire, at least 1 so a client never reads "retry now".
pub(crate) fn millis(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().max(1)).unwrap_or(u64::MAX)
}

/// `1.5s`, `3s`, `2m 5s`: a wait as a person reads it.
fn human(wait: Duration) -> String {
    let secs = wait.as_secs();
    if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else if secs >= 1 {
        format!("{secs}s")
    } else {
        format!("{}ms", millis(wait))
    }
}

/// `10 MiB`, `512 KiB`, `100 bytes`: a size as a person reads it.
fn size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Result of a server operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
