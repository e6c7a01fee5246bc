//! Queries on the profile columns of `users`, one text for both backends.

use socket_hub_protocol::UserId;
use socket_hub_protocol::rest::Profile;

use crate::store::{Db, StoreError, from_millis};

/// Avatar backgrounds, picked by user id: stable, and readable with white initials.
const AVATAR_COLORS: [&str; 12] = [
    "#e4572e", "#17bebb", "#76b041", "#ffa400", "#6a4c93", "#1982c4", "#8ac926", "#ff595e",
    "#c05299", "#3a86ff", "#fb5607", "#2a9d8f",
];

#[derive(sqlx::FromRow)]
struct ProfileRow {
    id: i64,
    username: String,
    display_name: Option<String>,
    status_text: Option<String>,
    last_seen_at: Option<i64>,
}

impl From<ProfileRow> for Profile {
    fn from(row: ProfileRow) -> Self {
        let initials = initials(row.display_name.as_deref().unwrap_or(&row.username));
        let color = usize::try_from(row.id.rem_euclid(AVATAR_COLORS.len() as i64)).unwrap_or(0);
        Profile {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            status: row.status_text,
            initials,
            avatar_color: AVATAR_COLORS[color].to_owned(),
            last_seen_at: row.last_seen_at.map(from_millis),
            presence: None,
        }
    }
}

/// The first letters of the first two words, upper-cased (`"ada lovelace"` → `"AL"`).
pub(crate) fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

const COLUMNS: &str = "SELECT id, username, display_name, status_text, last_seen_at FROM users";

/// Profiles.
#[derive(Clone)]
pub struct ProfileStore {
    db: Db,
}

impl ProfileStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// One user's profile.
    pub async fn profile(&self, user_id: UserId) -> Result<Option<Profile>, StoreError> {
        let row: Option<ProfileRow> = sqlx::query_as(&format!("{COLUMNS} WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.map(Profile::from))
    }

    /// Sets the fields given (`Some(None)` clears one).
    pub async fn update(
        &self,
        user_id: UserId,
        display_name: Option<Option<&str>>,
        status: Option<Option<&str>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        if let Some(display_name) = display_name {
            sqlx::query("UPDATE users SET display_name = $2 WHERE id = $1")
                .bind(user_id)
                .bind(display_name)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(status) = status {
            sqlx::query("UPDATE users SET status_text = $2 WHERE id = $1")
                .bind(user_id)
                .bind(status)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Up to `limit` users whose (lower-cased) name starts with `prefix`, ids above
    /// `after`, in id order.
    pub async fn search(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
    ) -> Result<Vec<Profile>, StoreError> {
        // LIKE with the prefix's own wildcards escaped: one text for both backends.
        let mut pattern = String::with_capacity(prefix.len() + 8);
        for c in prefix.chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let rows: Vec<ProfileRow> = sqlx::query_as(&format!(
            "{COLUMNS} WHERE username_key LIKE $1 ESCAPE '\\' AND deleted_at IS NULL AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(pattern)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(Profile::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::initials;

    #[test]
    fn initials_take_the_first_letters_of_two_words() {
        assert_eq!(initials("ada lovelace byron"), "AL");
        assert_eq!(initials("bob"), "B");
        assert_eq!(initials("  élodie  "), "É");
        assert_eq!(initials("--- x"), "X");
    }
}
