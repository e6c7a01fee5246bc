//! Issue 9 item 3: the real binary refuses to start with a JWT secret that anyone could
//! know (the placeholders shipped in examples) or guess (too little entropy), and says
//! which flag to fix and how to generate a good one.

use std::time::Duration;

use crate::support::server_command;

/// Starts the binary with `secret` given as `how` (a flag or the environment) and
/// returns its exit status and stderr; it must exit on its own, before serving.
async fn refused(secret: &str, as_env: bool) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = server_command();
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .kill_on_drop(true);
    if as_env {
        command.env("SOCKET_HUB_JWT_SECRET", secret);
    } else {
        command.args(["--jwt-secret", secret]);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the server exits instead of serving")
        .expect("the binary runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn binary_refuses_placeholder_and_weak_jwt_secrets() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docker-compose.yml"
    ))
    .expect("docker-compose.yml");
    // Whatever the example used to ship must stay refused.
    let cases = [
        (
            "change-me-to-a-long-random-secret-of-32-bytes-or-more",
            false,
        ),
        (
            "change-me-to-a-long-random-secret-of-32-bytes-or-more",
            true,
        ),
        ("short", false),
        ("secret", true),
        // 32 characters but little entropy: a typed sentence, a repeated pattern.
        ("thisismyverysecretjwtkeyforprod1", false),
        ("abcdabcdabcdabcdabcdabcdabcdabcdabcdabcd", true),
        // 20 random bytes as hex: 160 bits.
        ("8f3a9c1d2e4b5f60718293a4b5c6d7e8f9012345", false),
    ];
    for (secret, as_env) in cases {
        let (status, stderr) = refused(secret, as_env).await;
        assert!(!status.success(), "{secret:?} accepted: {stderr}");
        assert!(
            stderr.contains("SOCKET_HUB_JWT_SECRET") && stderr.contains("--jwt-secret"),
            "{secret:?}: message does not name the flag and env: {stderr}"
        );
        assert!(
            stderr.contains("openssl rand -hex 32"),
            "{secret:?}: message does not say how to generate one: {stderr}"
        );
    }
    assert!(
        !shipped.contains("SOCKET_HUB_JWT_SECRET: change-me"),
        "docker-compose.yml ships a literal secret again"
    );
}
