//! `/metrics` after real traffic: histograms with buckets (never summaries) and
//! counters with their labels. Each value is recorded before the client can observe
//! what it counts (or a ping round trip later), so one scrape at the end suffices.

use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode, ServerFrame};

use crate::helpers::{WAIT, assert_quiet, duo, next_chat, next_error, send, spawn_with};

/// The value of the sample `name{labels…}` (every given label present), if any.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (head, value) = rest.rsplit_once(' ')?;
        let labelled = head.is_empty() || head.starts_with('{');
        let all = labels
            .iter()
            .all(|(k, v)| head.contains(&format!("{k}=\"{v}\"")));
        (labelled && all).then(|| value.parse().ok()).flatten()
    })
}

fn at_least(text: &str, name: &str, labels: &[(&str, &str)], least: f64) {
    let value = sample(text, name, labels)
        .unwrap_or_else(|| panic!("no {name} {labels:?} in /metrics:\n{text}"));
    assert!(
        value >= least,
        "{name} {labels:?} is {value}, expected ≥ {least}"
    );
}

#[tokio::test]
async fn metrics_show_traffic_requests_closes_and_refusals() {
    let app = spawn_with(|c| {
        c.rate_per_sec = 5;
        c.rate_burst = 5;
    })
    .await;
    let mut d = duo(&app).await;
    for i in 0..3 {
        send(&mut d.a, d.room.id, &format!("m{i}"), "hello").await;
        next_chat(&mut d.b).await;
    }
    // A ping round trip on each socket: the writer has finished the batches before it.
    // Alice's own chats may still be on their way (they race her acks): skip them.
    d.a.send(&ClientFrame::Ping).await.expect("ping");
    d.a.wait_for(WAIT, |f| (*f == ServerFrame::Pong).then_some(()))
        .await
        .expect("pong");
    assert_quiet(&mut d.b).await;
    d.alice.room(d.room.id).await.expect("room");
    assert!(d.alice.room(999_999).await.is_err());

    let (_, session) = app.user("flood").await;
    let mut flood = app.connect(&session).await;
    for _ in 0..20 {
        flood.send(&ClientFrame::Ping).await.expect("send");
    }
    assert_eq!(next_error(&mut flood).await, ErrorCode::RateLimited);
    for _ in 0..200 {
        if flood.send(&ClientFrame::Ping).await.is_err() {
            break;
        }
    }
    assert_eq!(
        flood.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::POLICY_VIOLATION)
    );

    let response = reqwest::get(format!("{}/metrics", app.url))
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    if std::env::var_os("SHOW_METRICS").is_some() {
        println!("{text}");
    }

    // Histograms, with buckets.
    assert!(
        !text.contains("quantile="),
        "a histogram renders as a summary:\n{text}"
    );
    for name in [
        "socket_hub_store_append_seconds",
        "socket_hub_store_append_batch_size",
        "socket_hub_delivery_latency_seconds",
        "socket_hub_http_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} histogram")),
            "{name} is not a histogram:\n{text}"
        );
        at_least(&text, &format!("{name}_bucket"), &[("le", "+Inf")], 1.0);
    }
    at_least(&text, "socket_hub_store_append_batch_size_sum", &[], 3.0);
    at_least(
        &text,
        "socket_hub_store_append_batch_size_bucket",
        &[("le", "1")],
        1.0,
    );
    at_least(&text, "socket_hub_delivery_latency_seconds_count", &[], 1.0);
    let room_route = [
        ("method", "GET"),
        ("route", "/api/v1/rooms/{id}"),
        ("status", "200"),
        ("le", "+Inf"),
    ];
    at_least(
        &text,
        "socket_hub_http_request_duration_seconds_bucket",
        &room_route,
        1.0,
    );
    let not_found = [("route", "/api/v1/rooms/{id}"), ("status", "404")];
    at_least(
        &text,
        "socket_hub_http_request_duration_seconds_count",
        &not_found,
        1.0,
    );
    let register = [
        ("method", "POST"),
        ("route", "/api/v1/auth/register"),
        ("status", "201"),
    ];
    at_least(
        &text,
        "socket_hub_http_request_duration_seconds_count",
        &register,
        3.0,
    );

    // Counters.
    let frames_in = "socket_hub_ws_frames_in_total";
    at_least(&text, frames_in, &[("type", "message_send")], 3.0);
    at_least(&text, frames_in, &[("type", "join_room")], 2.0);
    at_least(&text, frames_in, &[("type", "ping")], 2.0);
    let frames_out = "socket_hub_ws_frames_out_total";
    at_least(&text, frames_out, &[("type", "chat")], 3.0);
    at_least(&text, frames_out, &[("type", "ack")], 3.0);
    at_least(&text, frames_out, &[("type", "room_joined")], 2.0);
    at_least(&text, frames_out, &[("type", "ready")], 2.0);
    at_least(
        &text,
        "socket_hub_ws_closes_total",
        &[("code", "1008")],
        1.0,
    );
    let errors = "socket_hub_errors_total";
    at_least(
        &text,
        errors,
        &[("code", "rate_limited"), ("via", "ws")],
        1.0,
    );
    at_least(
        &text,
        errors,
        &[("code", "not_found"), ("via", "http")],
        1.0,
    );
    at_least(&text, "socket_hub_rate_limited_total", &[], 1.0);
    at_least(&text, "socket_hub_messages_total", &[], 3.0);
    // Registered from the start, so dashboards see zeros rather than nothing.
    at_least(
        &text,
        "socket_hub_slow_consumers_total",
        &[("cause", "queue_full")],
        0.0,
    );
    at_least(
        &text,
        "socket_hub_slow_consumers_total",
        &[("cause", "write_timeout")],
        0.0,
    );
}
