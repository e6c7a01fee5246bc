//! Queries on `rooms` and `memberships`, one text for both backends.

use socket_hub_protocol::rest::{Ban, DirectView, Invitation, InviteLink, InvitePreview, RoomView};
use socket_hub_protocol::{Member, Message, Role, Room, RoomEvent, RoomId, Seq, User, UserId};

use super::reading::UNREAD_COLUMN;
use crate::store::{Backend, Db, StoreError, WriteTx, from_millis, now_millis};

/// A room as seen by one user, plus the hash needed to check its access code.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    pub view: RoomView,
    pub access_code_hash: Option<String>,
}

/// A room joined with the membership of the user bound as the query's user.
#[derive(sqlx::FromRow)]
pub(super) struct RoomRow {
    id: i64,
    name: String,
    topic: Option<String>,
    is_private: i64,
    is_direct: i64,
    owner_id: i64,
    last_seq: i64,
    created_at: i64,
    member_count: i64,
    is_member: i64,
    last_read_seq: i64,
    /// See [`super::reading::UNREAD_COLUMN`].
    unread: i64,
    role: Option<String>,
    access_code_hash: Option<String>,
}

impl From<RoomRow> for RoomAccess {
    fn from(row: RoomRow) -> Self {
        RoomAccess {
            view: RoomView {
                room: Room {
                    id: row.id,
                    name: row.name,
                    topic: row.topic,
                    is_private: row.is_private != 0,
                    is_direct: row.is_direct != 0,
                    has_access_code: row.access_code_hash.is_some(),
                    owner_id: row.owner_id,
                    last_seq: row.last_seq,
                    created_at: from_millis(row.created_at),
                    member_count: row.member_count,
                    is_member: row.is_member != 0,
                },
                last_read_seq: row.last_read_seq,
                role: row.role.as_deref().and_then(Role::parse),
                unread: u32::try_from(row.unread).unwrap_or(0),
            },
            access_code_hash: row.access_code_hash,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: i64,
    username: String,
    role: String,
    muted_until: Option<i64>,
    joined_at: i64,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Member {
            user: User {
                id: row.user_id,
                username: row.username,
            },
            role: row.role,
            muted_until: row
                .muted_until
                .filter(|until| *until > now_millis())
                .map(from_millis),
            joined_at: from_millis(row.joined_at),
            presence: None,
        }
    }
}

/// "Until lifted": a mute without an end lasts until this (9999-12-31, Unix ms).
pub(crate) const FOREVER_MS: i64 = 253_402_300_799_999;

/// Adds ($1 room, $2 user, $3 role, $4 now) as a member unless already one or banned.
const INSERT_MEMBER: &str = "INSERT INTO memberships (room_id, user_id, role, joined_at)
     SELECT $1, $2, $3, $4
     WHERE NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = $1 AND b.user_id = $2
                       AND (b.banned_until IS NULL OR b.banned_until > $4))
     ON CONFLICT (room_id, user_id) DO NOTHING";

/// Rooms and who belongs to them.
#[derive(Clone)]
pub struct RoomStore {
    db: Db,
}

impl RoomStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database, for the rooms service's other query modules (search, reading).
    pub(super) fn db(&self) -> &Db {
        &self.db
    }

    /// Creates a room with `owner_id` as its first member.
    pub async fn create(
        &self,
        owner_id: UserId,
        name: &str,
        is_private: bool,
        access_code_hash: Option<&str>,
    ) -> Result<RoomView, StoreError> {
        let now = now_millis();
        let mut tx = self.db.begin().await?;
        let room_id =
            insert_room(&mut tx, owner_id, name, is_private, access_code_hash, now).await?;
        tx.commit().await?;
        Ok(RoomView {
            room: Room {
                id: room_id,
                name: name.to_owned(),
                topic: None,
                is_private,
                is_direct: false,
                has_access_code: access_code_hash.is_some(),
                owner_id,
                last_seq: 0,
                member_count: 1,
                is_member: true,
                created_at: from_millis(now),
            },
            last_read_seq: 0,
            role: Some(Role::Owner),
            unread: 0,
        })
    }

    /// The room clients mean by `name`: the one a client created by that name (see
    /// [`RoomStore::create_named`]), else the oldest room called so; `None` when there is
    /// none. Direct-message rooms are never found by name. Visibility is the caller's decision.
    pub async fn find_named(&self, name: &str) -> Result<Option<RoomId>, StoreError> {
        let named: Option<RoomId> =
            sqlx::query_scalar("SELECT room_id FROM room_names WHERE name = $1")
                .bind(name)
                .fetch_optional(self.db.reader())
                .await?;
        if named.is_some() {
            return Ok(named);
        }
        let oldest: Option<RoomId> = sqlx::query_scalar(
            "SELECT id FROM rooms WHERE name = $1 AND kind = 'room' ORDER BY id LIMIT 1",
        )
        .bind(name)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(oldest)
    }

    /// Creates the public room `name` with `owner_id` as its first member, unless a
    /// client on any instance just did: then that room. The name's row in `room_names`
    /// is claimed in the same transaction, so concurrent creators end in one room.
    /// Returns the room and whether this call created it.
    pub async fn create_named(
        &self,
        owner_id: UserId,
        name: &str,
    ) -> Result<(RoomId, bool), StoreError> {
        let now = now_millis();
        let mut tx = self.db.begin().await?;
        let room_id = insert_room(&mut tx, owner_id, name, false, None, now).await?;
        let claimed = sqlx::query(
            "INSERT INTO room_names (name, room_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(room_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 1 {
            tx.commit().await?;
            return Ok((room_id, true));
        }
        // Another creator won (its transaction committed before our claim returned).
        tx.rollback().await?;
        let winner = self.find_named(name).await?;
        winner.map(|id| (id, false)).ok_or_else(|| {
            StoreError::Database(format!("room name {name:?} claimed but not found"))
        })
    }

    /// A room as `user_id` would see it (membership flags filled in), whether or not
    /// they may; visibility is the caller's decision.
    pub async fn access(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let sql = format!(
            "SELECT r.id, r.name, r.topic, CASE WHEN r.is_private THEN 1 ELSE 0 END AS is_private,
                    CASE WHEN r.kind = 'dm' THEN 1 ELSE 0 END AS is_direct,
                    r.owner_id, r.last_seq, r.created_at,
                    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
                    CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END AS is_member,
                    COALESCE(m.last_read_seq, 0) AS last_read_seq, m.role, r.access_code_hash,
                    {UNREAD_COLUMN}
             FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $2
             WHERE r.id = $1"
        );
        let row: Option<RoomRow> = sqlx::query_as(&sql)
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.map(RoomAccess::from))
    }

    /// Up to `limit` rooms with ids above `after`, in id order: public rooms and every
    /// room `user_id` belongs to, or (`joined_only`) only the latter.
    pub async fn list(
        &self,
        user_id: UserId,
        joined_only: bool,
        after: RoomId,
        limit: u32,
    ) -> Result<Vec<RoomView>, StoreError> {
        let visible = if joined_only {
            "m.user_id IS NOT NULL"
        } else {
            "(NOT r.is_private OR m.user_id IS NOT NULL)"
        };
        let sql = format!(
            "SELECT r.id, r.name, r.topic, CASE WHEN r.is_private THEN 1 ELSE 0 END AS is_private,
                    CASE WHEN r.kind = 'dm' THEN 1 ELSE 0 END AS is_direct,
                    r.owner_id, r.last_seq, r.created_at,
                    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
                    CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END AS is_member,
                    COALESCE(m.last_read_seq, 0) AS last_read_seq, m.role, r.access_code_hash,
                    {UNREAD_COLUMN}
             FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $1
             WHERE {visible} AND r.kind = 'room' AND r.id > $2
             ORDER BY r.id LIMIT $3"
        );
        let rows: Vec<RoomRow> = sqlx::query_as(&sql)
            .bind(user_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.db.reader())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| RoomAccess::from(row).view)
            .collect())
    }

    /// Adds a member; `false` when already one, or banned (checked in the same
    /// statement, so a ban committed just before cannot be slipped past).
    pub async fn add_member(
        &self,
        room_id: RoomId,
        user_id: UserId,
        role: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let result = sqlx::query(INSERT_MEMBER)
            .bind(room_id)
            .bind(user_id)
            .bind(role)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes a member; `false` when not one.
    pub async fn remove_member(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let result = sqlx::query("DELETE FROM memberships WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Whether `user_id` belongs to `room_id`.
    pub async fn is_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError> {
        const PROBE: &str = "SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2";
        // Every WebSocket join asks: inline where it can.
        let inline = self.db.row_inline(PROBE, (room_id, user_id), |_| Ok(()));
        if let Some(found) = inline {
            return Ok(found?.is_some());
        }
        let found: Option<i64> = sqlx::query_scalar(PROBE)
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(found.is_some())
    }

    /// Up to `limit` members with user ids above `after`, in user-id order.
    pub async fn members(
        &self,
        room_id: RoomId,
        after: UserId,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT u.id AS user_id, u.username, m.role, m.muted_until, m.joined_at
             FROM memberships m
             JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 AND m.user_id > $2
             ORDER BY m.user_id LIMIT $3",
        )
        .bind(room_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(Member::from).collect())
    }

    /// Raises the member's read marker to `seq` (never lowers it, never past the room's
    /// newest message); the new marker when it moved, so only a real move is announced.
    pub async fn mark_read(
        &self,
        room_id: RoomId,
        user_id: UserId,
        seq: Seq,
    ) -> Result<Option<Seq>, StoreError> {
        let mut tx = self.db.begin().await?;
        let moved: Option<Seq> = sqlx::query_scalar(
            "UPDATE memberships
             SET last_read_seq = (SELECT CASE WHEN $3 < r.last_seq THEN $3 ELSE r.last_seq END
                                  FROM rooms r WHERE r.id = $1)
             WHERE room_id = $1 AND user_id = $2 AND last_read_seq < $3
               AND last_read_seq < (SELECT r.last_seq FROM rooms r WHERE r.id = $1)
             RETURNING last_read_seq",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(moved)
    }
}

/// Inserts a room and its owner's membership inside `tx`.
async fn insert_room(
    tx: &mut WriteTx,
    owner_id: UserId,
    name: &str,
    is_private: bool,
    access_code_hash: Option<&str>,
    now: i64,
) -> Result<RoomId, StoreError> {
    let room_id: RoomId = sqlx::query_scalar(
        "INSERT INTO rooms (name, is_private, access_code_hash, owner_id, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(is_private)
    .bind(access_code_hash)
    .bind(owner_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO memberships (room_id, user_id, role, joined_at)
         VALUES ($1, $2, 'owner', $3)",
    )
    .bind(room_id)
    .bind(owner_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(room_id)
}

#[derive(sqlx::FromRow)]
struct BanRow {
    user_id: i64,
    username: String,
    banned_by: i64,
    reason: Option<String>,
    banned_until: Option<i64>,
    created_at: i64,
}

impl From<BanRow> for Ban {
    fn from(row: BanRow) -> Self {
        Ban {
            user: User {
                id: row.user_id,
                username: row.username,
            },
            banned_by: row.banned_by,
            reason: row.reason,
            until: row.banned_until.map(from_millis),
            created_at: from_millis(row.created_at),
        }
    }
}

impl RoomStore {
    /// Whether `user_id` is banned from `room_id` now.
    pub async fn is_banned(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM room_bans WHERE room_id = $1 AND user_id = $2
             AND (banned_until IS NULL OR banned_until > $3)",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(now_millis())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(found.is_some())
    }

    /// The room's active bans, newest first (at most `limit`).
    pub async fn bans(&self, room_id: RoomId, limit: u32) -> Result<Vec<Ban>, StoreError> {
        let rows: Vec<BanRow> = sqlx::query_as(
            "SELECT b.user_id, u.username, b.banned_by, b.reason, b.banned_until, b.created_at
             FROM room_bans b JOIN users u ON u.id = b.user_id
             WHERE b.room_id = $1 AND (b.banned_until IS NULL OR b.banned_until > $2)
             ORDER BY b.created_at DESC, b.user_id LIMIT $3",
        )
        .bind(room_id)
        .bind(now_millis())
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(Ban::from).collect())
    }

    /// `user_id`'s role in `room_id`, `None` when not a member.
    pub async fn role(&self, room_id: RoomId, user_id: UserId) -> Result<Option<Role>, StoreError> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE room_id = $1 AND user_id = $2")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(self.db.reader())
                .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    /// Starts a change to one room: a write transaction holding the room's write lock
    /// (SQLite: the database's; PostgreSQL: the room row's, taken first so it orders
    /// with the message appender's), so the roles read inside it stay true until it
    /// commits, and room events it appends get the next seqs without gaps. `None` when
    /// the room does not exist.
    pub async fn change(&self, room_id: RoomId) -> Result<Option<RoomChange>, StoreError> {
        let mut tx = self.db.begin().await?;
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row: Option<(String, Option<String>, i64, Option<String>)> = sqlx::query_as(&format!(
            "SELECT name, topic, CASE WHEN is_private THEN 1 ELSE 0 END, access_code_hash
             FROM rooms WHERE id = $1{lock}"
        ))
        .bind(room_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name, topic, is_private, access_code_hash)) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        Ok(Some(RoomChange {
            tx: Some(tx),
            room_id,
            settings: RoomSettings {
                name,
                topic,
                is_private: is_private != 0,
                access_code_hash,
            },
        }))
    }
}

/// A room's settings, as changed by `PATCH /rooms/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    pub name: String,
    pub topic: Option<String>,
    pub is_private: bool,
    pub access_code_hash: Option<String>,
}

impl RoomSettings {
    /// The `room_updated` event describing these settings.
    pub fn event(&self) -> RoomEvent {
        RoomEvent::RoomUpdated {
            name: self.name.clone(),
            topic: self.topic.clone(),
            is_private: self.is_private,
            has_access_code: self.access_code_hash.is_some(),
        }
    }
}

/// A member as a moderation action sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: User,
    /// `None` when not a member.
    pub role: Option<Role>,
}

/// One change to a room in progress; see [`RoomStore::change`]. End it with
/// [`commit`](Self::commit) or [`rollback`](Self::rollback); dropping it otherwise
/// discards the connection (see [`WriteTx`]).
pub struct RoomChange {
    tx: Option<WriteTx>,
    room_id: RoomId,
    /// The settings when the change began.
    pub settings: RoomSettings,
}

impl RoomChange {
    /// The room being changed.
    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    pub(super) fn tx(&mut self) -> Result<&mut WriteTx, StoreError> {
        self.tx
            .as_mut()
            .ok_or_else(|| StoreError::Database("room change already finished".into()))
    }

    /// `user_id`'s role, `None` when not a member.
    pub async fn role(&mut self, user_id: UserId) -> Result<Option<Role>, StoreError> {
        let room_id = self.room_id;
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE room_id = $1 AND user_id = $2")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(&mut **self.tx()?)
                .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    /// The user `user_id` with their role here; `None` when there is no such user.
    pub async fn target(&mut self, user_id: UserId) -> Result<Option<Target>, StoreError> {
        let room_id = self.room_id;
        let row: Option<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT u.id, u.username, m.role FROM users u
             LEFT JOIN memberships m ON m.room_id = $1 AND m.user_id = u.id
             WHERE u.id = $2",
        )
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(&mut **self.tx()?)
        .await?;
        Ok(row.map(|(id, username, role)| Target {
            user: User { id, username },
            role: role.as_deref().and_then(Role::parse),
        }))
    }

    /// Sets a member's role (and, for the owner, `rooms.owner_id`).
    pub async fn set_role(&mut self, user_id: UserId, role: Role) -> Result<(), StoreError> {
        let room_id = self.room_id;
        sqlx::query("UPDATE memberships SET role = $3 WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut **self.tx()?)
            .await?;
        if role == Role::Owner {
            sqlx::query("UPDATE rooms SET owner_id = $2 WHERE id = $1")
                .bind(room_id)
                .bind(user_id)
                .execute(&mut **self.tx()?)
                .await?;
        }
        Ok(())
    }

    /// Mutes a member until `until` (Unix ms), or unmutes (`None`).
    pub async fn set_muted(
        &mut self,
        user_id: UserId,
        until: Option<i64>,
    ) -> Result<(), StoreError> {
        let room_id = self.room_id;
        sqlx::query("UPDATE memberships SET muted_until = $3 WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .bind(until)
            .execute(&mut **self.tx()?)
            .await?;
        Ok(())
    }

    /// Removes a member; `false` when not one.
    pub async fn remove_member(&mut self, user_id: UserId) -> Result<bool, StoreError> {
        let room_id = self.room_id;
        let result = sqlx::query("DELETE FROM memberships WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .execute(&mut **self.tx()?)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Bans `user_id` (replacing an earlier ban) until `until` (Unix ms; `None`: for ever).
    pub async fn ban(
        &mut self,
        user_id: UserId,
        by: UserId,
        reason: Option<&str>,
        until: Option<i64>,
    ) -> Result<(), StoreError> {
        let room_id = self.room_id;
        sqlx::query(
            "INSERT INTO room_bans (room_id, user_id, banned_by, reason, banned_until, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (room_id, user_id) DO UPDATE SET banned_by = $3, reason = $4,
                 banned_until = $5, created_at = $6",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(by)
        .bind(reason)
        .bind(until)
        .bind(now_millis())
        .execute(&mut **self.tx()?)
        .await?;
        Ok(())
    }

    /// Lifts `user_id`'s ban; `false` when there was no active one.
    pub async fn unban(&mut self, user_id: UserId) -> Result<bool, StoreError> {
        let room_id = self.room_id;
        let result = sqlx::query(
            "DELETE FROM room_bans WHERE room_id = $1 AND user_id = $2
             AND (banned_until IS NULL OR banned_until > $3)",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(now_millis())
        .execute(&mut **self.tx()?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores new settings (see [`RoomChange::settings`]).
    pub async fn update(&mut self, settings: RoomSettings) -> Result<(), StoreError> {
        let room_id = self.room_id;
        sqlx::query(
            "UPDATE rooms SET name = $2, topic = $3, is_private = $4, access_code_hash = $5
             WHERE id = $1",
        )
        .bind(room_id)
        .bind(settings.name.as_str())
        .bind(settings.topic.as_deref())
        .bind(settings.is_private)
        .bind(settings.access_code_hash.as_deref())
        .execute(&mut **self.tx()?)
        .await?;
        self.settings = settings;
        Ok(())
    }

    /// Every member's id.
    pub async fn member_ids(&mut self) -> Result<Vec<UserId>, StoreError> {
        let room_id = self.room_id;
        let ids = sqlx::query_scalar("SELECT user_id FROM memberships WHERE room_id = $1")
            .bind(room_id)
            .fetch_all(&mut **self.tx()?)
            .await?;
        Ok(ids)
    }

    /// Deletes the room with its history, memberships and bans.
    pub async fn delete(&mut self) -> Result<(), StoreError> {
        let room_id = self.room_id;
        sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(room_id)
            .execute(&mut **self.tx()?)
            .await?;
        Ok(())
    }

    /// Appends a room event to the room's stream with the next seq, in this
    /// transaction: the event commits with the change it describes or not at all.
    pub async fn append_event(
        &mut self,
        actor: &User,
        content: &str,
        event: RoomEvent,
    ) -> Result<Message, StoreError> {
        let room_id = self.room_id;
        let json = serde_json::to_string(&event)
            .map_err(|e| StoreError::Database(format!("event does not encode: {e}")))?;
        let seq: Seq = sqlx::query_scalar(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
        )
        .bind(room_id)
        .fetch_one(&mut **self.tx()?)
        .await?;
        let created_at = now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (room_id, seq, user_id, content, event, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(room_id)
        .bind(seq)
        .bind(actor.id)
        .bind(content)
        .bind(json)
        .bind(created_at)
        .fetch_one(&mut **self.tx()?)
        .await?;
        Ok(Message {
            id,
            room_id,
            seq,
            user: actor.clone(),
            content: content.to_owned(),
            client_msg_id: None,
            event: Some(event),
            created_at: from_millis(created_at),
            ..Message::default()
        })
    }

    /// Makes the change durable.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        match self.tx.take() {
            Some(tx) => tx.commit().await,
            None => Ok(()),
        }
    }

    /// Abandons the change (a refusal).
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        match self.tx.take() {
            Some(tx) => tx.rollback().await,
            None => Ok(()),
        }
    }
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: i64,
    room_id: i64,
    room_name: String,
    user_id: i64,
    username: String,
    by_id: i64,
    by_name: String,
    created_at: i64,
}

impl From<InvitationRow> for Invitation {
    fn from(row: InvitationRow) -> Self {
        Invitation {
            id: row.id,
            room_id: row.room_id,
            room_name: row.room_name,
            user: User {
                id: row.user_id,
                username: row.username,
            },
            invited_by: User {
                id: row.by_id,
                username: row.by_name,
            },
            created_at: from_millis(row.created_at),
        }
    }
}

const INVITATION_COLUMNS: &str = "SELECT i.id, i.room_id, r.name AS room_name, i.user_id,
        u.username, i.invited_by AS by_id, COALESCE(b.username, '') AS by_name, i.created_at
     FROM invitations i JOIN rooms r ON r.id = i.room_id JOIN users u ON u.id = i.user_id
     LEFT JOIN users b ON b.id = i.invited_by";

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: i64,
    room_id: i64,
    created_by: i64,
    max_uses: Option<i64>,
    uses: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

impl LinkRow {
    /// Why the link cannot be used now, if it cannot.
    fn unusable(&self, now: i64) -> Option<Unusable> {
        if self.revoked_at.is_some() {
            Some(Unusable::Revoked)
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Some(Unusable::Expired)
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            Some(Unusable::UsedUp)
        } else {
            None
        }
    }
}

impl From<LinkRow> for InviteLink {
    fn from(row: LinkRow) -> Self {
        InviteLink {
            id: row.id,
            room_id: row.room_id,
            token: None,
            url: None,
            created_by: row.created_by,
            max_uses: row.max_uses.and_then(|m| u32::try_from(m).ok()),
            uses: u32::try_from(row.uses).unwrap_or(u32::MAX),
            expires_at: row.expires_at.map(from_millis),
            revoked: row.revoked_at.is_some(),
            created_at: from_millis(row.created_at),
        }
    }
}

const LINK_COLUMNS: &str =
    "SELECT id, room_id, created_by, max_uses, uses, expires_at, revoked_at, created_at
     FROM invite_links";

/// Why an invite link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Revoked,
    Expired,
    UsedUp,
}

/// What joining by an invitation or link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No such invitation (of this user) or link.
    Unknown,
    /// The link exists but cannot be used.
    Unusable(Unusable),
    /// The user is banned from the room: nothing changed.
    Banned,
    /// A member now (`joined`), or already one (the link's use not counted).
    Member { room_id: RoomId, joined: bool },
}

impl RoomStore {
    /// The members of `room_id` among the users with these (lower-cased) names.
    pub async fn members_named(
        &self,
        room_id: RoomId,
        names: &[String],
    ) -> Result<Vec<UserId>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT u.id FROM users u
             JOIN memberships m ON m.user_id = u.id AND m.room_id = $1
             WHERE u.username_key IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(room_id);
        for name in names {
            query = query.bind(name.as_str());
        }
        Ok(query.fetch_all(self.db.reader()).await?)
    }

    /// Whether account `user_id` exists.
    pub async fn user_exists(&self, user_id: UserId) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(found.is_some())
    }

    /// The account named `username` (any case).
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, username FROM users WHERE username_key = $1 AND deleted_at IS NULL",
        )
        .bind(username.to_lowercase())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.map(|(id, username)| User { id, username }))
    }

    /// Invites `user_id` (again: the invitation is renewed) and returns the invitation.
    pub async fn invite(
        &self,
        room_id: RoomId,
        user_id: UserId,
        by: UserId,
    ) -> Result<Invitation, StoreError> {
        let mut tx = self.db.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO invitations (room_id, user_id, invited_by, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (room_id, user_id) DO UPDATE SET invited_by = $3, created_at = $4
             RETURNING id",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(by)
        .bind(now_millis())
        .fetch_one(&mut *tx)
        .await?;
        let row: InvitationRow = sqlx::query_as(&format!("{INVITATION_COLUMNS} WHERE i.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// `user_id`'s pending invitations, newest first (at most `limit`).
    pub async fn invitations(
        &self,
        user_id: UserId,
        limit: u32,
    ) -> Result<Vec<Invitation>, StoreError> {
        let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
            "{INVITATION_COLUMNS} WHERE i.user_id = $1 ORDER BY i.created_at DESC, i.id DESC
             LIMIT $2"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(Invitation::from).collect())
    }

    /// Deletes `user_id`'s invitation `id`; `false` when there is none.
    pub async fn decline(&self, id: i64, user_id: UserId) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let result = sqlx::query("DELETE FROM invitations WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Accepts `user_id`'s invitation `id`: a member now (no access code), the invitation
    /// gone; a banned user stays out and keeps the invitation.
    pub async fn accept(&self, id: i64, user_id: UserId) -> Result<Admission, StoreError> {
        let mut tx = self.db.begin().await?;
        let room: Option<i64> = sqlx::query_scalar(
            "DELETE FROM invitations WHERE id = $1 AND user_id = $2 RETURNING room_id",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(room_id) = room else {
            tx.rollback().await?;
            return Ok(Admission::Unknown);
        };
        let admission = admit(&mut tx, room_id, user_id).await?;
        if admission == Admission::Banned {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(admission)
    }

    /// Stores a new invite link (the token's hash only).
    pub async fn create_link(
        &self,
        room_id: RoomId,
        by: UserId,
        token_hash: &str,
        max_uses: Option<u32>,
        expires_at: Option<i64>,
    ) -> Result<InviteLink, StoreError> {
        let mut tx = self.db.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO invite_links (room_id, token_hash, created_by, max_uses, expires_at,
                                       created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(room_id)
        .bind(token_hash)
        .bind(by)
        .bind(max_uses.map(i64::from))
        .bind(expires_at)
        .bind(now_millis())
        .fetch_one(&mut *tx)
        .await?;
        let row: LinkRow = sqlx::query_as(&format!("{LINK_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// The room's links, newest first (at most `limit`).
    pub async fn links(&self, room_id: RoomId, limit: u32) -> Result<Vec<InviteLink>, StoreError> {
        let rows: Vec<LinkRow> = sqlx::query_as(&format!(
            "{LINK_COLUMNS} WHERE room_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(room_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(InviteLink::from).collect())
    }

    /// Revokes link `id` of the room; `false` when there is no such link.
    pub async fn revoke_link(&self, room_id: RoomId, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let result = sqlx::query(
            "UPDATE invite_links SET revoked_at = COALESCE(revoked_at, $3)
             WHERE id = $1 AND room_id = $2",
        )
        .bind(id)
        .bind(room_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Where a link leads, or why it cannot be used.
    pub async fn preview_link(
        &self,
        token_hash: &str,
    ) -> Result<Result<InvitePreview, Admission>, StoreError> {
        let link: Option<LinkRow> =
            sqlx::query_as(&format!("{LINK_COLUMNS} WHERE token_hash = $1"))
                .bind(token_hash)
                .fetch_optional(self.db.reader())
                .await?;
        let Some(link) = link else {
            return Ok(Err(Admission::Unknown));
        };
        if let Some(why) = link.unusable(now_millis()) {
            return Ok(Err(Admission::Unusable(why)));
        }
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT r.name, CASE WHEN r.is_private THEN 1 ELSE 0 END,
                    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id)
             FROM rooms r WHERE r.id = $1",
        )
        .bind(link.room_id)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(match row {
            Some((room_name, is_private, member_count)) => Ok(InvitePreview {
                room_id: link.room_id,
                room_name,
                is_private: is_private != 0,
                member_count,
            }),
            None => Err(Admission::Unknown),
        })
    }

    /// Joins `user_id` by the link: checked and counted in one transaction, so a link
    /// with `max_uses` admits exactly that many, also when used at once from several
    /// instances. A member already (let through even by a spent link), or a banned user,
    /// uses nothing.
    pub async fn join_by_link(
        &self,
        token_hash: &str,
        user_id: UserId,
    ) -> Result<Admission, StoreError> {
        let mut tx = self.db.begin().await?;
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let link: Option<LinkRow> =
            sqlx::query_as(&format!("{LINK_COLUMNS} WHERE token_hash = $1{lock}"))
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
        let member = match &link {
            Some(link) => sqlx::query_scalar::<_, i64>(
                "SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2",
            )
            .bind(link.room_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some(),
            None => false,
        };
        let admission = match link {
            None => Admission::Unknown,
            // A member already is let through whatever the link's state.
            Some(link) if member => Admission::Member {
                room_id: link.room_id,
                joined: false,
            },
            Some(link) => match link.unusable(now_millis()) {
                Some(why) => Admission::Unusable(why),
                None => {
                    let admission = admit(&mut tx, link.room_id, user_id).await?;
                    if let Admission::Member { joined: true, .. } = admission {
                        sqlx::query("UPDATE invite_links SET uses = uses + 1 WHERE id = $1")
                            .bind(link.id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    admission
                }
            },
        };
        tx.commit().await?;
        Ok(admission)
    }
}

/// Makes `user_id` a member of `room_id` inside `tx`, unless banned.
async fn admit(
    tx: &mut WriteTx,
    room_id: RoomId,
    user_id: UserId,
) -> Result<Admission, StoreError> {
    let now = now_millis();
    let inserted = sqlx::query(INSERT_MEMBER)
        .bind(room_id)
        .bind(user_id)
        .bind(Role::Member.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok(Admission::Member {
            room_id,
            joined: true,
        });
    }
    let member: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(match member {
        Some(_) => Admission::Member {
            room_id,
            joined: false,
        },
        None => Admission::Banned,
    })
}

/// A DM's room row with the other person.
#[derive(sqlx::FromRow)]
struct DirectRow {
    #[sqlx(flatten)]
    room: RoomRow,
    peer_id: i64,
    peer_name: String,
}

/// What opening a DM did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectOpened {
    /// One of the two blocked the other.
    Blocked,
    /// The pair's conversation (`created` now or found), both of them members.
    Room { room_id: RoomId, created: bool },
}

impl RoomStore {
    /// Opens the one conversation of `me` and `peer`, or finds it (making both members
    /// again if one had left). Refused while either blocks the other.
    pub async fn open_direct(&self, me: &User, peer: &User) -> Result<DirectOpened, StoreError> {
        let (low, high) = (me.id.min(peer.id), me.id.max(peer.id));
        let mut tx = self.db.begin().await?;
        if blocked_between(&mut tx, low, high).await? {
            tx.rollback().await?;
            return Ok(DirectOpened::Blocked);
        }
        let now = now_millis();
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT room_id FROM direct_rooms WHERE user_low = $1 AND user_high = $2",
        )
        .bind(low)
        .bind(high)
        .fetch_optional(&mut *tx)
        .await?;
        let (room_id, created) = match existing {
            Some(room_id) => (room_id, false),
            None => {
                let name = format!("{} & {}", me.username, peer.username);
                let room_id: i64 = sqlx::query_scalar(
                    "INSERT INTO rooms (name, is_private, owner_id, created_at, kind)
                     VALUES ($1, $2, $3, $4, 'dm') RETURNING id",
                )
                .bind(name)
                .bind(true)
                .bind(me.id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let inserted = sqlx::query(
                    "INSERT INTO direct_rooms (user_low, user_high, room_id, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_low, user_high) DO NOTHING",
                )
                .bind(low)
                .bind(high)
                .bind(room_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    // Opened at the same moment by the other side: use theirs.
                    tx.rollback().await?;
                    return Box::pin(self.open_direct(me, peer)).await;
                }
                (room_id, true)
            }
        };
        for user_id in [low, high] {
            sqlx::query(INSERT_MEMBER)
                .bind(room_id)
                .bind(user_id)
                .bind(Role::Member.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(DirectOpened::Room { room_id, created })
    }

    /// `user_id`'s conversations, newest first (at most `limit`).
    pub async fn directs(
        &self,
        user_id: UserId,
        limit: u32,
    ) -> Result<Vec<DirectView>, StoreError> {
        let sql = format!(
            "SELECT r.id, r.name, r.topic, CASE WHEN r.is_private THEN 1 ELSE 0 END AS is_private,
                    1 AS is_direct, r.owner_id, r.last_seq, r.created_at,
                    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
                    1 AS is_member, m.last_read_seq, m.role, r.access_code_hash, {UNREAD_COLUMN},
                    u.id AS peer_id, u.username AS peer_name
             FROM direct_rooms d
             JOIN rooms r ON r.id = d.room_id
             JOIN memberships m ON m.room_id = d.room_id AND m.user_id = $1
             JOIN users u ON u.id = CASE WHEN d.user_low = $1 THEN d.user_high ELSE d.user_low END
             WHERE d.user_low = $1 OR d.user_high = $1
             ORDER BY r.id DESC LIMIT $2"
        );
        let rows: Vec<DirectRow> = sqlx::query_as(&sql)
            .bind(user_id)
            .bind(i64::from(limit))
            .fetch_all(self.db.reader())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| DirectView {
                room: RoomAccess::from(row.room).view,
                peer: User {
                    id: row.peer_id,
                    username: row.peer_name,
                },
            })
            .collect())
    }

    /// `user_id` blocks `blocked_id`: their conversation (if any) turns read-only.
    pub async fn block(&self, user_id: UserId, blocked_id: UserId) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, blocked_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(blocked_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        mute_direct(&mut tx, user_id, blocked_id, Some(FOREVER_MS)).await?;
        tx.commit().await
    }

    /// Lifts `user_id`'s block of `blocked_id`; their conversation can be written to
    /// again unless the other blocks too. `false` when there was no block.
    pub async fn unblock(&self, user_id: UserId, blocked_id: UserId) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let removed = sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2")
            .bind(user_id)
            .bind(blocked_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let (low, high) = (user_id.min(blocked_id), user_id.max(blocked_id));
        if removed && !blocked_between(&mut tx, low, high).await? {
            mute_direct(&mut tx, user_id, blocked_id, None).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}

/// Whether either of the two blocks the other.
async fn blocked_between(tx: &mut WriteTx, a: UserId, b: UserId) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM blocks WHERE (user_id = $1 AND blocked_id = $2)
                                 OR (user_id = $2 AND blocked_id = $1)",
    )
    .bind(a)
    .bind(b)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Mutes (or unmutes) both members of the conversation of `a` and `b`, if they have one.
async fn mute_direct(
    tx: &mut WriteTx,
    a: UserId,
    b: UserId,
    until: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE memberships SET muted_until = $3
         WHERE room_id = (SELECT room_id FROM direct_rooms WHERE user_low = $1 AND user_high = $2)",
    )
    .bind(a.min(b))
    .bind(a.max(b))
    .bind(until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
