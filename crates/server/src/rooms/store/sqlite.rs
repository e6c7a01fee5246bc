//! `RoomStore` and `MessageStore` on SQLite.

use async_trait::async_trait;
use socket_hub_protocol::rest::RoomView;
use socket_hub_protocol::{Member, Message, Room, RoomId, Seq, UserId};
use sqlx::Row;

use super::{
    Appended, MESSAGE_COLUMNS, MessageStore, NewMessage, ROOM_COLUMNS, RoomAccess, RoomStore,
    member, message, room_access,
};
use crate::store::sqlite::SqliteStore;
use crate::store::{StoreError, from_millis, now_millis};

#[async_trait]
impl RoomStore for SqliteStore {
    async fn create_room(
        &self,
        owner_id: UserId,
        name: &str,
        is_private: bool,
        access_code_hash: Option<&str>,
    ) -> Result<RoomView, StoreError> {
        let now = now_millis();
        let mut tx = self.writer.begin().await?;
        let room_id: RoomId = sqlx::query(
            "INSERT INTO rooms (name, is_private, access_code_hash, owner_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )
        .bind(name)
        .bind(is_private)
        .bind(access_code_hash)
        .bind(owner_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        sqlx::query(
            "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES (?1, ?2, 'owner', ?3)",
        )
        .bind(room_id)
        .bind(owner_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
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

    async fn room_access(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?2
             WHERE r.id = ?1"
        );
        let row = sqlx::query(&sql)
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(room_access))
    }

    async fn list_rooms(&self, user_id: UserId) -> Result<Vec<RoomView>, StoreError> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?1
             WHERE r.is_private = 0 OR m.user_id IS NOT NULL
             ORDER BY r.id LIMIT 1000"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(|row| room_access(row).view).collect())
    }

    async fn add_member(
        &self,
        room_id: RoomId,
        user_id: UserId,
        role: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(role)
        .bind(now_millis())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn remove_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2")
            .bind(room_id)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn is_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM memberships WHERE room_id = ?1 AND user_id = ?2")
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    async fn members(&self, room_id: RoomId) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, m.role, m.joined_at FROM memberships m
             JOIN users u ON u.id = m.user_id WHERE m.room_id = ?1
             ORDER BY m.joined_at, u.id LIMIT 10000",
        )
        .bind(room_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(member).collect())
    }

    async fn mark_read(
        &self,
        room_id: RoomId,
        user_id: UserId,
        seq: Seq,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE memberships
             SET last_read_seq = MAX(last_read_seq, MIN(?3, (SELECT last_seq FROM rooms WHERE id = ?1)))
             WHERE room_id = ?1 AND user_id = ?2",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(seq)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append(&self, new: NewMessage<'_>) -> Result<Appended, StoreError> {
        let mut tx = self.writer.begin().await?;
        // Taking the seq first makes this a write transaction from its first statement,
        // so it never has to upgrade a read lock.
        let seq: Option<Seq> = sqlx::query(
            "UPDATE rooms SET last_seq = last_seq + 1
             WHERE id = ?1 AND EXISTS (SELECT 1 FROM memberships WHERE room_id = ?1 AND user_id = ?2)
             RETURNING last_seq",
        )
        .bind(new.room_id)
        .bind(new.user.id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.get(0));
        let Some(seq) = seq else {
            return Ok(Appended::NotMember);
        };
        if let Some(client_msg_id) = new.client_msg_id {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id
                 WHERE m.room_id = ?1 AND m.user_id = ?2 AND m.client_msg_id = ?3"
            );
            let existing = sqlx::query(&sql)
                .bind(new.room_id)
                .bind(new.user.id)
                .bind(client_msg_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                // Dropping the transaction rolls the seq increment back.
                return Ok(Appended::Duplicate(message(&row)));
            }
        }
        let now = now_millis();
        let id: i64 = sqlx::query(
            "INSERT INTO messages (room_id, seq, user_id, client_msg_id, content, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .bind(new.room_id)
        .bind(seq)
        .bind(new.user.id)
        .bind(new.client_msg_id)
        .bind(new.content)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        tx.commit().await?;
        Ok(Appended::Stored(Message {
            id,
            room_id: new.room_id,
            seq,
            user: new.user.clone(),
            content: new.content.to_owned(),
            client_msg_id: new.client_msg_id.map(str::to_owned),
            created_at: from_millis(now),
        }))
    }

    async fn history(
        &self,
        room_id: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(room_id)
            .bind(before.unwrap_or(Seq::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(message).collect())
    }

    async fn messages_after(
        &self,
        room_id: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = ?1 AND m.seq > ?2 ORDER BY m.seq ASC LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(room_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(message).collect())
    }

    async fn last_seq(&self, room_id: RoomId) -> Result<Seq, StoreError> {
        let row = sqlx::query("SELECT last_seq FROM rooms WHERE id = ?1")
            .bind(room_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map_or(0, |row| row.get(0)))
    }
}
