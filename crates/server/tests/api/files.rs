//! Owner-only files after a real start (issue 9 item 10): the data directory is 0700,
//! the SQLite database with its WAL and shared-memory files and the generated JWT secret
//! are 0600, and files an older version left readable by others are tightened.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::helpers::{TestApp, send, spawn_with};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Writes a message through the app, so the WAL and its shared memory exist.
async fn write_something(app: &TestApp) {
    let (alice, session) = app.user("filemode").await;
    let room = alice
        .create_room("modes", false, None)
        .await
        .expect("room")
        .room;
    let mut ws = app.connect(&session).await;
    crate::helpers::join(&mut ws, room.id, None).await;
    send(&mut ws, room.id, "m1", "hello").await;
}

#[tokio::test]
async fn the_data_dir_database_wal_shm_and_secret_are_owner_only() {
    let app = spawn_with(|c| c.data_dir = c.data_dir.join("fresh/data")).await;
    write_something(&app).await;
    let data = app.dir.path().join("fresh/data");
    assert_eq!(mode(&data), 0o700, "data dir");
    for file in [
        "socket-hub.db",
        "socket-hub.db-wal",
        "socket-hub.db-shm",
        "jwt-secret",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

#[tokio::test]
async fn files_left_readable_by_an_older_version_are_tightened_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("old");
    std::fs::create_dir(&data).expect("data dir");
    let secret = data.join("jwt-secret");
    std::fs::write(&secret, "s".repeat(64)).expect("secret");
    std::fs::write(data.join("socket-hub.db"), b"").expect("empty database");
    for file in ["jwt-secret", "socket-hub.db"] {
        std::fs::set_permissions(data.join(file), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let app = spawn_with(|c| c.data_dir = data.clone()).await;
    write_something(&app).await;
    for file in [
        "jwt-secret",
        "socket-hub.db",
        "socket-hub.db-wal",
        "socket-hub.db-shm",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(
        std::fs::read_to_string(&secret).expect("secret"),
        "s".repeat(64),
        "the secret itself is kept"
    );
}
