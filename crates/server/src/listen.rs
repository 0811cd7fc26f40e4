//! Accepting connections: HTTP/1.1 on each, with the client's address, until shutdown.
//!
//! A held stream keeps its connection, so what a connection costs is what a stream costs.
//! hyper's HTTP/1 connection reads into an 8 KiB buffer; a server that first sniffs for
//! HTTP/2 (as `axum::serve` does) hands hyper the sniffed bytes ahead of the socket, and
//! hyper then grows that buffer to 16 KiB on the first request. Browsers speak HTTP/2 only
//! over TLS, which a proxy in front of frontdesk terminates, so this server speaks HTTP/1.1
//! alone and keeps the smaller buffer. It also bounds how long a client may take to send
//! a request head (and so how long an idle connection stays open).
//!
//! One client address may hold at most `limits.max_connections_per_address` connections at
//! once (0: no bound): a further one is closed at accept, before it costs a task.
//!
//! Connections may be upgraded (WebSocket: the browser voice socket, media streams): hyper
//! hands the socket to the route that accepted the upgrade, which owns it from then on.
//! Shutdown asks each connection still serving HTTP to finish its request and close.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long a client may take to send a request's head, counted from the end of the
/// previous response on a kept-alive connection: it also closes idle connections. Above the
/// idle timeouts of common proxies (60 s for AWS's load balancers and nginx's upstream
/// keep-alive), so a proxy never sends a request on a connection this server is closing.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

/// How long to wait after an accept error that is not about one connection (such as too
/// many open files) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The connections open per client address (IPv6 by /64, as the rate limits count it: one
/// host commonly holds a whole /64).
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<String, usize>>>);

/// One open connection of an address: counted while it lives.
struct Counted {
    open: OpenConnections,
    address: String,
}

impl OpenConnections {
    /// Counts a new connection of `address`, unless it already holds `max` (0: no bound).
    fn admit(&self, address: IpAddr, max: usize) -> Option<Counted> {
        let address = crate::routes::client_limits::address_bucket(address);
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(address.clone()).or_insert(0);
        if max > 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(Counted {
            open: self.clone(),
            address,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self
            .open
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for the open
/// connections to finish their requests (streams included). An address holding
/// `max_per_address` connections (0: no bound) has further ones closed at accept.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_per_address: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // Connections watch `closing`; shutdown waits for every connection task.
    let closing = CancellationToken::new();
    let connections = TaskTracker::new();
    let open = OpenConnections::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A connection that went away before it was accepted: only that one.
                Err(error) if connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::error!(error = %error, "could not accept connections; retrying in a second");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(counted) = open.admit(remote.ip(), max_per_address) else {
            tracing::debug!(client.address = %remote.ip(), "refused a connection over the per-address bound");
            drop(tcp);
            continue;
        };
        // Streams are many small writes (one per SSE event): each goes out when written,
        // instead of waiting for the client to acknowledge the one before (Nagle).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(error = %error, "could not turn off Nagle's algorithm on a connection");
        }
        let service = app.clone().map_request(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            },
        );
        let connection = http
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
            .with_upgrades();
        let closing = closing.clone();
        connections.spawn(async move {
            let _counted = counted;
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = closing.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                if error.is_timeout() {
                    tracing::trace!("closed a connection that sent no request in time");
                } else {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    connections.wait().await;
}

/// Whether an accept error concerns only the connection being accepted.
fn connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure should fail loudly.

    use super::*;
    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use axum::routing::get;
    use futures_util::{SinkExt, StreamExt};

    #[test]
    fn an_address_holds_at_most_its_bound_and_gets_room_back_as_connections_end() {
        let open = OpenConnections::default();
        let one: std::net::IpAddr = [10, 0, 0, 1].into();
        let two: std::net::IpAddr = [10, 0, 0, 2].into();
        let first = open.admit(one, 2);
        let second = open.admit(one, 2);
        assert!(first.is_some() && second.is_some());
        assert!(open.admit(one, 2).is_none(), "a third is refused");
        assert!(open.admit(two, 2).is_some(), "another address has its own");
        drop(first);
        assert!(
            open.admit(one, 2).is_some(),
            "an ended connection makes room"
        );
        assert!(open.admit(one, 0).is_some(), "0: no bound");
        // Two addresses of one IPv6 /64 are one client.
        let v6a: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: std::net::IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let _first = open.admit(v6a, 1).unwrap();
        assert!(open.admit(v6b, 1).is_none(), "the /64 is full");
    }

    /// Answers each text frame with its text reversed, until the client closes.
    async fn reverse(mut socket: WebSocket) {
        while let Some(Ok(message)) = socket.recv().await {
            match message {
                Message::Text(text) => {
                    let reversed: String = text.as_str().chars().rev().collect();
                    if socket.send(Message::Text(reversed.into())).await.is_err() {
                        return;
                    }
                }
                Message::Close(_) => return,
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn a_connection_upgrades_to_a_websocket_and_exchanges_messages() {
        let app = Router::new().route(
            "/ws",
            get(|upgrade: WebSocketUpgrade| async move { upgrade.on_upgrade(reverse) }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, 0, stop.clone().cancelled_owned()));
        let (mut socket, response) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        for word in ["hello", "frontdesk"] {
            socket
                .send(tokio_tungstenite::tungstenite::Message::text(word))
                .await
                .unwrap();
            let answer = socket.next().await.unwrap().unwrap();
            let expected: String = word.chars().rev().collect();
            assert_eq!(answer.into_text().unwrap().as_str(), expected);
        }
        socket.close(None).await.unwrap();
        // Plain requests still work beside it, and shutdown ends the server.
        let plain = tokio::net::TcpStream::connect(address).await.unwrap();
        drop(plain);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
    }
}
