//! Accepting connections: HTTP/1.1 on each, with the client's address, until shutdown.
//!
//! A held stream keeps its connection, so what a connection costs is what a stream costs.
//! hyper's HTTP/1 connection reads into an 8 KiB buffer; a server that first sniffs for
//! HTTP/2 (as `axum::serve` does) hands hyper the sniffed bytes ahead of the socket, and
//! hyper then grows that buffer to 16 KiB on the first request. Browsers speak HTTP/2 only
//! over TLS, which a proxy in front of frontdesk terminates, so this server speaks HTTP/1.1
//! alone and keeps the smaller buffer. It also bounds how long a client may take to send
//! a request head (and so how long an idle connection stays open).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client may take to send a request's head, counted from the end of the
/// previous response on a kept-alive connection: it also closes idle connections. Above the
/// idle timeouts of common proxies (60 s for AWS's load balancers and nginx's upstream
/// keep-alive), so a proxy never sends a request on a connection this server is closing.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

/// How long to wait after an accept error that is not about one connection (such as too
/// many open files) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` completes, then waits for the open
/// connections to finish their requests (streams included).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
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
        let connection =
            http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                if error.is_timeout() {
                    tracing::trace!("closed a connection that sent no request in time");
                } else {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
