//! `frame_decode`: parsing a client `message_send` frame into a [`ClientFrame`], the
//! first thing the server does with every message a client sends.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use socket_hub_protocol::ClientFrame;
use std::hint::black_box;
use std::time::Duration;

fn frame_decode(c: &mut Criterion) {
    let text = r#"{"type":"message_send","room_id":42,"client_msg_id":"1732356000123456.17.3","content":"1732356000123456 hello everyone, this is a chat message of typical length"}"#;
    let mut group = c.benchmark_group("frame_decode");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("message_send", |b| {
        b.iter(|| {
            let frame: ClientFrame =
                serde_json::from_str(black_box(text)).expect("a valid message_send frame");
            black_box(frame)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = frame_decode
}
criterion_main!(benches);
