//! Attaching uploads to a message: checked and claimed before the message is appended,
//! so the append itself stays one insert (the metadata travels as a JSON column).

use socket_hub_protocol::{Attachment, RoomId, User};

use super::{Rooms, visible_room};
use crate::error::{Error, Result};
use crate::uploads::ClaimError;

/// Most uploads one message may carry.
pub(super) const MAX_ATTACHMENTS: usize = 10;

/// Claims `upload_ids` (the sender's own uploads) for `room_id` and returns their
/// metadata and its JSON for the message row; `None` without attachments.
///
/// Only a member may attach (checked first, so an upload is never bound to a room its
/// uploader cannot write to); an upload belongs to the first room it is attached to,
/// and attaching it there again (a retried send) is fine. Someone else's upload is
/// `not_found`, exactly like one that does not exist; one attached elsewhere is
/// `conflict`. A member muted between the check and the append gets the append's
/// refusal; the claimed upload then stays bound to the room, unreferenced.
pub(super) async fn claim(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    upload_ids: &[String],
) -> Result<Option<(Vec<Attachment>, String)>> {
    if upload_ids.is_empty() {
        return Ok(None);
    }
    if upload_ids.len() > MAX_ATTACHMENTS {
        return Err(Error::InvalidInput(format!(
            "a message carries at most {MAX_ATTACHMENTS} attachments"
        )));
    }
    let mut unique = upload_ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != upload_ids.len() {
        return Err(Error::InvalidInput("an upload is attached twice".into()));
    }
    if upload_ids
        .iter()
        .any(|id| !crate::uploads::routes::is_upload_id(id))
    {
        return Err(Error::NotFound("upload"));
    }
    if !rooms.store.is_member(room_id, user.id).await? {
        visible_room(rooms, user, room_id).await?;
        return Err(Error::Forbidden("join the room before sending to it"));
    }
    let attachments = rooms
        .uploads
        .claim(upload_ids, user.id, room_id)
        .await
        .map_err(|err| match err {
            ClaimError::NotFound(_) => Error::NotFound("upload"),
            ClaimError::OtherRoom(_) => {
                Error::Conflict("that upload is attached in another room; upload it again")
            }
            ClaimError::Store(err) => err.into(),
        })?;
    let json = serde_json::to_string(&attachments)
        .map_err(|err| Error::Internal(format!("attachments unencodable: {err}")))?;
    Ok(Some((attachments, json)))
}
