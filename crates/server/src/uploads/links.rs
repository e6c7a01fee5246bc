//! Signed download links: what lets a browser's `<img src>` (which cannot send an
//! `Authorization` header) fetch an attachment.
//!
//! `GET /uploads/{id}/link` (with the bearer token) answers
//! `/api/v1/uploads/{id}?user=U&expires=E&sig=S` where `S` is an HMAC-SHA256, under a key
//! derived from the JWT secret, of the upload id, the user and the expiry (Unix
//! seconds). The link is good for that one upload (and its thumbnail), for that user,
//! until `E` (`--upload-link-ttl-secs`, 10 minutes by default); the download still
//! checks that the user may read the upload *now*, so leaving the room ends access
//! even through a fresh link. No cookie is involved, so there is nothing for another
//! site to ride on (CSRF), and the page's `Referrer-Policy: no-referrer` keeps links out
//! of `Referer` headers. See docs/security.md.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use socket_hub_protocol::UserId;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks download links; shared by every instance holding the same secret.
#[derive(Clone)]
pub struct LinkSigner {
    key: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LinkSigner {
    /// A signer whose key is derived from `secret` (the JWT secret), so a link cannot be
    /// confused with a token and no new secret needs sharing between instances.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"socket-hub upload links v1");
        Self {
            key: mac.finalize().into_bytes().into(),
            ttl,
        }
    }

    /// How long a link lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, upload: &str, user: UserId, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{upload}\n{user}\n{expires}").as_bytes());
        mac
    }

    /// The signature of a link to `upload` for `user` until `expires` (Unix seconds).
    pub fn sign(&self, upload: &str, user: UserId, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(upload, user, expires).finalize().into_bytes())
    }

    /// Whether `sig` signs (`upload`, `user`, `expires`) and `expires` is still ahead of
    /// `now` (Unix seconds). Constant-time.
    pub fn verify(&self, upload: &str, user: UserId, expires: i64, sig: &str, now: i64) -> bool {
        if expires < now {
            return false;
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        self.mac(upload, user, expires).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_bound_to_upload_user_and_time() {
        let signer = LinkSigner::new(b"a secret of some length", Duration::from_secs(60));
        let sig = signer.sign("abc", 7, 1_000);
        assert!(signer.verify("abc", 7, 1_000, &sig, 999));
        assert!(signer.verify("abc", 7, 1_000, &sig, 1_000));
        assert!(!signer.verify("abc", 7, 1_000, &sig, 1_001), "expired");
        assert!(!signer.verify("abd", 7, 1_000, &sig, 0), "another upload");
        assert!(!signer.verify("abc", 8, 1_000, &sig, 0), "another user");
        assert!(!signer.verify("abc", 7, 2_000, &sig, 0), "a later expiry");
        assert!(!signer.verify("abc", 7, 1_000, "not-base64!", 0));
        let other = LinkSigner::new(b"another secret", Duration::from_secs(60));
        assert!(!other.verify("abc", 7, 1_000, &sig, 0), "another key");
    }
}
