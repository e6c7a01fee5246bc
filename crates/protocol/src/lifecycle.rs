//! A message's life after it is sent: edits, deletion, replies and reactions.
//!
//! Every change is a room event in the room's seq stream (`message_updated`,
//! `message_deleted`, `reaction`), so a client folds it into what it shows with
//! [`fold`], live or when it resumes with `since_seq`, and ends with the same view as
//! a fresh history page.

use serde::{Deserialize, Serialize};

use crate::model::{Message, RoomEvent, Seq, User, UserId};

/// Most distinct emojis one message may carry; a new one beyond is refused.
pub const MAX_DISTINCT_REACTIONS: usize = 20;
/// Longest reaction, in bytes (a flag or a family emoji with modifiers fits).
pub const MAX_EMOJI_BYTES: usize = 32;
/// Characters of the original that a reply quotes.
pub const REPLY_EXCERPT_CHARS: usize = 100;
/// What a reply quotes of an original that was deleted.
pub const DELETED_EXCERPT: &str = "(message deleted)";

/// The message a reply answers, as the reply shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct ReplyQuote {
    pub id: i64,
    pub seq: Seq,
    pub user: User,
    /// The start of the original's content (at most 100 characters), or
    /// `(message deleted)` once it is deleted.
    pub excerpt: String,
    /// The original was deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    /// Whether the asking user is one of them.
    pub me: bool,
}

/// Body of `PATCH /rooms/{id}/messages/{message_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct EditMessage {
    pub content: String,
}

/// Builds the quote of `original` that a reply to it carries.
pub fn quote(original: &Message) -> ReplyQuote {
    let deleted = original.deleted;
    ReplyQuote {
        id: original.id,
        seq: original.seq,
        user: original.user.clone(),
        excerpt: if deleted {
            DELETED_EXCERPT.to_owned()
        } else {
            excerpt(&original.content)
        },
        deleted,
    }
}

/// The first [`REPLY_EXCERPT_CHARS`] characters of `content`.
pub fn excerpt(content: &str) -> String {
    content.chars().take(REPLY_EXCERPT_CHARS).collect()
}

/// Folds one message of a room's stream into `timeline` (the room's messages as `me`
/// sees them, in seq order): a chat message is added (once, by id), a
/// `message_updated`, `message_deleted` or `reaction` event changes the message it
/// names (and the quotes of its replies); other room events are added like messages.
/// Events about a message not in `timeline` are ignored: it is older than what the
/// client holds, and a history page of it will show its current state.
pub fn fold(timeline: &mut Vec<Message>, incoming: &Message, me: UserId) {
    match &incoming.event {
        Some(RoomEvent::MessageUpdated {
            message_id,
            content,
            edited_at,
            mentions,
        }) => {
            update(timeline, *message_id, |m| {
                m.content.clone_from(content);
                m.edited_at = Some(*edited_at);
                m.mentions.clone_from(mentions);
            });
        }
        Some(RoomEvent::MessageDeleted {
            message_id,
            deleted_at,
        }) => {
            update(timeline, *message_id, |m| {
                m.content.clear();
                m.deleted = true;
                m.deleted_at = Some(*deleted_at);
                m.edited_at = None;
                m.mentions.clear();
                m.reactions.clear();
            });
        }
        Some(RoomEvent::Reaction {
            message_id,
            emoji,
            added,
        }) => {
            let mine = incoming.user.id == me;
            if let Some(m) = timeline.iter_mut().find(|m| m.id == *message_id) {
                react(&mut m.reactions, emoji, *added, mine);
            }
        }
        _ => {
            if timeline.iter().any(|m| m.id == incoming.id) {
                return;
            }
            let at = timeline.partition_point(|m| m.seq < incoming.seq);
            timeline.insert(at, incoming.clone());
        }
    }
}

/// Applies `change` to the message `id` and refreshes the quotes of its replies.
fn update(timeline: &mut [Message], id: i64, change: impl FnOnce(&mut Message)) {
    let Some(original) = timeline.iter_mut().find(|m| m.id == id) else {
        return;
    };
    change(original);
    let quoted = quote(original);
    for reply in timeline.iter_mut() {
        if let Some(q) = &mut reply.reply_to
            && q.id == id
        {
            *q = quoted.clone();
        }
    }
}

/// Counts one reaction in or out of `reactions`; an emoji whose count reaches zero
/// goes, a new one is added last.
pub fn react(reactions: &mut Vec<ReactionCount>, emoji: &str, added: bool, mine: bool) {
    match reactions.iter().position(|r| r.emoji == emoji) {
        Some(at) => {
            let r = &mut reactions[at];
            r.count += if added { 1 } else { -1 };
            if mine {
                r.me = added;
            }
            if r.count <= 0 {
                reactions.remove(at);
            }
        }
        None if added => reactions.push(ReactionCount {
            emoji: emoji.to_owned(),
            count: 1,
            me: mine,
        }),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, seq: Seq, user: i64, content: &str) -> Message {
        Message {
            id,
            room_id: 1,
            seq,
            user: User {
                id: user,
                username: format!("u{user}"),
            },
            content: content.into(),
            ..Message::default()
        }
    }

    fn event(id: i64, seq: Seq, user: i64, event: RoomEvent) -> Message {
        Message {
            event: Some(event),
            ..message(id, seq, user, "")
        }
    }

    #[test]
    fn edits_deletions_and_reactions_fold_into_the_message_and_its_replies() {
        let mut timeline = Vec::new();
        let original = message(1, 1, 7, "hello");
        let mut reply = message(2, 2, 8, "hi back");
        reply.reply_to = Some(quote(&original));
        fold(&mut timeline, &original, 8);
        fold(&mut timeline, &reply, 8);
        fold(&mut timeline, &reply, 8);
        assert_eq!(timeline.len(), 2, "a repeated message is added once");
        let at = chrono::DateTime::from_timestamp_millis(5).expect("time");
        fold(
            &mut timeline,
            &event(
                3,
                3,
                7,
                RoomEvent::MessageUpdated {
                    message_id: 1,
                    content: "hello @U8".into(),
                    edited_at: at,
                    mentions: vec!["u8".into()],
                },
            ),
            8,
        );
        assert_eq!(timeline[0].content, "hello @U8");
        assert_eq!(timeline[0].edited_at, Some(at));
        assert_eq!(
            timeline[1].reply_to.as_ref().map(|q| q.excerpt.as_str()),
            Some("hello @U8")
        );
        for (id, user, added) in [(4, 8, true), (5, 7, true), (6, 8, false)] {
            let reaction = RoomEvent::Reaction {
                message_id: 1,
                emoji: "👍".into(),
                added,
            };
            fold(&mut timeline, &event(id, id, user, reaction), 8);
        }
        assert_eq!(
            timeline[0].reactions,
            [ReactionCount {
                emoji: "👍".into(),
                count: 1,
                me: false
            }]
        );
        let deleted = RoomEvent::MessageDeleted {
            message_id: 1,
            deleted_at: at,
        };
        fold(&mut timeline, &event(7, 7, 7, deleted), 8);
        assert!(timeline[0].deleted && timeline[0].content.is_empty());
        assert!(timeline[0].reactions.is_empty());
        let quote = timeline[1].reply_to.as_ref().expect("quote");
        assert!(quote.deleted);
        assert_eq!(quote.excerpt, DELETED_EXCERPT);
    }
}
