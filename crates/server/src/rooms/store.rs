//! Queries on `rooms` and `memberships`, one text for both backends.

use socket_hub_protocol::rest::RoomView;
use socket_hub_protocol::{Member, Room, RoomId, Seq, User, UserId};

use crate::store::{Db, StoreError, WriteTx, from_millis, now_millis};

/// A room as seen by one user, plus the hash needed to check its access code.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    pub view: RoomView,
    pub access_code_hash: Option<String>,
}

/// A room joined with the membership of the user bound as the query's user.
#[derive(sqlx::FromRow)]
struct RoomRow {
    id: i64,
    name: String,
    is_private: i64,
    owner_id: i64,
    last_seq: i64,
    created_at: i64,
    member_count: i64,
    is_member: i64,
    last_read_seq: i64,
    access_code_hash: Option<String>,
}

impl From<RoomRow> for RoomAccess {
    fn from(row: RoomRow) -> Self {
        RoomAccess {
            view: RoomView {
                room: Room {
                    id: row.id,
                    name: row.name,
                    is_private: row.is_private != 0,
                    owner_id: row.owner_id,
                    last_seq: row.last_seq,
                    created_at: from_millis(row.created_at),
                    member_count: row.member_count,
                    is_member: row.is_member != 0,
                },
                last_read_seq: row.last_read_seq,
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
            joined_at: from_millis(row.joined_at),
        }
    }
}

/// Rooms and who belongs to them.
#[derive(Clone)]
pub struct RoomStore {
    db: Db,
}

impl RoomStore {
    pub fn new(db: Db) -> Self {
        Self { db }
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
                is_private,
                owner_id,
                last_seq: 0,
                member_count: 1,
                is_member: true,
                created_at: from_millis(now),
            },
            last_read_seq: 0,
        })
    }

    /// The room clients mean by `name`: the one a client created by that name (see
    /// [`RoomStore::create_named`]), else the oldest room called so; `None` when there is
    /// none. Visibility is the caller's decision.
    pub async fn find_named(&self, name: &str) -> Result<Option<RoomId>, StoreError> {
        let named: Option<RoomId> =
            sqlx::query_scalar("SELECT room_id FROM room_names WHERE name = $1")
                .bind(name)
                .fetch_optional(self.db.reader())
                .await?;
        if named.is_some() {
            return Ok(named);
        }
        let oldest: Option<RoomId> =
            sqlx::query_scalar("SELECT id FROM rooms WHERE name = $1 ORDER BY id LIMIT 1")
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
        let row: Option<RoomRow> = sqlx::query_as(
            "SELECT r.id, r.name, CASE WHEN r.is_private THEN 1 ELSE 0 END AS is_private,
                    r.owner_id, r.last_seq, r.created_at,
                    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
                    CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END AS is_member,
                    COALESCE(m.last_read_seq, 0) AS last_read_seq, r.access_code_hash
             FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $2
             WHERE r.id = $1",
        )
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
            "SELECT r.id, r.name, CASE WHEN r.is_private THEN 1 ELSE 0 END AS is_private,
                    r.owner_id, r.last_seq, r.created_at,
                    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
                    CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END AS is_member,
                    COALESCE(m.last_read_seq, 0) AS last_read_seq, r.access_code_hash
             FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $1
             WHERE {visible} AND r.id > $2
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

    /// Adds a member; `false` when already one.
    pub async fn add_member(
        &self,
        room_id: RoomId,
        user_id: UserId,
        role: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let result = sqlx::query(
            "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
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
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2")
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
            "SELECT u.id AS user_id, u.username, m.role, m.joined_at FROM memberships m
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
    /// newest message).
    pub async fn mark_read(
        &self,
        room_id: RoomId,
        user_id: UserId,
        seq: Seq,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE memberships
             SET last_read_seq = (SELECT CASE WHEN $3 < r.last_seq THEN $3 ELSE r.last_seq END
                                  FROM rooms r WHERE r.id = $1)
             WHERE room_id = $1 AND user_id = $2 AND last_read_seq < $3",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
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
