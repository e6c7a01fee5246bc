//! Attachments over real HTTP and WebSocket (issue 11): upload, attach, download,
//! thumbnails, sniffing, limits, quota, and every refusal, on SQLite and PostgreSQL.

use std::io::Cursor;

use socket_hub_client::Client;
use socket_hub_protocol::rest::SendMessage;
use socket_hub_protocol::{ClientFrame, ErrorCode, ServerFrame, Upload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, TestApp, WAIT, duo, join, next_chat,
    on_both_backends_with, refused, spawn_with,
};

fn defaults(_: &mut socket_hub::Config) {}

/// A real PNG of `width` × `height` (opaque, so its thumbnail is a JPEG).
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// A one-colour PNG: a few hundred bytes however many pixels.
fn solid_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(width, height, image::Rgb([1, 2, 3]))
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// `POST /uploads` with a declared `Content-Type`, outside the SDK.
async fn upload_as(
    app: &TestApp,
    client: &Client,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/uploads?filename={filename}", app.url))
        .bearer_auth(client.access_token().expect("signed in"))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("upload request")
}

/// A `message_send` with attachments, and the frame that answers it.
async fn send_with(
    ws: &mut socket_hub_client::Connection,
    room_id: i64,
    client_msg_id: &str,
    content: &str,
    attachments: Vec<String>,
) -> ServerFrame {
    ws.send(&ClientFrame::MessageSend {
        room_id,
        client_msg_id: client_msg_id.into(),
        content: content.into(),
        attachments,
        reply_to: None,
    })
    .await
    .expect("send");
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Ack {
            client_msg_id: id, ..
        } if id == client_msg_id => Some(f.clone()),
        ServerFrame::Error {
            reference: Some(r), ..
        } if r == client_msg_id => Some(f.clone()),
        _ => None,
    })
    .await
    .expect("an answer to the send")
}

#[tokio::test]
async fn an_image_is_uploaded_attached_delivered_downloaded_and_replayed() {
    on_both_backends_with(defaults, |app| async move {
        let mut duo = duo(&app).await;
        let picture = png(640, 480);
        let upload: Upload = duo
            .alice
            .upload("cat.png", picture.clone())
            .await
            .expect("upload");
        let meta = &upload.attachment;
        assert_eq!(meta.content_type, "image/png");
        assert_eq!(meta.filename, "cat.png");
        assert_eq!(meta.size, picture.len() as i64);
        assert_eq!((meta.width, meta.height), (Some(640), Some(480)));
        assert_eq!(upload.sha256, sha256_hex(&picture));
        assert_eq!(meta.url, format!("/api/v1/uploads/{}", meta.id));
        let thumbnail_url = meta
            .thumbnail_url
            .clone()
            .expect("an image has a thumbnail");

        // Attached by a WebSocket send: acked and delivered with the metadata.
        let ServerFrame::Ack { message: sent, .. } =
            send_with(&mut duo.a, duo.room.id, "p1", "look", vec![meta.id.clone()]).await
        else {
            panic!("the send is refused");
        };
        assert_eq!(sent.attachments, vec![meta.clone()]);
        let got = next_chat(&mut duo.b).await;
        assert_eq!(got, sent);

        // Bob, a member, downloads the file and its thumbnail.
        let (bytes, content_type) = duo.bob.download(&meta.url).await.expect("download");
        assert_eq!(bytes, picture);
        assert_eq!(content_type, "image/png");
        let (thumb, thumb_type) = duo.bob.download(&thumbnail_url).await.expect("thumbnail");
        assert_eq!(thumb_type, "image/jpeg");
        let decoded = image::load_from_memory(&thumb).expect("the thumbnail decodes");
        assert_eq!((decoded.width(), decoded.height()), (320, 240));

        // The download's headers: inline for a decoded image, never sniffed, sandboxed.
        let response = reqwest::Client::new()
            .get(format!("{}{}", app.url, meta.url))
            .bearer_auth(duo.bob.access_token().expect("token"))
            .send()
            .await
            .expect("download");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(response.status(), 200);
        assert_eq!(
            header("content-disposition"),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("content-security-policy").contains("sandbox"));
        let etag = header("etag");
        assert_eq!(etag, format!("\"{}\"", upload.sha256));
        let again = reqwest::Client::new()
            .get(format!("{}{}", app.url, meta.url))
            .bearer_auth(duo.bob.access_token().expect("token"))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("conditional download");
        assert_eq!(again.status(), 304);

        // A signed link works without the token, and only as signed.
        let link = duo.bob.upload_link(&meta.id).await.expect("link");
        let plain = reqwest::Client::new();
        let fetched = plain
            .get(format!("{}{}", app.url, link.url))
            .send()
            .await
            .expect("signed download");
        assert_eq!(fetched.status(), 200);
        assert_eq!(fetched.bytes().await.expect("body").to_vec(), picture);
        let thumb_link = link.thumbnail_url.expect("a thumbnail link");
        let fetched = plain
            .get(format!("{}{}", app.url, thumb_link))
            .send()
            .await
            .expect("signed thumbnail");
        assert_eq!(fetched.status(), 200);
        let forged = link.url.replace("sig=", "sig=A");
        let refused_link = plain
            .get(format!("{}{}", app.url, forged))
            .send()
            .await
            .expect("forged link");
        assert_eq!(refused_link.status(), 401);
        let unsigned = plain
            .get(format!("{}{}", app.url, meta.url))
            .send()
            .await
            .expect("no credentials");
        assert_eq!(unsigned.status(), 401);

        // History carries it; a client resuming with since_seq gets it replayed.
        let page = duo
            .bob
            .history(duo.room.id, None, None)
            .await
            .expect("history");
        assert_eq!(page.messages[0].attachments, vec![meta.clone()]);
        let bob_session = duo.bob.clone();
        drop(duo.b);
        let mut b = socket_hub_client::Connection::connect(
            &app.url,
            socket_hub_client::Auth::Header(bob_session.access_token().expect("token").to_owned()),
        )
        .await
        .expect("reconnect");
        crate::helpers::expect_ready(&mut b).await;
        b.send(&ClientFrame::JoinRoom {
            room_id: duo.room.id,
            since_seq: Some(sent.seq - 1),
            access_code: None,
        })
        .await
        .expect("resume");
        let replayed = next_chat(&mut b).await;
        assert_eq!(replayed, sent, "the replay carries the attachments");

        // A retried send (same client_msg_id, same upload) is the original.
        let ServerFrame::Ack {
            message: retried, ..
        } = send_with(&mut duo.a, duo.room.id, "p1", "look", vec![meta.id.clone()]).await
        else {
            panic!("the retry is refused");
        };
        assert_eq!(retried, sent);

        // A message may be only attachments; REST sends take them too.
        let second = duo
            .alice
            .upload("notes.txt", b"plain notes".to_vec())
            .await
            .expect("upload");
        let message = duo
            .alice
            .send_message_with(
                duo.room.id,
                &SendMessage {
                    content: String::new(),
                    client_msg_id: None,
                    attachments: vec![second.attachment.id.clone()],
                    reply_to: None,
                },
            )
            .await
            .expect("a REST send with only an attachment");
        assert_eq!(message.content, "");
        assert_eq!(
            message.attachments[0].content_type,
            "text/plain; charset=utf-8"
        );
        assert_eq!(message.attachments[0].thumbnail_url, None);

        // Deleting the message erases its files: nobody can fetch them any more, the
        // uploader included, and the tombstone carries none.
        let notes_url = message.attachments[0].url.clone();
        duo.alice
            .download(&notes_url)
            .await
            .expect("readable before the delete");
        duo.alice
            .delete_message(duo.room.id, message.id)
            .await
            .expect("delete");
        assert_eq!(refused(duo.alice.download(&notes_url).await), NOT_FOUND);
        assert_eq!(refused(duo.bob.download(&notes_url).await), NOT_FOUND);
        let page = duo
            .bob
            .history(duo.room.id, None, None)
            .await
            .expect("history");
        let tombstone = page
            .messages
            .iter()
            .find(|m| m.id == message.id)
            .expect("the tombstone");
        assert!(tombstone.deleted && tombstone.attachments.is_empty());
        app
    })
    .await;
}

#[tokio::test]
async fn the_sniffed_type_overrides_a_lying_one() {
    let app = spawn_with(defaults).await;
    let (alice, _) = app.user("alice").await;
    // A script declared as an image: stored as text, downloaded as an attachment.
    let response = upload_as(
        &app,
        &alice,
        "photo.png",
        "image/png",
        b"<html><script>alert(document.cookie)</script></html>".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let upload: Upload = response.json().await.expect("upload");
    let sniffed = upload.attachment.content_type.clone();
    assert!(sniffed.starts_with("text/"), "{sniffed}");
    assert_eq!(upload.attachment.thumbnail_url, None);
    let response = reqwest::Client::new()
        .get(format!("{}{}", app.url, upload.attachment.url))
        .bearer_auth(alice.access_token().expect("token"))
        .send()
        .await
        .expect("download");
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(sniffed.as_str())
    );
    assert_eq!(
        response
            .headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );

    // A real PNG declared as text, under a hostile name: an image, with a clean name.
    let response = upload_as(
        &app,
        &alice,
        "..%2F..%2Fevil%E2%80%AEgnp.png",
        "text/plain",
        png(8, 8),
    )
    .await;
    assert_eq!(response.status(), 201);
    let upload: Upload = response.json().await.expect("upload");
    assert_eq!(upload.attachment.content_type, "image/png");
    assert_eq!(upload.attachment.filename, "evilgnp.png");
    assert!(upload.attachment.thumbnail_url.is_some());
}

fn small_limits(c: &mut socket_hub::Config) {
    c.upload_max_bytes = 1000;
    c.upload_quota_bytes = 1500;
    c.upload_max_pixels = 10_000;
}

#[tokio::test]
async fn size_limit_quota_and_pixel_limit_are_refused_with_their_codes() {
    on_both_backends_with(small_limits, |app| async move {
        let (alice, _) = app.user("alice").await;
        let too_large = (Some(413), Some(ErrorCode::FileTooLarge));
        assert_eq!(
            refused(alice.upload("big.bin", vec![7u8; 1001]).await),
            too_large
        );
        // Streamed without a Content-Length: counted as it arrives, refused all the same.
        let (status, body) = chunked_upload(&app, &alice, 3000).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("file_too_large"), "{body}");
        assert_eq!(refused(alice.upload("empty", Vec::new()).await), INVALID);

        // The quota counts what is stored; deleting an unattached upload frees it.
        let first = alice
            .upload("a.bin", vec![1u8; 1000])
            .await
            .expect("within quota");
        let over_quota = (Some(413), Some(ErrorCode::QuotaExceeded));
        assert_eq!(
            refused(alice.upload("b.bin", vec![2u8; 600]).await),
            over_quota
        );
        let (status, body) = chunked_upload(&app, &alice, 600).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("quota_exceeded"), "{body}");
        alice
            .upload("c.bin", vec![3u8; 500])
            .await
            .expect("exactly the quota");
        alice
            .delete_upload(&first.attachment.id)
            .await
            .expect("delete");
        alice
            .upload("d.bin", vec![4u8; 900])
            .await
            .expect("room again");

        // An image over the pixel limit is refused before it is decoded.
        let (bob, _) = app.user("bob").await;
        let picture = solid_png(101, 100);
        assert!(picture.len() <= 1000, "the test image fits the size limit");
        assert_eq!(refused(bob.upload("huge.png", picture).await), INVALID);
        bob.upload("fine.png", solid_png(100, 100))
            .await
            .expect("at the limit");
        app
    })
    .await;
}

/// `POST /uploads` of `len` bytes with `Transfer-Encoding: chunked` (no
/// `Content-Length`), over a raw socket: the status and the body of the answer.
async fn chunked_upload(app: &TestApp, client: &Client, len: usize) -> (u16, String) {
    let addr = app.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/uploads?filename=stream.bin HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        client.access_token().expect("token")
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b'x'; 100];
    for _ in 0..len / 100 {
        // The server may answer and close before the whole body is sent.
        if socket.write_all(b"64\r\n").await.is_err()
            || socket.write_all(&chunk).await.is_err()
            || socket.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn attaching_and_downloading_are_refused_to_those_they_do_not_belong_to() {
    on_both_backends_with(defaults, |app| async move {
        let mut duo = duo(&app).await;
        let (carol, carol_s) = app.user("carol").await;
        let other_room = duo
            .alice
            .create_room("elsewhere", false, None)
            .await
            .expect("room")
            .room;
        let mine = duo
            .alice
            .upload("mine.png", png(4, 4))
            .await
            .expect("upload");
        let id = mine.attachment.id.clone();

        // Before it is attached only its uploader may read it.
        duo.alice
            .download(&mine.attachment.url)
            .await
            .expect("the uploader reads it");
        assert_eq!(
            refused(duo.bob.download(&mine.attachment.url).await),
            NOT_FOUND
        );

        // Someone else's upload cannot be attached (and looks like no upload at all).
        let mut b = duo.b;
        let frame = send_with(&mut b, duo.room.id, "steal", "mine now", vec![id.clone()]).await;
        assert!(
            matches!(
                frame,
                ServerFrame::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{frame:?}"
        );
        let frame = send_with(&mut b, duo.room.id, "nothing", "", vec!["x".repeat(22)]).await;
        assert!(
            matches!(
                frame,
                ServerFrame::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{frame:?}"
        );
        // Not into a room the sender is not in.
        assert_eq!(
            refused(
                carol
                    .send_message_with(
                        duo.room.id,
                        &SendMessage {
                            content: "hi".into(),
                            client_msg_id: None,
                            attachments: vec![
                                carol
                                    .upload("c.txt", b"carol".to_vec())
                                    .await
                                    .expect("up")
                                    .attachment
                                    .id
                            ],
                            reply_to: None,
                        },
                    )
                    .await
            ),
            FORBIDDEN
        );

        // Attached in one room, it cannot be attached in a second one.
        let frame = send_with(&mut duo.a, duo.room.id, "here", "first", vec![id.clone()]).await;
        assert!(matches!(frame, ServerFrame::Ack { .. }), "{frame:?}");
        let mut a2 = app.connect(&duo.alice_s).await;
        join(&mut a2, other_room.id, None).await;
        let frame = send_with(&mut a2, other_room.id, "there", "again", vec![id.clone()]).await;
        assert!(
            matches!(
                frame,
                ServerFrame::Error {
                    code: ErrorCode::Conflict,
                    ..
                }
            ),
            "{frame:?}"
        );
        assert_eq!(refused(duo.alice.delete_upload(&id).await), CONFLICT);

        // Members read it now; someone not in the room gets 404 for file, thumbnail, link.
        duo.bob
            .download(&mine.attachment.url)
            .await
            .expect("a member reads it");
        let thumb = mine.attachment.thumbnail_url.clone().expect("thumbnail");
        assert_eq!(
            refused(carol.download(&mine.attachment.url).await),
            NOT_FOUND
        );
        assert_eq!(refused(carol.download(&thumb).await), NOT_FOUND);
        assert_eq!(refused(carol.upload_link(&id).await), NOT_FOUND);
        // A link signed for a member does not work for someone else.
        let link = duo.bob.upload_link(&id).await.expect("link");
        let carol_id = carol_s.user.id.to_string();
        let bob_id = duo.bob.me().await.expect("me").id.to_string();
        let as_carol = link
            .url
            .replace(&format!("user={bob_id}"), &format!("user={carol_id}"));
        let response = reqwest::get(format!("{}{}", app.url, as_carol))
            .await
            .expect("get");
        assert_eq!(response.status(), 401);
        // Leaving the room ends access, even through a fresh link.
        duo.bob.leave_room(duo.room.id).await.expect("leave");
        assert_eq!(
            refused(duo.bob.download(&mine.attachment.url).await),
            NOT_FOUND
        );
        let response = reqwest::get(format!("{}{}", app.url, link.url))
            .await
            .expect("get");
        assert_eq!(response.status(), 404);
        drop(b);
        app
    })
    .await;
}
