//! The batching writer on embedded SQLite (a temp dir, `synchronous=FULL`): appends per
//! second with many concurrent appenders, into one room and spread over 1000 rooms.
//!
//! `cargo bench -p socket-hub --bench append`. Each iteration is one acknowledged
//! append; criterion's throughput line is appends/s. Concurrency is what lets batches
//! form, so each case runs `APPENDERS` tasks that share the iterations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use socket_hub::rooms::{Appended, NewMessage};
use socket_hub::state::Store;
use socket_hub::store::DbOptions;
use socket_hub_protocol::{RoomId, User};

/// Concurrent appenders (a server's sessions each have one send in flight).
const APPENDERS: [usize; 2] = [64, 512];

struct Fixture {
    store: Store,
    user: User,
    rooms: Arc<Vec<RoomId>>,
    _dir: tempfile::TempDir,
}

async fn fixture(rooms: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url, &DbOptions::default())
        .await
        .expect("store opens");
    let user = store.users.create("bench", "x").await.expect("user");
    let mut ids = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let room = store
            .rooms
            .create(user.id, &format!("room{r}"), false, None)
            .await
            .expect("room");
        ids.push(room.room.id);
    }
    Fixture {
        store,
        user,
        rooms: Arc::new(ids),
        _dir: dir,
    }
}

/// `total` appends by `appenders` tasks, each cycling over the rooms from its own offset.
async fn run(fixture: &Fixture, appenders: usize, total: u64) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let store = fixture.store.clone();
            let user = fixture.user.clone();
            let rooms = fixture.rooms.clone();
            let share = total / appenders as u64 + u64::from((a as u64) < total % appenders as u64);
            tokio::spawn(async move {
                for i in 0..share {
                    let room_id = rooms[(a + i as usize * appenders) % rooms.len()];
                    let appended = store
                        .messages
                        .append(NewMessage {
                            room_id,
                            user: &user,
                            client_msg_id: None,
                            content: "a benchmark message of a typical chat length, 64 bytes.",
                            reply_to: None,
                            attachments: None,
                        })
                        .await
                        .expect("append");
                    assert!(matches!(appended, Appended::Stored(_)));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("appender");
    }
    started.elapsed()
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(10);
    for rooms in [1, 1000] {
        let fixture = runtime.block_on(fixture(rooms));
        for appenders in APPENDERS {
            group.bench_with_input(
                BenchmarkId::new(format!("{rooms}-rooms"), appenders),
                &appenders,
                |b, &appenders| {
                    b.to_async(&runtime)
                        .iter_custom(|iters| run(&fixture, appenders, iters));
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
