//! Users service: who the caller is. Accounts themselves (creation, credentials) are
//! auth's, below this.

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use socket_hub_protocol::User;
use socket_hub_protocol::rest::Problem;

use crate::auth::{Auth, AuthUser};

/// Routes under `/api/v1/users`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Auth: FromRef<S>,
{
    Router::new().route("/users/me", get(me))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub async fn me(AuthUser(user): AuthUser) -> Json<User> {
    // `AuthUser` has already checked that the account exists.
    Json(user)
}
