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
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
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
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                problem_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::FrameTooLarge,
                    rejection.body_text(),
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
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
