//! Users service: who the caller is.

mod store;

use axum::routing::get;
use axum::{Json, Router};
use socket_hub_protocol::User;
use socket_hub_protocol::rest::Problem;

pub use store::{UserRecord, UserStore};

use crate::auth::AuthUser;
use crate::state::AppState;

/// Routes under `/api/v1/users`.
pub fn routes() -> Router<AppState> {
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
