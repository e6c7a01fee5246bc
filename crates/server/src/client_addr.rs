//! The client's address, which every per-address limit (login failures, registration,
//! unauthenticated upgrades) keys on. Behind a reverse proxy the TCP peer is the proxy,
//! so `X-Forwarded-For` is believed only when the peer is one of `--trusted-proxies`;
//! otherwise a client could name any address and dodge every per-address limit. A proxy
//! whose address is not fixed (a Compose network, a Kubernetes ingress) is trusted by its
//! network (`172.28.0.0/16`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::error::Error;

/// Where a request came from, as far as this server can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose `X-Forwarded-For` is believed; empty trusts none.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts exactly the addresses in `proxies`.
    pub fn new(proxies: &[IpNet]) -> Self {
        Self(proxies.into())
    }

    fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from the right (each proxy
    /// appends the address it saw), the first hop that is not a trusted proxy. A header
    /// from an untrusted peer, or one that cannot be parsed, is ignored.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else {
                return client;
            };
            for hop in value.rsplit(',') {
                let Ok(hop) = hop.trim().parse::<IpAddr>() else {
                    return client;
                };
                client = canonical(hop);
                if !self.contains(client) {
                    return client;
                }
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) is
/// the IPv4 address, so one client is one key however it connected.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// Middleware resolving each request's [`ClientAddr`] once, from the socket's peer
/// address (axum's `ConnectInfo`) and the trusted proxies, for handlers to extract.
pub async fn resolve(
    proxies: axum::extract::State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = proxies.client(peer.ip(), request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .ok_or_else(|| {
                Error::Internal(
                    "no client address: the server was not served with connect info".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().expect("header value"));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn nets(list: &[&str]) -> TrustedProxies {
        let nets: Vec<IpNet> = list.iter().map(|t| t.parse().expect("network")).collect();
        TrustedProxies::new(&nets)
    }

    #[test]
    fn a_trusted_network_covers_every_proxy_in_it() {
        let proxies = nets(&["172.28.0.0/16"]);
        let forwarded = headers(&["198.51.100.1, 172.28.3.4"]);
        assert_eq!(
            proxies.client(ip("172.28.0.10"), &forwarded),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies.client(ip("172.29.0.10"), &forwarded),
            ip("172.29.0.10")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::default();
        let client = proxies.client(ip("203.0.113.9"), &headers(&["198.51.100.1"]));
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_first_untrusted_hop_from_the_right() {
        let proxies = nets(&["127.0.0.1/32", "10.0.0.2/32"]);
        let forwarded = headers(&["6.6.6.6, 198.51.100.1", "10.0.0.2"]);
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &forwarded),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn garbage_in_the_header_stops_the_walk_at_the_last_good_hop() {
        let proxies = nets(&["127.0.0.1/32"]);
        let forwarded = headers(&["nonsense, 198.51.100.1"]);
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &forwarded),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&["nonsense"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let proxies = nets(&["127.0.0.1/32"]);
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), &headers(&["192.0.2.7"])),
            ip("192.0.2.7")
        );
    }
}
