//! `fan_out_encode`: one stored message encoded into its `chat` frame once, then queued
//! for every member of a room (N = 100 and N = 1000) through the room task's own fan-out
//! and the connections' real outbound queues, which are then emptied as a writer would.
//! Throughput is per delivery.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use socket_hub::gateway::bench_support::FanOut;
use socket_hub_protocol::{Message, User};

fn fan_out_encode(c: &mut Criterion) {
    let message = Message {
        id: 1,
        room_id: 42,
        seq: 1,
        user: User {
            id: 7,
            username: "ada".into(),
        },
        content: "1732356000123456 hello everyone, this is a chat message of typical length".into(),
        client_msg_id: Some("1732356000123456.17.3".into()),
        event: None,
        created_at: chrono::DateTime::from_timestamp_millis(1_732_356_000_123)
            .expect("a valid timestamp"),
        attachments: Vec::new(),
    };
    let mut group = c.benchmark_group("fan_out_encode");
    for members in [100, 1000] {
        let mut room = FanOut::new(members, 256);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter(|| black_box(room.deliver(black_box(&message))));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fan_out_encode
}
criterion_main!(benches);
