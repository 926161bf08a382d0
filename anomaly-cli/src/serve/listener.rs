//! The HTTP/1 accept loop, with the limits a service facing slow or broken
//! clients needs (axum's own `serve` has none of them): a client gets
//! `--header-timeout` to send each request's headers (also a connection
//! that never sends one, or sits idle between requests), every request must
//! be answered within `--request-timeout` (a body that never arrives, such
//! as a Content-Length above what is sent or a huge declared chunk, gets 408
//! and its connection closed), and at most `--max-connections` are open
//! (more are closed at once). On SIGTERM the listener closes and open
//! requests get `DRAIN` to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use log::warn;
use tokio::net::TcpListener;

/// Time open requests get after SIGTERM.
const DRAIN: Duration = Duration::from_secs(30);

/// How long clients get, and how many may be connected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// To send a request's headers, from the connection or the previous response.
    pub(crate) header_timeout: Duration,
    /// To receive the body and answer.
    pub(crate) request_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// The HTTP/1 connection settings of every connection.
pub(crate) fn http1(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    http
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let max_connections = limits.max_connections;
    let http = http1(&limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, for instance: wait, do not spin.
                        warn!("accepting a connection failed ({e})");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    warn!("{max_connections} connections open: closing a new one");
                    continue;
                };
                let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client that breaks off mid-request is its own problem.
                    let _ = conn.await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        warn!("requests still open after {DRAIN:?}: stopping anyway");
    }
    Ok(())
}
