//! TypeScript declarations of the protocol, for the web client (`web/src/api/protocol/`).
//!
//! The web client's wire types are generated from this crate so they cannot drift from
//! what the server speaks: `./scripts/gen-ts` (that is, `cargo run -p socket-hub-protocol
//! --features ts --example export-ts`) rewrites the directory, and a unit test of this crate
//! fails when the committed files differ from what this module renders.
//!
//! Types come from `ts-rs` derives (serde attributes honoured: tags, renames, optional
//! fields); 64-bit integers become `number` (ids and seqs stay far below 2^53). Constants
//! (close codes, subprotocol names) are not types, so this module writes them itself.

use ts_rs::{Config, TS};

use crate::attachments::{Attachment, Upload, UploadLink};
use crate::frames::{ClientFrame, CloseCode, ErrorCode, ServerFrame};
use crate::lifecycle::{EditMessage, ReactionCount, ReplyQuote};
use crate::model::{
    Member, Message, Notification, NotificationKind, PresenceStatus, Role, Room, RoomEvent, User,
};
use crate::rest::{
    AccountExport, Ban, BanList, BanRequest, ChangePassword, CreateInviteLink, CreateRoom,
    Credentials, DeleteAccount, DirectList, DirectView, Invitation, InvitationList, InviteLink,
    InviteLinkList, InvitePreview, InviteUser, JoinRoom, KickRequest, MarkNotificationsRead,
    MarkRead, MemberList, MessagePage, MuteRequest, NotificationList, OpenDirect, PresenceList,
    Problem, Profile, ReadReceipt, ReadReceipts, Readiness, RefreshRequest, RoomList, RoomView,
    SearchHit, SearchResults, SendMessage, Session, SetRole, SnippetPart, TransferOwnership,
    UnreadCount, UpdateProfile, UpdateRoom, UserPage, UserPresence,
};

/// Where the web client keeps the generated files, relative to this crate's manifest.
pub const WEB_CLIENT_DIR: &str = "../../web/src/api/protocol";

/// The first line of every generated file: says where it comes from and how to redo it.
const HEADER: &str = "// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.\n";

/// Every close code in [`CloseCode`], by name. A test checks this list against the source,
/// so a new close code cannot be left out of the web client.
pub const CLOSE_CODES: &[(&str, u16)] = &[
    ("GOING_AWAY", CloseCode::GOING_AWAY),
    ("INVALID_PAYLOAD", CloseCode::INVALID_PAYLOAD),
    ("POLICY_VIOLATION", CloseCode::POLICY_VIOLATION),
    ("TOO_BIG", CloseCode::TOO_BIG),
    ("SERVICE_RESTART", CloseCode::SERVICE_RESTART),
    ("TRY_AGAIN_LATER", CloseCode::TRY_AGAIN_LATER),
    ("UNAUTHORIZED", CloseCode::UNAUTHORIZED),
    ("KEEPALIVE_TIMEOUT", CloseCode::KEEPALIVE_TIMEOUT),
];

/// Every generated file as (file name, contents), sorted by name.
pub fn render() -> Result<Vec<(String, String)>, ts_rs::ExportError> {
    let cfg = Config::new().with_large_int("number");
    let mut files = Vec::new();
    let mut names = Vec::new();
    macro_rules! declare {
        ($($ty:ty),* $(,)?) => {$(
            let text = <$ty as TS>::export_to_string(&cfg)?;
            let name = <$ty as TS>::ident(&cfg);
            files.push((format!("{name}.ts"), format!("{HEADER}{text}")));
            names.push(name);
        )*};
    }
    declare!(
        ClientFrame,
        ServerFrame,
        ErrorCode,
        User,
        Room,
        Member,
        PresenceStatus,
        PresenceList,
        UserPresence,
        Message,
        Credentials,
        Session,
        RefreshRequest,
        CreateRoom,
        JoinRoom,
        RoomList,
        RoomView,
        MemberList,
        SendMessage,
        MarkRead,
        MessagePage,
        Problem,
        Readiness,
        Role,
        RoomEvent,
        UpdateRoom,
        KickRequest,
        BanRequest,
        Ban,
        BanList,
        MuteRequest,
        SetRole,
        TransferOwnership,
        InviteUser,
        Invitation,
        InvitationList,
        CreateInviteLink,
        InviteLink,
        InviteLinkList,
        InvitePreview,
        OpenDirect,
        DirectView,
        DirectList,
        NotificationKind,
        Notification,
        NotificationList,
        MarkNotificationsRead,
        UnreadCount,
        Profile,
        UpdateProfile,
        UserPage,
        ChangePassword,
        DeleteAccount,
        AccountExport,
        SearchResults,
        SearchHit,
        SnippetPart,
        ReadReceipt,
        ReadReceipts,
        ReplyQuote,
        ReactionCount,
        EditMessage,
        Attachment,
        Upload,
        UploadLink,
    );
    files.push(("constants.ts".into(), constants()));
    names.sort();
    let mut index = String::from(HEADER);
    for name in &names {
        index.push_str(&format!("export type {{ {name} }} from './{name}';\n"));
    }
    index.push_str("export * from './constants';\n");
    files.push(("index.ts".into(), index));
    files.sort();
    Ok(files)
}

/// The protocol's constants as TypeScript.
fn constants() -> String {
    let mut out = String::from(HEADER);
    out.push_str(
        "\n/** WebSocket close codes the server uses, so clients can decide whether to reconnect. */\n",
    );
    out.push_str("export const CloseCode = {\n");
    for (name, code) in CLOSE_CODES {
        out.push_str(&format!("  {name}: {code},\n"));
    }
    out.push_str("} as const;\n\n");
    out.push_str("/** The WebSocket subprotocol the server speaks. */\n");
    out.push_str(&format!(
        "export const SUBPROTOCOL = '{}';\n\n",
        crate::SUBPROTOCOL
    ));
    out.push_str("/** Prefix of the subprotocol entry that carries an access token. */\n");
    out.push_str(&format!(
        "export const BEARER_SUBPROTOCOL_PREFIX = '{}';\n",
        crate::BEARER_SUBPROTOCOL_PREFIX
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The committed declarations are exactly what this crate renders. On failure, run
    /// `./scripts/gen-ts` and commit the result.
    #[test]
    fn web_client_types_match_the_protocol_crate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(WEB_CLIENT_DIR);
        let expected = render().expect("declarations render");
        let mut committed: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; run ./scripts/gen-ts", dir.display()))
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "ts"))
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                (name, text)
            })
            .collect();
        committed.sort();
        let names = |files: &[(String, String)]| -> Vec<String> {
            files.iter().map(|(name, _)| name.clone()).collect()
        };
        assert_eq!(
            names(&committed),
            names(&expected),
            "files in {} differ from the protocol crate's types: run ./scripts/gen-ts",
            dir.display()
        );
        for ((name, have), (_, want)) in committed.iter().zip(&expected) {
            assert_eq!(
                have, want,
                "web/src/api/protocol/{name} is out of date: run ./scripts/gen-ts"
            );
        }
    }

    /// [`CLOSE_CODES`] names every `CloseCode` constant declared in `frames.rs`.
    #[test]
    fn every_close_code_is_exported() {
        let source = include_str!("frames.rs");
        let block = source
            .split("impl CloseCode {")
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .expect("frames.rs has `impl CloseCode`");
        let declared: Vec<String> = block
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .filter_map(|rest| rest.split(':').next())
            .map(str::to_owned)
            .collect();
        let exported: Vec<String> = CLOSE_CODES.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(exported, declared, "update CLOSE_CODES in src/ts.rs");
    }

    #[test]
    fn frames_are_tagged_unions_with_optional_fields() {
        let files = render().expect("declarations render");
        let text = |name: &str| {
            files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        let server = text("ServerFrame.ts");
        assert!(server.contains("\"type\": \"chat\""), "{server}");
        assert!(server.contains("ref?: string"), "{server}");
        let message = text("Message.ts");
        assert!(message.contains("seq: number"), "{message}");
        assert!(message.contains("created_at: string"), "{message}");
        assert!(message.contains("client_msg_id?: string"), "{message}");
    }
}
