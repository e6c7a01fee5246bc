//! The REST half of the SDK.

use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use socket_hub_protocol::rest::{
    AccountExport, BanList, BanRequest, ChangePassword, CreateInviteLink, CreateRoom, Credentials,
    DeleteAccount, DirectList, DirectView, Invitation, InvitationList, InviteLink, InviteLinkList,
    InvitePreview, InviteUser, JoinRoom, KickRequest, MarkNotificationsRead, MarkRead, MemberList,
    MessagePage, MuteRequest, NotificationList, OpenDirect, Problem, Profile, ReadReceipts,
    RefreshRequest, RoomList, RoomView, SearchResults, SendMessage, Session, SetRole,
    TransferOwnership, UnreadCount, UpdateProfile, UpdateRoom, UserPage, UserPresence,
};
use socket_hub_protocol::{Message, Role, RoomId, Seq, Upload, UploadLink, User, UserId};

use crate::ClientError;

/// A REST client bound to one server and (after sign-in) one user's access token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    access_token: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base_url.into().trim_end_matches('/').to_owned(),
            access_token: None,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The access token used for authenticated calls, if signed in.
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    /// Uses `token` for the following calls.
    pub fn set_access_token(&mut self, token: impl Into<String>) {
        self.access_token = Some(token.into());
    }

    /// Creates an account and signs in with it.
    pub async fn register(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<Session, ClientError> {
        let session: Session = self
            .call(
                Method::POST,
                "/auth/register",
                Some(&credentials(username, password)),
            )
            .await?;
        self.access_token = Some(session.access_token.clone());
        Ok(session)
    }

    /// Signs in.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<Session, ClientError> {
        let session: Session = self
            .call(
                Method::POST,
                "/auth/login",
                Some(&credentials(username, password)),
            )
            .await?;
        self.access_token = Some(session.access_token.clone());
        Ok(session)
    }

    /// Trades a refresh token for a new pair and uses the new access token.
    pub async fn refresh(&mut self, refresh_token: &str) -> Result<Session, ClientError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let session: Session = self
            .call(Method::POST, "/auth/refresh", Some(&body))
            .await?;
        self.access_token = Some(session.access_token.clone());
        Ok(session)
    }

    /// Revokes the refresh token's whole family.
    pub async fn logout(&mut self, refresh_token: &str) -> Result<(), ClientError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.call_empty(Method::POST, "/auth/logout", Some(&body))
            .await
    }

    /// The signed-in user.
    pub async fn me(&self) -> Result<User, ClientError> {
        self.call(Method::GET, "/users/me", None::<&()>).await
    }

    /// Creates a room (private ones need an access code).
    pub async fn create_room(
        &self,
        name: &str,
        is_private: bool,
        access_code: Option<&str>,
    ) -> Result<RoomView, ClientError> {
        let body = CreateRoom {
            name: name.to_owned(),
            is_private,
            access_code: access_code.map(str::to_owned),
        };
        self.call(Method::POST, "/rooms", Some(&body)).await
    }

    /// Public rooms and the user's rooms: every page, following `next`.
    pub async fn list_rooms(&self) -> Result<Vec<RoomView>, ClientError> {
        self.all_rooms("/rooms").await
    }

    /// The rooms the user is a member of: every page, following `next`.
    pub async fn joined_rooms(&self) -> Result<Vec<RoomView>, ClientError> {
        self.all_rooms("/rooms/joined").await
    }

    /// One page of `GET /rooms` (or, `joined_only`, `GET /rooms/joined`): rooms with
    /// ids above `after`, at most `limit` (server default when `None`).
    pub async fn rooms_page(
        &self,
        joined_only: bool,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<RoomList, ClientError> {
        let base = if joined_only {
            "/rooms/joined"
        } else {
            "/rooms"
        };
        self.call(Method::GET, &page_path(base, after, limit), None::<&()>)
            .await
    }

    async fn all_rooms(&self, base: &str) -> Result<Vec<RoomView>, ClientError> {
        let mut rooms = Vec::new();
        let mut after = None;
        loop {
            let page: RoomList = self
                .call(Method::GET, &page_path(base, after, None), None::<&()>)
                .await?;
            rooms.extend(page.rooms);
            match page.next {
                // A cursor must move forward; anything else would loop forever.
                Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
                _ => return Ok(rooms),
            }
        }
    }

    /// One room.
    pub async fn room(&self, room_id: RoomId) -> Result<RoomView, ClientError> {
        self.call(Method::GET, &format!("/rooms/{room_id}"), None::<&()>)
            .await
    }

    /// Becomes a member.
    pub async fn join_room(
        &self,
        room_id: RoomId,
        access_code: Option<&str>,
    ) -> Result<RoomView, ClientError> {
        let body = JoinRoom {
            access_code: access_code.map(str::to_owned),
        };
        self.call(Method::POST, &format!("/rooms/{room_id}/join"), Some(&body))
            .await
    }

    /// Ends membership.
    pub async fn leave_room(&self, room_id: RoomId) -> Result<(), ClientError> {
        self.call_empty(
            Method::POST,
            &format!("/rooms/{room_id}/leave"),
            None::<&()>,
        )
        .await
    }

    /// The room's members: every page, following `next` (so `next` is `None`).
    pub async fn members(&self, room_id: RoomId) -> Result<MemberList, ClientError> {
        let mut all = MemberList {
            members: Vec::new(),
            next: None,
        };
        let mut after = None;
        loop {
            let page = self.members_page(room_id, after, None).await?;
            all.members.extend(page.members);
            match page.next {
                Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// One page of the room's members: user ids above `after`, at most `limit`.
    pub async fn members_page(
        &self,
        room_id: RoomId,
        after: Option<UserId>,
        limit: Option<u32>,
    ) -> Result<MemberList, ClientError> {
        let path = page_path(&format!("/rooms/{room_id}/members"), after, limit);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// One page of history, newest first.
    pub async fn history(
        &self,
        room_id: RoomId,
        before_seq: Option<Seq>,
        limit: Option<u32>,
    ) -> Result<MessagePage, ClientError> {
        let mut query = Vec::new();
        if let Some(before) = before_seq {
            query.push(format!("before_seq={before}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let path = format!("/rooms/{room_id}/messages?{}", query.join("&"));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Sends a message over REST.
    pub async fn send_message(
        &self,
        room_id: RoomId,
        content: &str,
        client_msg_id: Option<&str>,
    ) -> Result<Message, ClientError> {
        let body = SendMessage {
            content: content.to_owned(),
            client_msg_id: client_msg_id.map(str::to_owned),
            reply_to: None,
            attachments: Vec::new(),
        };
        self.send_message_with(room_id, &body).await
    }

    /// Sends a message over REST with every field of [`SendMessage`] (attachments:
    /// ids from [`Client::upload`]).
    pub async fn send_message_with(
        &self,
        room_id: RoomId,
        body: &SendMessage,
    ) -> Result<Message, ClientError> {
        self.call(
            Method::POST,
            &format!("/rooms/{room_id}/messages"),
            Some(body),
        )
        .await
    }

    /// Moves the read marker.
    pub async fn mark_read(&self, room_id: RoomId, seq: Seq) -> Result<(), ClientError> {
        self.call_empty(
            Method::POST,
            &format!("/rooms/{room_id}/read"),
            Some(&MarkRead { seq }),
        )
        .await
    }

    fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = &self.access_token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        Self::checked(self.request(method, path, body)).await
    }

    /// Sends `request`; an error status becomes [`ClientError::Http`] with its problem.
    async fn checked(request: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let problem = response.json::<Problem>().await.ok();
        Err(ClientError::Http { status, problem })
    }

    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        self.send(method, path, body)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub(crate) async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        self.send(method, path, body).await.map(drop)
    }
}

/// Roles and moderation: each call is one action of the permission table, and each
/// (but deletion) returns the room event it stored.
impl Client {
    /// Changes the room's name, topic, access code (`""` clears it) or visibility.
    pub async fn update_room(
        &self,
        room_id: RoomId,
        update: &UpdateRoom,
    ) -> Result<RoomView, ClientError> {
        self.call(Method::PATCH, &format!("/rooms/{room_id}"), Some(update))
            .await
    }

    /// Deletes the room and its history (the owner only).
    pub async fn delete_room(&self, room_id: RoomId) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &format!("/rooms/{room_id}"), None::<&()>)
            .await
    }

    /// Removes a member, who may join again.
    pub async fn kick(
        &self,
        room_id: RoomId,
        user_id: UserId,
        reason: Option<&str>,
    ) -> Result<Message, ClientError> {
        let body = KickRequest {
            reason: reason.map(str::to_owned),
        };
        let path = format!("/rooms/{room_id}/members/{user_id}/kick");
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// Bans a user for `duration_secs` (for ever when `None`).
    pub async fn ban(
        &self,
        room_id: RoomId,
        user_id: UserId,
        reason: Option<&str>,
        duration_secs: Option<u64>,
    ) -> Result<Message, ClientError> {
        let body = BanRequest {
            user_id,
            reason: reason.map(str::to_owned),
            duration_secs,
        };
        self.call(Method::POST, &format!("/rooms/{room_id}/bans"), Some(&body))
            .await
    }

    /// Lifts a ban.
    pub async fn unban(&self, room_id: RoomId, user_id: UserId) -> Result<Message, ClientError> {
        let path = format!("/rooms/{room_id}/bans/{user_id}");
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// The room's active bans.
    pub async fn bans(&self, room_id: RoomId) -> Result<BanList, ClientError> {
        self.call(Method::GET, &format!("/rooms/{room_id}/bans"), None::<&()>)
            .await
    }

    /// Mutes a member for `duration_secs` (until unmuted when `None`).
    pub async fn mute(
        &self,
        room_id: RoomId,
        user_id: UserId,
        duration_secs: Option<u64>,
    ) -> Result<Message, ClientError> {
        let path = format!("/rooms/{room_id}/members/{user_id}/mute");
        self.call(Method::POST, &path, Some(&MuteRequest { duration_secs }))
            .await
    }

    /// Lifts a member's mute.
    pub async fn unmute(&self, room_id: RoomId, user_id: UserId) -> Result<Message, ClientError> {
        let path = format!("/rooms/{room_id}/members/{user_id}/mute");
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// Promotes (`Role::Admin`) or demotes (`Role::Member`) a member.
    pub async fn set_role(
        &self,
        room_id: RoomId,
        user_id: UserId,
        role: Role,
    ) -> Result<Message, ClientError> {
        let path = format!("/rooms/{room_id}/members/{user_id}/role");
        self.call(Method::PUT, &path, Some(&SetRole { role })).await
    }

    /// Makes another member the owner; the caller becomes an admin.
    pub async fn transfer_ownership(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<Message, ClientError> {
        let path = format!("/rooms/{room_id}/transfer");
        self.call(Method::POST, &path, Some(&TransferOwnership { user_id }))
            .await
    }
}

/// Invitations and invite links.
impl Client {
    /// Invites `username` to the room.
    pub async fn invite(&self, room_id: RoomId, username: &str) -> Result<Invitation, ClientError> {
        let body = InviteUser {
            username: username.to_owned(),
        };
        let path = format!("/rooms/{room_id}/invitations");
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// The signed-in user's pending invitations.
    pub async fn invitations(&self) -> Result<InvitationList, ClientError> {
        self.call(Method::GET, "/invitations", None::<&()>).await
    }

    /// Accepts an invitation: a member of its room now.
    pub async fn accept_invitation(&self, id: i64) -> Result<RoomView, ClientError> {
        let path = format!("/invitations/{id}/accept");
        self.call(Method::POST, &path, None::<&()>).await
    }

    /// Declines (removes) an invitation.
    pub async fn decline_invitation(&self, id: i64) -> Result<(), ClientError> {
        let path = format!("/invitations/{id}/decline");
        self.call_empty(Method::POST, &path, None::<&()>).await
    }

    /// Creates an invite link (its `token` is in this answer only).
    pub async fn create_invite_link(
        &self,
        room_id: RoomId,
        max_uses: Option<u32>,
        expires_in: Option<u64>,
    ) -> Result<InviteLink, ClientError> {
        let body = CreateInviteLink {
            max_uses,
            expires_in,
        };
        let path = format!("/rooms/{room_id}/invites");
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// The room's invite links.
    pub async fn invite_links(&self, room_id: RoomId) -> Result<InviteLinkList, ClientError> {
        let path = format!("/rooms/{room_id}/invites");
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Revokes an invite link.
    pub async fn revoke_invite_link(&self, room_id: RoomId, id: i64) -> Result<(), ClientError> {
        let path = format!("/rooms/{room_id}/invites/{id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Where an invite link leads.
    pub async fn preview_invite(&self, token: &str) -> Result<InvitePreview, ClientError> {
        self.call(Method::GET, &format!("/invites/{token}"), None::<&()>)
            .await
    }

    /// Joins the room an invite link leads to.
    pub async fn accept_invite(&self, token: &str) -> Result<RoomView, ClientError> {
        let path = format!("/invites/{token}/accept");
        self.call(Method::POST, &path, None::<&()>).await
    }
}

/// Direct messages and blocking.
impl Client {
    /// Opens (or finds) the one-to-one conversation with `username`.
    pub async fn open_direct(&self, username: &str) -> Result<DirectView, ClientError> {
        let body = OpenDirect {
            username: username.to_owned(),
        };
        self.call(Method::POST, "/dms", Some(&body)).await
    }

    /// The signed-in user's conversations.
    pub async fn directs(&self) -> Result<DirectList, ClientError> {
        self.call(Method::GET, "/dms", None::<&()>).await
    }

    /// Blocks a user.
    pub async fn block(&self, user_id: UserId) -> Result<(), ClientError> {
        let path = format!("/users/{user_id}/block");
        self.call_empty(Method::POST, &path, None::<&()>).await
    }

    /// Lifts a block.
    pub async fn unblock(&self, user_id: UserId) -> Result<(), ClientError> {
        let path = format!("/users/{user_id}/block");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }
}

/// Notifications.
impl Client {
    /// A page of notifications with ids above `after`, oldest first, and the unread count.
    pub async fn notifications(
        &self,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<NotificationList, ClientError> {
        self.call(
            Method::GET,
            &page_path("/notifications", after, limit),
            None::<&()>,
        )
        .await
    }

    /// How many notifications are unread.
    pub async fn unread_notifications(&self) -> Result<UnreadCount, ClientError> {
        self.call(Method::GET, "/notifications/unread", None::<&()>)
            .await
    }

    /// Marks every notification up to `up_to` read.
    pub async fn mark_notifications_read(&self, up_to: i64) -> Result<(), ClientError> {
        let body = MarkNotificationsRead { up_to };
        self.call_empty(Method::POST, "/notifications/read", Some(&body))
            .await
    }
}

/// Profiles.
impl Client {
    /// Changes the password; every other login session of the user is revoked.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), ClientError> {
        let body = ChangePassword {
            current_password: current.to_owned(),
            new_password: new.to_owned(),
        };
        self.call_empty(Method::POST, "/users/me/password", Some(&body))
            .await
    }

    /// Deletes the signed-in account (its password confirms it).
    pub async fn delete_account(&self, password: &str) -> Result<(), ClientError> {
        let body = DeleteAccount {
            password: password.to_owned(),
        };
        self.call_empty(Method::DELETE, "/users/me", Some(&body))
            .await
    }

    /// Everything the server keeps that is the signed-in user's own.
    pub async fn export_account(&self) -> Result<AccountExport, ClientError> {
        self.call(Method::GET, "/users/me/export", None::<&()>)
            .await
    }

    /// A user's profile.
    pub async fn profile(&self, user_id: UserId) -> Result<Profile, ClientError> {
        self.call(Method::GET, &format!("/users/{user_id}"), None::<&()>)
            .await
    }

    /// Changes the signed-in user's display name or status (`""` clears one).
    pub async fn update_profile(&self, update: &UpdateProfile) -> Result<Profile, ClientError> {
        self.call(Method::PATCH, "/users/me", Some(update)).await
    }

    /// Online, away or offline (with last seen) for those of `users` who share a room
    /// or DM with the signed-in user; the others are left out of the answer.
    pub async fn presence(&self, users: &[UserId]) -> Result<Vec<UserPresence>, ClientError> {
        let ids: Vec<String> = users.iter().map(ToString::to_string).collect();
        let path = format!("/users/presence?ids={}", ids.join(","));
        let list: socket_hub_protocol::rest::PresenceList =
            self.call(Method::GET, &path, None::<&()>).await?;
        Ok(list.users)
    }

    /// One page of the users whose name starts with `query`.
    pub async fn search_users(
        &self,
        query: &str,
        after: Option<UserId>,
        limit: Option<u32>,
    ) -> Result<UserPage, ClientError> {
        let base = format!("/users?query={}", urlencoding(query));
        let mut path = page_path("", after, limit);
        if let Some(rest) = path.strip_prefix('?') {
            path = format!("{base}&{rest}");
        } else {
            path = base;
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Full-text search over the messages of my rooms and DMs, best match first
    /// (`before`: the previous page's `next`).
    pub async fn search(
        &self,
        q: &str,
        room_id: Option<RoomId>,
        before: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SearchResults, ClientError> {
        let mut path = format!("/search?q={}", urlencoding(q));
        if let Some(room_id) = room_id {
            path.push_str(&format!("&room_id={room_id}"));
        }
        if let Some(before) = before {
            path.push_str(&format!("&before={}", urlencoding(before)));
        }
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Every member's read marker in a room of at most 50 members ("seen by").
    pub async fn receipts(&self, room_id: RoomId) -> Result<ReadReceipts, ClientError> {
        self.call(
            Method::GET,
            &format!("/rooms/{room_id}/receipts"),
            None::<&()>,
        )
        .await
    }
}

/// Attachments: upload a file, get a signed link, download, delete.
impl Client {
    /// Uploads `bytes` as `filename`; attach the returned id by sending a message with
    /// it in `attachments`. The server sniffs the content type from the bytes.
    pub async fn upload(
        &self,
        filename: &str,
        bytes: impl Into<reqwest::Body>,
    ) -> Result<Upload, ClientError> {
        let path = format!("/uploads?filename={}", urlencoding(filename));
        let request = self
            .request(Method::POST, &path, None::<&()>)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        let response = Self::checked(request).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Downloads an attachment (or its thumbnail) by the `url` or `thumbnail_url` of
    /// an [`Attachment`](socket_hub_protocol::Attachment), or a signed link: the bytes
    /// and the response's `Content-Type`.
    pub async fn download(&self, url: &str) -> Result<(Vec<u8>, String), ClientError> {
        let mut request = self.http.get(format!("{}{url}", self.base));
        if let Some(token) = &self.access_token {
            request = request.bearer_auth(token);
        }
        let response = Self::checked(request).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok((bytes.to_vec(), content_type))
    }

    /// A short-lived signed link to an upload and its thumbnail, usable without the
    /// token (e.g. handed to an image viewer).
    pub async fn upload_link(&self, upload_id: &str) -> Result<UploadLink, ClientError> {
        self.call(
            Method::GET,
            &format!("/uploads/{}/link", urlencoding(upload_id)),
            None::<&()>,
        )
        .await
    }

    /// Deletes one of the user's uploads that no message carries.
    pub async fn delete_upload(&self, upload_id: &str) -> Result<(), ClientError> {
        self.call_empty(
            Method::DELETE,
            &format!("/uploads/{}", urlencoding(upload_id)),
            None::<&()>,
        )
        .await
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn urlencoding(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `base` with the cursor query of a paginated list.
fn page_path(base: &str, after: Option<i64>, limit: Option<u32>) -> String {
    let mut query = Vec::new();
    if let Some(after) = after {
        query.push(format!("after={after}"));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", query.join("&"))
    }
}

fn credentials(username: &str, password: &str) -> Credentials {
    Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    }
}
