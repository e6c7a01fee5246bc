//! Users service: who the caller is.

mod store;

use axum::routing::get;
use axum::{Json, Router};
use socket_hub_protocol::User;
use socket_hub_protocol::rest::Problem;

pub use store::{UserRecord, UserStore};

use crate::auth::AuthUser;
use crate::error::{Error, Result};
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
pub async fn me(
    axum::extract::State(state): axum::extract::State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<User>> {
    // Read the account, not just the token, so a deleted user gets a 401.
    let user = state
        .store
        .find_user(user.id)
        .await?
        .ok_or(Error::Unauthorized)?;
    Ok(Json(user))
}
