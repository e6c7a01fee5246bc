//! The server's one error type, mapped once to an HTTP problem response and once to a
//! WebSocket `error` frame, so REST and WebSocket clients see the same codes.

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
    #[error("join the room on this connection first")]
    NotJoined,
    #[error("too many requests; slow down")]
    RateLimited,
    #[error("a connection may join at most {0} rooms; leave one first")]
    TooManyRooms(usize),
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
            Self::NotJoined => ErrorCode::NotJoined,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::TooManyRooms(_) => ErrorCode::TooManyRooms,
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
            ErrorCode::FrameTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized
            | ErrorCode::TokenExpired
            | ErrorCode::RefreshReused
            | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::WrongAccessCode | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
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
        ServerFrame::error(self.code(), self.public_detail(), reference)
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
        response
    }
}

/// Result of a server operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
