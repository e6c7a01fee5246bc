//! `GET /users/presence`: the current presence of people the caller may see.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use socket_hub_protocol::UserId;
use socket_hub_protocol::rest::{PresenceList, Problem};

use super::{MAX_LOOKUP, Presence};
use crate::auth::{Auth, AuthUser};
use crate::error::{Error, Result};
use crate::http::QueryParams;

/// Routes under `/api/v1/users/presence`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Presence: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new().route("/users/presence", get(list))
}

/// Query of `GET /users/presence`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PresenceQuery {
    /// Comma-separated user ids, 1 to 200.
    ids: String,
}

/// The user ids of `ids=1,2,3`, at most [`MAX_LOOKUP`], without repeats.
fn parse_ids(ids: &str) -> Result<Vec<UserId>> {
    let mut out: Vec<UserId> = Vec::new();
    for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id = id
            .parse()
            .map_err(|_| Error::InvalidInput(format!("ids: {id:?} is not a user id")))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() || out.len() > MAX_LOOKUP {
        return Err(Error::InvalidInput(format!(
            "ids must name 1-{MAX_LOOKUP} users"
        )));
    }
    Ok(out)
}

/// Online, away or offline (with last seen) for each of `ids` who shares a room or
/// DM with the caller, and for the caller; the others are left out of the answer, so
/// it tells nothing about people the caller shares nothing with.
#[utoipa::path(get, path = "/api/v1/users/presence", tag = "users",
    security(("bearer" = [])),
    params(PresenceQuery),
    responses(
        (status = 200, description = "Those of the people asked about the caller may see", body = PresenceList),
        (status = 422, description = "ids not 1-200 user ids", body = Problem),
    ))]
pub async fn list(
    State(presence): State<Presence>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<PresenceQuery>,
) -> Result<Json<PresenceList>> {
    let ids = parse_ids(&query.ids)?;
    Ok(Json(PresenceList {
        users: presence.visible(user.id, &ids).await?,
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_ids;

    #[test]
    fn ids_are_parsed_deduplicated_and_bounded() {
        assert_eq!(parse_ids("3, 1,3,").ok(), Some(vec![3, 1]));
        assert!(parse_ids("").is_err());
        assert!(parse_ids("1,x").is_err());
        let many = (1..=201)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_ids(&many).is_err());
    }
}
