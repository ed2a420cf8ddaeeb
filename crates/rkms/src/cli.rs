//! The command line: subcommands and options with their help texts.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::addr::parse_listen;
use crate::interval::parse_minutes;

/// rkms: a KMS host emulator and test client.
#[derive(Debug, Parser)]
#[command(name = "rkms", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). Logs go to standard error.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (overrides -v).
    #[arg(long, global = true, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the KMS host: answer activation requests until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Send activation requests to a KMS host and verify its answers.
    Activate(ActivateArgs),
}

/// Options of `rkms serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, ADDR:PORT (IPv6 in brackets, e.g. [::]:1688). Repeatable.
    /// Default: [::]:1688 dual-stack, or 0.0.0.0:1688 where IPv6 is unavailable.
    #[arg(long = "listen", value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub listen: Vec<SocketAddr>,
    /// ePID sent for every product (default: one built-in ePID per KMS host key group).
    #[arg(long, value_name = "EPID")]
    pub epid: Option<String>,
    /// Hardware ID sent in V6 responses: 16 hex digits, or "random" for a new one at each start.
    #[arg(long, value_name = "HEX16|random", default_value = "3A1C049600B60076")]
    pub hwid: String,
    /// LCID (language) written into the built-in ePIDs, e.g. 1033 for en-US.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=0xFFFF))]
    pub lcid: Option<u32>,
    /// Client count reported (py-kms rules: below a request's need reports need+1, capped at 2x need).
    /// Default: twice the count each request needs, like a fully charged host.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub client_count: Option<u32>,
    /// Minutes a client waits before retrying a failed activation (or e.g. 2h, 90m).
    #[arg(long, value_name = "MIN", default_value = "120", value_parser = parse_minutes)]
    pub activation_interval: u32,
    /// Minutes between renewals (or e.g. 7d, 168h).
    #[arg(long, value_name = "MIN", default_value = "10080", value_parser = parse_minutes)]
    pub renewal_interval: u32,
    /// Do not offer NDR64 (answer like a pre-Windows 8 host).
    #[arg(long)]
    pub no_ndr64: bool,
    /// Do not answer bind-time feature negotiation.
    #[arg(long)]
    pub no_btfn: bool,
    /// Close connections idle for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub idle_timeout: u64,
}

/// Options of `rkms activate`.
#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// KMS host: HOST, HOST:PORT, or [IPv6]:PORT (port 1688 by default).
    #[arg(value_name = "HOST[:PORT]")]
    pub host: String,
    /// KMS protocol version.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(4..=6))]
    pub protocol: u16,
    /// Product: a catalog name (case-insensitive, exact or unique prefix) or a SKU GUID.
    #[arg(long, default_value = crate::client::DEFAULT_PRODUCT)]
    pub product: String,
    /// Application ID to send instead of the product's.
    #[arg(long, value_name = "GUID")]
    pub app_id: Option<Uuid>,
    /// KMS counted ID to send instead of the product's.
    #[arg(long, value_name = "GUID")]
    pub kms_id: Option<Uuid>,
    /// SKU (activation) ID to send instead of the product's.
    #[arg(long, value_name = "GUID")]
    pub sku_id: Option<Uuid>,
    /// Client machine ID (default: a new random one for every request).
    #[arg(long, value_name = "GUID")]
    pub cmid: Option<Uuid>,
    /// Workstation name sent (at most 63 characters are sent).
    #[arg(long, value_name = "WORKSTATION", default_value = "rkms-client")]
    pub name: String,
    /// Activation threshold to request (default: the product's).
    #[arg(long, value_name = "N")]
    pub required_count: Option<u32>,
    /// Number of requests to send.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Open a new connection for every request (default: all on one connection).
    #[arg(long)]
    pub new_connection: bool,
    /// Do not offer NDR64 in the bind.
    #[arg(long)]
    pub no_ndr64: bool,
    /// Do not offer bind-time feature negotiation.
    #[arg(long)]
    pub no_btfn: bool,
    /// Do not set the multiplex flag in the bind.
    #[arg(long)]
    pub no_multiplex: bool,
    /// Seconds to wait for a connection or a reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Print one JSON object per response (for scripts).
    #[arg(long)]
    pub json: bool,
}
