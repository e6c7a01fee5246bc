//! What an upload is, decided by the server: its content type from its first bytes
//! (the client's claim is never trusted), a file name safe to show and to send back
//! in `Content-Disposition`, and whether a browser may show it inline.

/// Bytes of the start of a file kept for sniffing.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Image types the server decodes, thumbnails and lets browsers show inline. Anything
/// else (SVG, which can carry script, included) is only ever downloaded.
pub const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The content type of a file starting with `head`: the type its magic bytes show,
/// else UTF-8 text as `text/plain`, else `application/octet-stream`.
pub fn content_type(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut in the middle of a character by the sniff window: still text.
        Err(err) => err.error_len().is_none() && head.len() >= SNIFF_BYTES,
    };
    let printable = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c));
    if text && printable {
        "text/plain; charset=utf-8".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

/// Whether `content_type` is one of [`INLINE_IMAGES`].
pub fn is_inline_image(content_type: &str) -> bool {
    INLINE_IMAGES.contains(&content_type)
}

/// Longest file name kept, in characters.
const MAX_FILENAME_CHARS: usize = 200;

/// The name to keep for an uploaded file: its last path segment (either separator),
/// without control or invisible characters (which could disguise `evil.exe` as
/// `exe.txt`), leading dots or surrounding blanks, at most 200 characters; `file`
/// when nothing is left.
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = base
        .chars()
        .filter(|&c| !c.is_control() && !crate::rooms::is_invisible(c))
        .collect();
    let trimmed = kept.trim().trim_start_matches('.').trim();
    let name: String = trimmed.chars().take(MAX_FILENAME_CHARS).collect();
    let name = name.trim_end();
    if name.is_empty() {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

/// `Content-Disposition` for `filename` (RFC 6266): `inline` or `attachment`, an ASCII
/// `filename` for old clients and the exact name as UTF-8 in `filename*` (RFC 8187).
pub fn content_disposition(inline: bool, filename: &str) -> String {
    use std::fmt::Write as _;
    let fallback: String = filename
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%')) || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for byte in filename.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(content_type(png), "image/png");
        assert_eq!(content_type(b"\xff\xd8\xff\xe0\0\x10JFIF"), "image/jpeg");
        assert_eq!(content_type(b"GIF89a...."), "image/gif");
        assert_eq!(content_type(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(content_type(b"hello, world\n"), "text/plain; charset=utf-8");
        // Markup is named as what it is, never as the image it may claim to be; it is
        // only ever downloaded (see `is_inline_image`).
        assert!(content_type(b"<html><script>alert(1)</script>").starts_with("text/"));
        assert_eq!(
            content_type(b"\0\x01\x02binary"),
            "application/octet-stream"
        );
    }

    #[test]
    fn filenames_lose_paths_and_disguises() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(sanitize_filename("evil\u{202E}gnp.exe"), "evilgnp.exe");
        assert_eq!(sanitize_filename("a\nb\0c.txt"), "abc.txt");
        assert_eq!(sanitize_filename("  .hidden "), "hidden");
        assert_eq!(sanitize_filename("..."), "file");
        assert_eq!(sanitize_filename(""), "file");
        assert_eq!(sanitize_filename(&"é".repeat(500)).chars().count(), 200);
    }

    #[test]
    fn dispositions_encode_names_both_ways() {
        assert_eq!(
            content_disposition(true, "cat.png"),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
        assert_eq!(
            content_disposition(false, "naïve \"résumé\".pdf"),
            "attachment; filename=\"na_ve _r_sum__.pdf\"; \
             filename*=UTF-8''na%C3%AFve%20%22r%C3%A9sum%C3%A9%22.pdf"
        );
    }
}
