//! The web side of `rkms serve`: dashboard pages, JSON API (`/api/v1/`), Prometheus metrics
//! (`/metrics`) and health probes (`/livez`, `/readyz`), served read-only from the same process
//! on their own listener, reading the same store and catalog as the CLI.
//!
//! `rkms serve` builds a [`WebState`], binds with [`bind`], checks [`needs_token`], then runs
//! [`serve`] and [`self_check_loop`] next to the KMS server.
//!
//! All of it needs the `web` feature, except the options' parsers and defaults: without it,
//! `--web` is off by default and an address given to it is refused by name, and so are the
//! other `--web-*` options (see [`crate::features`]).

mod hosts;

pub use hosts::{client_addresses, parse_web_host, VerifiedHost};

/// The items of the dashboard itself, built with the `web` feature (the one place it is gated).
macro_rules! web_only {
    ($($item:item)*) => { $( #[cfg(feature = "web")] $item )* };
}

web_only! {
    mod api;
    mod assets;
    mod auth;
    mod blocking;
    mod chart;
    mod error;
    mod fleet;
    mod format;
    mod guard;
    mod health;
    mod layout;
    mod listener;
    mod pages;
    mod probes;
    mod products;
    mod query;
    mod selfcheck;
    mod state;
    mod stats;
    mod views;

    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::middleware;
    use axum::routing::get;
    use axum::Router;
    use tokio::net::TcpListener;

    pub use auth::{access_notice, check_token, needs_token};
    pub use fleet::FleetCache;
    pub use health::{Check, Health, Readiness};
    pub use listener::{connection_budget, LocalAddr, WebLimits};
    pub use selfcheck::{
        loopback_target, self_check, self_check_loop, SELF_CHECK_CMID, SELF_CHECK_INTERVAL,
    };
    pub use state::WebState;

    /// Binds the dashboard's listener. The error is the sentence to log: the dashboard is off,
    /// why, and what to do (the KMS host keeps running without it).
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
        TcpListener::bind(addr).await.map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another program uses this port; choose another with --web ADDR:PORT)"
            } else {
                ""
            };
            format!(
                "the dashboard is off: cannot listen on {addr}: {e}{hint}; activations continue \
                 (--web off silences this)"
            )
        })
    }

    /// How the web server is reached and what bounds its connections (beyond [`WebState`]).
    #[derive(Debug, Clone, Default)]
    pub struct WebOptions {
        /// Connection limits and timeouts.
        pub limits: WebLimits,
        /// The `--web-host` names the dashboard is also served under without a token.
        pub hosts: Vec<String>,
    }

    /// Every route of the web server.
    fn router(state: Arc<WebState>, hosts: Vec<String>) -> Router {
        let host_policy = Arc::new(hosts::HostPolicy {
            token: state.web_token.is_some(),
            names: hosts,
        });
        let api = Router::new()
            .route("/clients", get(api::clients))
            .route("/clients/{cmid}", get(api::client))
            .route("/activations", get(api::activations))
            .route("/products", get(api::products))
            .route("/stats", get(api::stats))
        .route("/fleet", get(api::fleet))
            .route("/config", get(api::config))
            .route("/openapi.json", get(api::openapi))
            .fallback(api::not_found);
        Router::new()
            .route("/", get(pages::overview))
            .route("/clients", get(pages::clients))
            .route("/clients/{cmid}", get(pages::client))
            .route("/products", get(pages::products))
            .route("/settings", get(pages::settings))
            .route("/assets/{name}", get(assets::asset))
            .route("/metrics", get(probes::metrics))
            .route("/livez", get(probes::livez))
            .route("/readyz", get(probes::readyz))
            .nest("/api/v1", api)
            .route("/api/{*rest}", get(api::not_found))
            .fallback(pages::not_found)
            .layer(middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ))
            .layer(middleware::from_fn(guard::read_only))
            .layer(middleware::from_fn_with_state(
                host_policy,
                hosts::check_host,
            ))
            .layer(middleware::from_fn(guard::security_headers))
            .with_state(state)
    }

    /// Serves the dashboard, API, metrics and probes on `listener` until `shutdown` resolves,
    /// with the default [`WebOptions`].
    pub async fn serve(
        listener: TcpListener,
        state: Arc<WebState>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serve_with(listener, state, WebOptions::default(), shutdown).await
    }

    /// Serves the dashboard, API, metrics and probes on `listener` with `options` until
    /// `shutdown` resolves.
    pub async fn serve_with(
        listener: TcpListener,
        state: Arc<WebState>,
        options: WebOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router(state, options.hosts);
        listener::serve(listener, app, options.limits, shutdown).await
    }
}

/// Default of `--web-max-connections`.
pub const DEFAULT_WEB_MAX_CONNECTIONS: u64 = 128;

/// Default of `--web-header-timeout`, in seconds.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;

/// Where the dashboard listens unless `--web` says otherwise (off in a build without the `web`
/// feature).
pub const DEFAULT_WEB_LISTEN: &str = if cfg!(feature = "web") {
    "127.0.0.1:8080"
} else {
    "off"
};

/// The `--web` option: an address to serve the dashboard on, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebListen {
    /// `--web off`: no web server.
    Off,
    /// `--web ADDR:PORT`.
    On(std::net::SocketAddr),
}

/// Parses `--web`: `off` (also `none`, `no`, `false`) or `ADDR:PORT` (IPv6 in brackets).
pub fn parse_web_listen(text: &str) -> Result<WebListen, String> {
    if ["off", "none", "no", "false"]
        .iter()
        .any(|w| text.trim().eq_ignore_ascii_case(w))
    {
        return Ok(WebListen::Off);
    }
    let addr = text.trim().parse::<std::net::SocketAddr>().map_err(|_| {
        format!("'{text}': expected ADDR:PORT (e.g. 127.0.0.1:8080, [::1]:8080) or off")
    })?;
    if !cfg!(feature = "web") {
        return Err(crate::features::unbuilt(
            "web",
            "serve the dashboard, API and /metrics (--web off is the default here)",
        ));
    }
    Ok(WebListen::On(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "web")]
    #[test]
    fn web_option() {
        assert_eq!(parse_web_listen("off"), Ok(WebListen::Off));
        assert_eq!(parse_web_listen("OFF"), Ok(WebListen::Off));
        assert_eq!(
            parse_web_listen(DEFAULT_WEB_LISTEN),
            Ok(WebListen::On("127.0.0.1:8080".parse().unwrap()))
        );
        assert_eq!(
            parse_web_listen("[::]:80"),
            Ok(WebListen::On("[::]:80".parse().unwrap()))
        );
        assert!(parse_web_listen("localhost").is_err());
    }

    /// Without the `web` feature the dashboard is off by default and an address is refused,
    /// naming the feature.
    #[cfg(not(feature = "web"))]
    #[test]
    fn web_option_without_the_feature() {
        assert_eq!(parse_web_listen(DEFAULT_WEB_LISTEN), Ok(WebListen::Off));
        assert_eq!(parse_web_listen("none"), Ok(WebListen::Off));
        let e = parse_web_listen("127.0.0.1:8080").unwrap_err();
        assert!(
            e.starts_with("this rkms was built without the `web` feature"),
            "{e}"
        );
        // A malformed value is still told as such.
        assert!(parse_web_listen("localhost")
            .unwrap_err()
            .contains("expected ADDR:PORT"));
    }
}
