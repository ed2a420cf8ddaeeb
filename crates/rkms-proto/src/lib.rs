//! Sans-I/O core of the KMS protocol: DCE/RPC PDUs, NDR stubs, KMS V4/V5/V6 messages, their
//! cryptography and ePIDs, as pure functions and state machines over byte slices.
//!
//! Nothing here touches sockets, clocks or global randomness: callers pass in the bytes they
//! read, the current time and a random number generator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod epid;
pub mod kms;
pub mod rpc;
pub mod wire;
