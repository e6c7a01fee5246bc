//! A message's life after it is sent, over REST: replies, edits, deletions and
//! reactions. Their events arrive on the WebSocket in the room's stream; fold them into
//! what you show with [`socket_hub_protocol::lifecycle::fold`].

use reqwest::Method;
use socket_hub_protocol::lifecycle::EditMessage;
use socket_hub_protocol::rest::SendMessage;
use socket_hub_protocol::{Message, RoomId};

use crate::{Client, ClientError};

impl Client {
    /// Sends a message over REST that answers `reply_to` (a message of the same room).
    pub async fn send_reply(
        &self,
        room_id: RoomId,
        content: &str,
        client_msg_id: Option<&str>,
        reply_to: i64,
    ) -> Result<Message, ClientError> {
        let body = SendMessage {
            content: content.to_owned(),
            client_msg_id: client_msg_id.map(str::to_owned),
            reply_to: Some(reply_to),
            attachments: Vec::new(),
        };
        self.call(
            Method::POST,
            &format!("/rooms/{room_id}/messages"),
            Some(&body),
        )
        .await
    }

    /// Edits one of your messages; returns it as edited.
    pub async fn edit_message(
        &self,
        room_id: RoomId,
        message_id: i64,
        content: &str,
    ) -> Result<Message, ClientError> {
        let body = EditMessage {
            content: content.to_owned(),
        };
        let path = format!("/rooms/{room_id}/messages/{message_id}");
        self.call(Method::PATCH, &path, Some(&body)).await
    }

    /// Deletes a message (yours, or as an admin); deleting it again succeeds too.
    pub async fn delete_message(
        &self,
        room_id: RoomId,
        message_id: i64,
    ) -> Result<(), ClientError> {
        let path = format!("/rooms/{room_id}/messages/{message_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Adds your `emoji` reaction to a message (nothing changes if it is there).
    pub async fn add_reaction(
        &self,
        room_id: RoomId,
        message_id: i64,
        emoji: &str,
    ) -> Result<(), ClientError> {
        let path = reaction_path(room_id, message_id, emoji);
        self.call_empty(Method::PUT, &path, None::<&()>).await
    }

    /// Takes back your `emoji` reaction (nothing changes if it is not there).
    pub async fn remove_reaction(
        &self,
        room_id: RoomId,
        message_id: i64,
        emoji: &str,
    ) -> Result<(), ClientError> {
        let path = reaction_path(room_id, message_id, emoji);
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }
}

/// `/rooms/{id}/messages/{message_id}/reactions/{emoji}`, the emoji percent-encoded
/// byte by byte (a keycap's `#` must not end the path).
fn reaction_path(room_id: RoomId, message_id: i64, emoji: &str) -> String {
    use std::fmt::Write as _;
    let mut path = format!("/rooms/{room_id}/messages/{message_id}/reactions/");
    for byte in emoji.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            path.push(char::from(byte));
        } else {
            let _ = write!(path, "%{byte:02X}");
        }
    }
    path
}

#[cfg(test)]
mod tests {
    #[test]
    fn emojis_are_percent_encoded() {
        assert_eq!(
            super::reaction_path(1, 2, "👍"),
            "/rooms/1/messages/2/reactions/%F0%9F%91%8D"
        );
        assert_eq!(
            super::reaction_path(1, 2, "#\u{fe0f}\u{20e3}"),
            "/rooms/1/messages/2/reactions/%23%EF%B8%8F%E2%83%A3"
        );
    }
}
