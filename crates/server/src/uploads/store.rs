//! Queries on `uploads`, one text for both backends. Rooms use [`UploadStore::claim`]
//! when a message attaches uploads; the uploads routes use the rest.

use socket_hub_protocol::{Attachment, RoomId, UserId};

use crate::store::{Backend, Db, StoreError};

/// One stored upload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub owner_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub blob_key: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumbnail_key: Option<String>,
    pub room_id: Option<i64>,
    pub created_at: i64,
}

impl UploadRow {
    /// What a message carries about this upload.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            id: self.id.clone(),
            filename: self.filename.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            width: self.width,
            height: self.height,
            url: file_path(&self.id),
            thumbnail_url: self
                .thumbnail_key
                .as_ref()
                .map(|_| thumbnail_path(&self.id)),
        }
    }
}

/// The download path of upload `id`.
pub fn file_path(id: &str) -> String {
    format!("/api/v1/uploads/{id}")
}

/// The thumbnail path of upload `id`.
pub fn thumbnail_path(id: &str) -> String {
    format!("/api/v1/uploads/{id}/thumbnail")
}

const COLUMNS: &str = "id, owner_id, filename, content_type, size, sha256, blob_key, width, \
                       height, thumbnail_key, room_id, created_at";

/// Why uploads could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// No such upload, or not the sender's: the same answer, so ids do not leak.
    #[error("upload {0} not found")]
    NotFound(String),
    /// Already attached to another room.
    #[error("upload {0} is attached to another room")]
    OtherRoom(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The uploads table.
#[derive(Clone)]
pub struct UploadStore {
    db: Db,
}

impl UploadStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Bytes `owner` has stored.
    pub async fn used_bytes(&self, owner: UserId) -> Result<i64, StoreError> {
        let used: Option<i64> =
            sqlx::query_scalar("SELECT CAST(SUM(size) AS BIGINT) FROM uploads WHERE owner_id = $1")
                .bind(owner)
                .fetch_one(self.db.reader())
                .await?;
        Ok(used.unwrap_or(0))
    }

    /// Stores `row` unless its owner's uploads would then take more than `quota` bytes;
    /// returns whether it was stored. The owner's row is locked (PostgreSQL) or the
    /// write lock held (SQLite) meanwhile, so concurrent uploads cannot both slip in.
    pub async fn insert(&self, row: &UploadRow, quota: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(row.owner_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let used: Option<i64> =
            sqlx::query_scalar("SELECT CAST(SUM(size) AS BIGINT) FROM uploads WHERE owner_id = $1")
                .bind(row.owner_id)
                .fetch_one(&mut *tx)
                .await?;
        if used.unwrap_or(0) + row.size > quota {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(&format!(
            "INSERT INTO uploads ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&row.id)
        .bind(row.owner_id)
        .bind(&row.filename)
        .bind(&row.content_type)
        .bind(row.size)
        .bind(&row.sha256)
        .bind(&row.blob_key)
        .bind(row.width)
        .bind(row.height)
        .bind(row.thumbnail_key.as_deref())
        .bind(row.room_id)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Upload `id` if `user` may read it: its uploader, or a member of the room it is
    /// attached to. `None` otherwise, exactly as for an upload that does not exist.
    pub async fn readable(&self, id: &str, user: UserId) -> Result<Option<UploadRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM uploads u
             WHERE u.id = $1
               AND (u.owner_id = $2
                    OR EXISTS (SELECT 1 FROM memberships m
                               WHERE m.room_id = u.room_id AND m.user_id = $2))"
        ))
        .bind(id)
        .bind(user)
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Attaches `owner`'s uploads `ids` to `room` (an upload stays in the first room it
    /// was attached to; attaching it there again is fine) and returns what the message
    /// carries, in `ids` order. All or nothing.
    pub async fn claim(
        &self,
        ids: &[String],
        owner: UserId,
        room: RoomId,
    ) -> Result<Vec<Attachment>, ClaimError> {
        let mut tx = self.db.begin().await?;
        let mut attachments = Vec::with_capacity(ids.len());
        for id in ids {
            let claimed: Option<UploadRow> = sqlx::query_as(&format!(
                "UPDATE uploads SET room_id = $1
                 WHERE id = $2 AND owner_id = $3 AND (room_id IS NULL OR room_id = $1)
                 RETURNING {COLUMNS}"
            ))
            .bind(room)
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            match claimed {
                Some(row) => attachments.push(row.attachment()),
                None => {
                    let theirs: Option<i64> =
                        sqlx::query_scalar("SELECT 1 FROM uploads WHERE id = $1 AND owner_id = $2")
                            .bind(id)
                            .bind(owner)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(StoreError::from)?;
                    tx.rollback().await?;
                    return Err(match theirs {
                        Some(_) => ClaimError::OtherRoom(id.clone()),
                        None => ClaimError::NotFound(id.clone()),
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(attachments)
    }

    /// Deletes `owner`'s upload `id` if no message carries it; returns the row deleted
    /// (the caller tells "attached" from "not found" with [`Self::owned`]).
    pub async fn delete_unattached(
        &self,
        id: &str,
        owner: UserId,
    ) -> Result<Option<UploadRow>, StoreError> {
        let mut tx = self.db.begin().await?;
        let row: Option<UploadRow> = sqlx::query_as(&format!(
            "DELETE FROM uploads WHERE id = $1 AND owner_id = $2 AND room_id IS NULL
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// `owner`'s upload `id`, attached or not.
    pub async fn owned(&self, id: &str, owner: UserId) -> Result<Option<UploadRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM uploads WHERE id = $1 AND owner_id = $2"
        ))
        .bind(id)
        .bind(owner)
        .fetch_optional(self.db.reader())
        .await?)
    }
}
