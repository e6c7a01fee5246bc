//! REST plumbing shared by every service: a JSON body extractor whose rejections are
//! problem responses like every other error, and the request-duration metric.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use socket_hub_protocol::ErrorCode;

use crate::error::problem_response;

/// `Json<T>` whose rejection is an `application/problem+json` with `malformed_json`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(problem_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::MalformedJson,
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = body_bytes(req, state).await?;
        if contains_nul_escape(&bytes) {
            return Err(nul_refused());
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// The whole body, or `frame_too_large` past the body limit.
async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, Response> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|rejection| {
            problem_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::FrameTooLarge,
                rejection.body_text(),
            )
        })
}

/// `application/json` or any `application/*+json`, as axum's `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The refusal of a JSON body with a NUL (`\u0000`) in any string, key or value: PostgreSQL
/// text cannot hold one (it answers with an error, which would be a 500), and no field
/// of this API has a use for it. Checked here, once, for every JSON body, so each
/// backend answers the same `422 invalid_input` whichever field carried it. A raw NUL
/// byte is not valid JSON and is refused by the parser as `malformed_json`.
#[cold]
fn nul_refused() -> Response {
    crate::error::Error::InvalidInput("text must not contain NUL (\\u0000)".into()).into_response()
}

/// Whether a JSON text holds the escape `\u0000`. Backslashes occur only inside
/// strings, each starting an escape, so skipping escapes pairwise finds exactly the
/// NUL escapes (`\\u0000` is a backslash then `u0000`, not a NUL).
fn contains_nul_escape(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(offset) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        let at = i + offset;
        match bytes.get(at + 1) {
            Some(b'u') if bytes.get(at + 2..at + 6) == Some(b"0000".as_slice()) => return true,
            Some(_) => i = at + 2,
            None => return false,
        }
    }
    false
}

fn json_rejection(rejection: JsonRejection) -> Response {
    let (status, code) = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::MalformedJson)
        }
        JsonRejection::BytesRejection(_) => {
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::FrameTooLarge)
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::MalformedJson),
    };
    problem_response(status, code, rejection.body_text())
}

/// A `201 Created` JSON response.
pub fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

/// `Query<T>` whose rejection is a problem response with `invalid_input`.
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| {
                problem_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidInput,
                    rejection.body_text(),
                )
            })
    }
}

/// `Path<T>` whose rejection is a 404 problem: a malformed id names nothing.
pub struct PathParam<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PathParam<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| {
                problem_response(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    rejection.body_text(),
                )
            })
    }
}

/// Like [`JsonBody`], but an empty body means `T::default()` (for optional bodies such
/// as a join without access code).
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if contains_nul_escape(&bytes) {
            return Err(nul_refused());
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|err| {
            problem_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::MalformedJson,
                err.to_string(),
            )
        })
    }
}

/// Middleware recording each request's duration by method, matched route (the template,
/// e.g. `/api/v1/rooms/{id}`, never the raw path) and status, up to the response head
/// (a streamed body is not waited for; `/ws` counts until its 101).
pub async fn record_duration(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    crate::metrics::http_request(
        method.as_str(),
        route.as_deref(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod nul_tests {
    use super::contains_nul_escape;

    #[test]
    fn finds_nul_escapes_only() {
        assert!(contains_nul_escape(br#"{"username":"a\u0000b"}"#));
        assert!(contains_nul_escape(br#"{"a\u0000":1}"#));
        assert!(contains_nul_escape(br#"{"x":"\\\u0000"}"#));
        assert!(!contains_nul_escape(br#"{"x":"\\u0000"}"#));
        assert!(!contains_nul_escape(br#"{"x":"\u0001 \n \""}"#));
        assert!(!contains_nul_escape(br#"{"x":"\"#));
    }
}
