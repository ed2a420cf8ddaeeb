//! DCE/RPC connection-oriented layer for KMS (PROTOCOL.md §2, §3): framing, PDUs, NDR stubs,
//! the server's per-connection state machine and the client's side of each exchange.

pub mod client;
mod frame;
pub mod ndr;
mod pdu;
mod server;

pub use frame::{complete_pdu_len, FrameError, HEADER_LEN};
pub use pdu::{
    fault_status, ptype, BindBody, ContextElement, Header, SyntaxId, BTFN_PREFIX, KMS_INTERFACE,
    NDR32_SYNTAX, NDR64_SYNTAX, PFC_FIRST,
};
pub use server::{CloseReason, Event, Output, RpcConfig, ServerConnection, MAX_CONTEXTS};

/// The transfer syntax a context was bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferSyntax {
    /// NDR 2.0 (32-bit).
    Ndr32,
    /// NDR64.
    Ndr64,
}

impl std::fmt::Display for TransferSyntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransferSyntax::Ndr32 => "NDR32",
            TransferSyntax::Ndr64 => "NDR64",
        })
    }
}
