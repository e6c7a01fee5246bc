//! Everything before the measured phase: which connection is which user in which room,
//! and on Socket-Hub the accounts, rooms and memberships behind that (over REST).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use socket_hub_client::Client;

use crate::LoadError;
use crate::link::{RoomRef, loopback_addr};
use crate::options::{Options, Scenario, Target};

/// Password of every generated account (they live in a throwaway data dir).
const PASSWORD: &str = "load-test-password";
/// REST calls in flight during setup (registration is bounded by the server anyway).
const SETUP_CONCURRENCY: usize = 16;

/// Who connects where: connection `c` is user `c % users` in room `room_of(c)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Layout {
    pub(crate) target: Target,
    pub(crate) scenario: Scenario,
    pub(crate) urls: Vec<String>,
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) rooms: Vec<RoomRef>,
    /// Members per room (`many-rooms`); 0 means everyone is in room 0.
    pub(crate) room_size: usize,
    /// Socket-Hub access token per user; empty for peers.
    pub(crate) tokens: Vec<String>,
    pub(crate) users: usize,
    pub(crate) source_ips: u8,
    /// Seconds `setup` took (registration dominates on Socket-Hub).
    pub(crate) setup_secs: f64,
}

impl Layout {
    /// The room index of connection `c`.
    pub(crate) fn room_of(&self, c: usize) -> usize {
        c.checked_div(self.room_size)
            .map_or(0, |r| r.min(self.rooms.len().saturating_sub(1)))
    }

    /// The base URL and address connection `c` uses.
    pub(crate) fn endpoint(&self, c: usize) -> (&str, SocketAddr) {
        let i = c % self.urls.len().max(1);
        (
            self.urls.get(i).map_or("", String::as_str),
            self.addrs
                .get(i)
                .copied()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
        )
    }

    /// Connection `c`'s token (Socket-Hub) and user id (peers).
    pub(crate) fn identity(&self, c: usize) -> (&str, String) {
        let user = c % self.users.max(1);
        (
            self.tokens.get(user).map_or("", String::as_str),
            format!("u{user}"),
        )
    }
}

/// Builds the layout for `options`, creating accounts and rooms on Socket-Hub.
pub(crate) async fn setup(options: &Options, run: &str) -> Result<Layout, LoadError> {
    let started = Instant::now();
    let mut addrs = Vec::with_capacity(options.url.len());
    for url in &options.url {
        addrs.push(loopback_addr(url).await?);
    }
    let urls: Vec<String> = options
        .url
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let (room_count, room_size) = match options.scenario {
        Scenario::ManyRooms => (options.rooms, options.room_size),
        _ => (1, 0),
    };
    let mut layout = Layout {
        target: options.target,
        scenario: options.scenario,
        urls,
        addrs,
        rooms: Vec::new(),
        room_size,
        tokens: Vec::new(),
        users: options.user_count(),
        source_ips: options.source_ips,
        setup_secs: 0.0,
    };
    match options.target {
        Target::Peer => {
            layout.rooms = (0..room_count)
                .map(|r| RoomRef {
                    id: r as i64,
                    name: format!("lg{run}-r{r}"),
                })
                .collect();
        }
        Target::SocketHub => {
            hub_setup(&mut layout, options.total_connections(), room_count, run).await?;
        }
    }
    layout.setup_secs = started.elapsed().as_secs_f64();
    Ok(layout)
}

/// Registers the users, creates the rooms and makes each connection's user a member of
/// its room, so joins over WebSocket succeed.
async fn hub_setup(
    layout: &mut Layout,
    connections: usize,
    room_count: usize,
    run: &str,
) -> Result<(), LoadError> {
    let base = Client::new(layout.urls.first().cloned().unwrap_or_default());
    let setup_err = |what: String| {
        move |e: socket_hub_client::ClientError| LoadError::Setup(format!("{what}: {e}"))
    };

    let registered: Vec<Result<String, LoadError>> = stream::iter(0..layout.users)
        .map(|u| {
            let mut client = base.clone();
            let name = format!("lg{run}u{u}");
            async move {
                with_timeout(client.register(&name, PASSWORD))
                    .await?
                    .map(|s| s.access_token)
                    .map_err(setup_err(format!("register {name}")))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    layout.tokens = registered.into_iter().collect::<Result<_, _>>()?;

    // Each room's member users, in connection order; the first one creates the room.
    let mut members: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); room_count];
    let mut creators: Vec<Option<usize>> = vec![None; room_count];
    for c in 0..connections {
        let room = layout.room_of(c);
        let user = c % layout.users;
        if let (Some(set), Some(creator)) = (members.get_mut(room), creators.get_mut(room)) {
            creator.get_or_insert(user);
            set.insert(user);
        }
    }
    let as_user = |user: usize| {
        let mut client = base.clone();
        client.set_access_token(layout.tokens.get(user).cloned().unwrap_or_default());
        client
    };

    let created: Vec<Result<RoomRef, LoadError>> = stream::iter(0..room_count)
        .map(|r| {
            let client = as_user(creators.get(r).copied().flatten().unwrap_or(0));
            let name = format!("lg{run} r{r}");
            async move {
                with_timeout(client.create_room(&name, false, None))
                    .await?
                    .map(|view| RoomRef {
                        id: view.room.id,
                        name,
                    })
                    .map_err(setup_err(format!("create room {r}")))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    layout.rooms = created.into_iter().collect::<Result<_, _>>()?;

    let joins: Vec<(usize, usize)> = members
        .iter()
        .enumerate()
        .flat_map(|(r, set)| {
            let creator = creators.get(r).copied().flatten();
            set.iter()
                .filter(move |u| Some(**u) != creator)
                .map(move |u| (r, *u))
        })
        .collect();
    let joined: Vec<Result<(), LoadError>> = stream::iter(joins)
        .map(|(r, u)| {
            let client = as_user(u);
            let room_id = layout.rooms.get(r).map_or(0, |room| room.id);
            async move {
                with_timeout(client.join_room(room_id, None))
                    .await?
                    .map(drop)
                    .map_err(setup_err(format!("user {u} joins room {r}")))
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    joined.into_iter().collect::<Result<(), _>>()
}

/// One REST call within a minute, or a setup error.
async fn with_timeout<T>(call: impl Future<Output = T>) -> Result<T, LoadError> {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .map_err(|_| LoadError::Setup("a REST call took over 60 s".into()))
}
