//! Stop requests (Ctrl-C, SIGTERM; on Windows Ctrl-C, Ctrl-Break, console close and system
//! shutdown; the Windows service manager's stop through [`request_stop`]): handlers installed
//! up front, so a request that arrives while the host is still starting is not lost.

use std::sync::LazyLock;

use tokio::sync::watch;
use tracing::info;

/// Stop requests made from inside the process (the Windows service manager's stop control).
static STOP: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// Asks the running host to stop, like a stop signal (callable from any thread).
pub fn request_stop() {
    STOP.send_replace(true);
}

/// Installed stop-signal handlers.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
    #[cfg(windows)]
    ctrl_break: Option<tokio::signal::windows::CtrlBreak>,
    #[cfg(windows)]
    ctrl_close: Option<tokio::signal::windows::CtrlClose>,
    #[cfg(windows)]
    ctrl_shutdown: Option<tokio::signal::windows::CtrlShutdown>,
    requested: watch::Receiver<bool>,
}

/// Waits for the next event of an optional handler (forever without one).
#[cfg(windows)]
macro_rules! next_or_pending {
    ($handler:expr) => {
        async {
            match $handler {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    };
}

impl Signals {
    /// Installs the handlers now (inside a tokio runtime).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
                requested: STOP.subscribe(),
            }
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
            // Not logoff: a service keeps running when a user logs off.
            Signals {
                ctrl_c: ctrl_c().ok(),
                ctrl_break: ctrl_break().ok(),
                ctrl_close: ctrl_close().ok(),
                ctrl_shutdown: ctrl_shutdown().ok(),
                requested: STOP.subscribe(),
            }
        }
        #[cfg(not(any(unix, windows)))]
        Signals {
            requested: STOP.subscribe(),
        }
    }

    /// Resolves on the first stop request: SIGINT or SIGTERM; on Windows Ctrl-C, Ctrl-Break,
    /// console close or system shutdown; [`request_stop`] everywhere.
    pub async fn wait(mut self) {
        let mut requested = self.requested.clone();
        tokio::select! {
            _ = requested.wait_for(|s| *s) => info!("stop requested by the service manager"),
            _ = self.wait_os() => {}
        }
    }

    async fn wait_os(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match &mut self.term {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match &mut self.int {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => info!("received SIGINT"),
                _ = term => info!("received SIGTERM"),
            }
        }
        #[cfg(windows)]
        {
            tokio::select! {
                _ = next_or_pending!(&mut self.ctrl_c) => info!("received Ctrl-C"),
                _ = next_or_pending!(&mut self.ctrl_break) => info!("received Ctrl-Break"),
                _ = next_or_pending!(&mut self.ctrl_close) => info!("console closed"),
                _ = next_or_pending!(&mut self.ctrl_shutdown) => info!("system shutting down"),
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = tokio::signal::ctrl_c().await;
            info!("received Ctrl-C");
        }
    }
}

/// Resolves on SIGINT or SIGTERM (handlers installed when first polled).
pub async fn signal() {
    Signals::install().wait().await
}
