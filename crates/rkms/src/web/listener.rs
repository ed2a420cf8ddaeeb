//! The web listener's own accept loop (instead of `axum::serve`), so that what web clients
//! can hold is bounded whatever they do:
//!
//! - at most [`WebLimits::max_connections`] connections at once; one more is answered
//!   `503` and closed at once (it never waits holding a file descriptor);
//! - a request head must arrive within [`WebLimits::header_timeout`], counted from the
//!   moment the server waits for it: a client that connects and sends nothing, sends its head
//!   slowly, or keeps an idle kept-alive connection open is closed when it runs out;
//! - a connection on which no byte moves either way for [`WebLimits::stall_timeout`] (a
//!   client that stops reading its response) is closed;
//! - request heads larger than [`MAX_HEAD_BYTES`] are refused.
//!
//! [`connection_budget`] keeps the web side to a share of the open file limit so that the KMS
//! listener keeps accepting whatever web clients do.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

/// How long a connection may go without a byte moving either way (a client that stops reading
/// its response).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Open files kept out of the web budget for everything else the process holds (standard
/// streams, listeners, the database, log files, the runtime's own).
pub const FD_RESERVE: u64 = 32;

/// How long open connections get to finish their request at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What bounds the web server's connections (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a request head has to arrive, from the moment the server waits for it (also the
    /// longest a kept-alive connection stays idle).
    pub header_timeout: Duration,
    /// Time a connection may go without a byte read or written.
    pub stall_timeout: Duration,
}

impl Default for WebLimits {
    fn default() -> Self {
        WebLimits {
            max_connections: super::DEFAULT_WEB_MAX_CONNECTIONS as usize,
            header_timeout: Duration::from_secs(super::DEFAULT_HEADER_TIMEOUT_SECS),
            stall_timeout: STALL_TIMEOUT,
        }
    }
}

/// The web connections an open file limit of `fd_limit` leaves room for: a quarter of what is
/// left after [`FD_RESERVE`], so that at least three quarters stay for KMS clients (at least 1;
/// `None`: no known limit).
pub fn connection_budget(fd_limit: Option<u64>) -> Option<usize> {
    let limit = fd_limit?;
    let budget = (limit.saturating_sub(FD_RESERVE) / 4).max(1);
    Some(usize::try_from(budget).unwrap_or(usize::MAX))
}

/// The local address a request came in on (a request extension set by the listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// Answer to a connection beyond the limit.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 58\r\nRetry-After: 5\r\nConnection: close\r\n\r\n\
too many open dashboard connections; try again in a while\n";

/// Rate limit for a log line repeated by many connections: at most one a minute.
struct Every {
    last: Option<Instant>,
    suppressed: u64,
}

impl Every {
    /// `Some(n)` when the line is due (n: the occurrences not logged since the last one).
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; open connections
/// then get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: WebLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let (close_tx, close_rx) = watch::channel(false);
    let mut busy_log = Every {
        last: None,
        suppressed: 0,
    };
    let mut error_log = Every {
        last: None,
        suppressed: 0,
    };
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it was accepted): wait
                // a little instead of spinning; the KMS side is not affected by this loop.
                if let Some(more) = error_log.due() {
                    warn!(
                        not_logged_since_last_notice = more,
                        "dashboard: cannot accept a connection: {e} (noticed at most once a \
                         minute)"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Some(more) = busy_log.due() {
                warn!(
                    limit = max,
                    refused_since_last_notice = more,
                    "dashboard: connection limit reached, refusing new web connections (503); \
                     the KMS port is not affected (noticed at most once a minute)"
                );
            }
            // Read what the request sent so far, so that closing sends the answer and a FIN
            // rather than a reset that could discard it.
            let mut sink = [0u8; 4096];
            let _ = stream.try_read(&mut sink);
            let _ = stream.try_write(BUSY);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let router = router.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            connection(stream, local, router, limits, close_rx).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = close_tx.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
    Ok(())
}

/// Serves one connection until it closes, times out, stalls or the server shuts down.
async fn connection(
    stream: TcpStream,
    local: Option<SocketAddr>,
    router: Router,
    limits: WebLimits,
    mut close_rx: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = router.clone();
        let mut request = request.map(Body::new);
        if let Some(local) = local {
            request.extensions_mut().insert(LocalAddr(local));
        }
        async move { tower_service::Service::call(&mut router, request).await }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!("dashboard connection ended: {e}");
                }
                return;
            }
            changed = close_rx.changed(), if !closing => {
                closing = true;
                if changed.is_err() || *close_rx.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = activity.stalled(limits.stall_timeout) => {
                debug!("dashboard connection closed: nothing read or written for {:?}", limits.stall_timeout);
                return;
            }
        }
    }
}

/// When a connection last moved a byte.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last byte read or written.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `timeout`.
    async fn stalled(&self, timeout: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// A stream that records in [`Activity`] every read or write that moves bytes.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_a_quarter_of_what_the_reserve_leaves() {
        assert_eq!(connection_budget(None), None);
        assert_eq!(connection_budget(Some(256)), Some(56));
        assert_eq!(connection_budget(Some(20_000)), Some(4_992));
        assert_eq!(connection_budget(Some(10)), Some(1));
    }

    #[test]
    fn busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
