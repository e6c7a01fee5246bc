//! Reading state: read markers, unread counts and "seen by".
//!
//! A member's read marker is `memberships.last_read_seq`. The server counts unread
//! messages from it (chat messages of others after the marker; room events, erased
//! messages and one's own do not count) in every room view ([`UNREAD_COLUMN`]), capped
//! at [`MAX_UNREAD`] so a huge backlog costs a bounded scan.
//!
//! Live updates cost nothing per message: a client already receives the `chat` frames
//! of every room it has joined on its socket and adds one per message of others. What
//! the client cannot know is a marker moved elsewhere, so when a marker moves
//! ([`mark_read`], from the `read` frame or `POST /rooms/{id}/read`) the server sends
//! one `read_marker` frame with the new count to the reader's own connections (their
//! user channel: O(1) per read), and, in rooms of at most [`MAX_RECEIPT_MEMBERS`]
//! members only, one to the room for "seen by" (`GET /rooms/{id}/receipts` gives the
//! markers to start from).

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use socket_hub_protocol::rest::{
    MAX_RECEIPT_MEMBERS, MAX_UNREAD, Problem, ReadReceipt, ReadReceipts,
};
use socket_hub_protocol::{RoomId, Seq, ServerFrame, User, UserId};

use super::{Rooms, visible_room};
use crate::auth::{Auth, AuthUser};
use crate::broker::{Envelope, encode};
use crate::error::{Error, Result};
use crate::http::PathParam;
use crate::store::{Db, StoreError};

/// The `unread` column of a room query whose room is `r` and whose asking member's
/// membership is `m` (NULL when not a member). The `LIMIT` is [`MAX_UNREAD`] (a test
/// checks it). Served by the UNIQUE (room_id, seq) index.
pub(super) const UNREAD_COLUMN: &str = "CASE WHEN m.user_id IS NULL THEN 0 ELSE (
         SELECT COUNT(*) FROM (
             SELECT 1 FROM messages x
             WHERE x.room_id = r.id AND x.seq > m.last_read_seq AND x.event IS NULL
               AND x.user_id <> m.user_id AND x.deleted_at IS NULL
             LIMIT 1000) unread_rows) END AS unread";

/// Routes of reading state under `/api/v1`.
pub(super) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new().route("/rooms/{id}/receipts", get(receipts))
}

/// Moves `user`'s read marker in `room_id` forward to `seq` (never back, never past the
/// room's newest message) and, when it moved, tells their connections the new unread
/// count and, in a small room, the other members. Not a member: nothing moves. Their
/// `mentioned` notifications up to `seq` are marked read too, so the bell stops counting
/// what they have read (also when the marker was already there: a mention is notified
/// after its message is stored, so it can arrive after the marker moved past it).
pub(crate) async fn mark_read(rooms: &Rooms, user: &User, room_id: RoomId, seq: Seq) -> Result<()> {
    rooms
        .notifier
        .store
        .mark_mentions_read(user.id, room_id, seq)
        .await?;
    let db = rooms.store.db();
    let Some(marker) = rooms.store.mark_read(room_id, user.id, seq).await? else {
        return Ok(());
    };
    let Some(after) = counts(db, room_id, user.id).await? else {
        return Ok(()); // left the room meanwhile
    };
    let mine = ServerFrame::ReadMarker {
        room_id,
        user: user.clone(),
        seq: marker,
        unread: Some(u32::try_from(after.unread).unwrap_or(MAX_UNREAD)),
        last_seq: Some(after.last_seq),
    };
    rooms.broker.publish_to_user(user.id, encode(&mine));
    if after.members <= MAX_RECEIPT_MEMBERS {
        let theirs = ServerFrame::ReadMarker {
            room_id,
            user: user.clone(),
            seq: marker,
            unread: None,
            last_seq: None,
        };
        rooms
            .broker
            .publish(Envelope::ephemeral(room_id, Some(user.id), &theirs));
    }
    Ok(())
}

/// A member's view of a room after their marker moved.
#[derive(sqlx::FromRow)]
struct Counts {
    last_seq: Seq,
    unread: i64,
    /// Members, counted up to one more than [`MAX_RECEIPT_MEMBERS`].
    members: i64,
}

async fn counts(db: &Db, room_id: RoomId, user_id: UserId) -> Result<Option<Counts>, StoreError> {
    let sql = format!(
        "SELECT r.last_seq, {UNREAD_COLUMN},
                (SELECT COUNT(*) FROM (SELECT 1 FROM memberships c WHERE c.room_id = r.id
                                       LIMIT {}) few) AS members
         FROM rooms r JOIN memberships m ON m.room_id = r.id AND m.user_id = $2
         WHERE r.id = $1",
        MAX_RECEIPT_MEMBERS + 1
    );
    Ok(sqlx::query_as(&sql)
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(db.reader())
        .await?)
}

#[derive(sqlx::FromRow)]
struct ReceiptRow {
    user_id: i64,
    username: String,
    last_read_seq: i64,
}

/// Every member's read marker, in user-id order, for "seen by": rooms of at most 50
/// members only.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/receipts", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 200, description = "Each member's read marker", body = ReadReceipts),
        (status = 403, description = "Not a member of this public room", body = Problem),
        (status = 404, description = "No such room, or a private room of others", body = Problem),
        (status = 422, description = "The room has more than 50 members", body = Problem),
    ))]
pub async fn receipts(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Json<ReadReceipts>> {
    let room = visible_room(&rooms, &user, room_id).await?;
    if !room.view.room.is_member {
        return Err(Error::Forbidden("join the room to see who read it"));
    }
    let rows: Vec<ReceiptRow> = sqlx::query_as(
        "SELECT u.id AS user_id, u.username, m.last_read_seq
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = $1 ORDER BY m.user_id LIMIT $2",
    )
    .bind(room_id)
    .bind(MAX_RECEIPT_MEMBERS + 1)
    .fetch_all(rooms.store.db().reader())
    .await
    .map_err(StoreError::from)?;
    if rows.len() as i64 > MAX_RECEIPT_MEMBERS {
        return Err(Error::InvalidInput(format!(
            "read receipts are shared in rooms of at most {MAX_RECEIPT_MEMBERS} members"
        )));
    }
    Ok(Json(ReadReceipts {
        receipts: rows
            .into_iter()
            .map(|row| ReadReceipt {
                user: User {
                    id: row.user_id,
                    username: row.username,
                },
                last_read_seq: row.last_read_seq,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn unread_counting_stops_at_max_unread() {
        let limit = format!("LIMIT {})", super::MAX_UNREAD);
        assert!(super::UNREAD_COLUMN.contains(&limit));
    }
}
