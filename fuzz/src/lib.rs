//! Shared fixtures of the fuzz targets: a fixed KMS host, a cheap deterministic RNG, the RPC
//! configuration and the Appendix A requests whose responses the client-side target verifies.

use rkms_proto::kms::{ClientRequest, DecodedRequest, HResult, HostAnswer, KmsHost};
use rkms_proto::rpc::client::{alter_context_pdu, bind_pdu, BindOffer};
use rkms_proto::rpc::{Header, RpcConfig};

/// ePID vlmcsd answers with for Windows (Appendix A).
pub const EPID: &str = "03612-00206-556-123727-03-1033-17763.0000-2972018";

/// Largest PDU the server side accepts (what the host uses by default).
pub const MAX_PDU: usize = 5840;

/// A host that answers every request the same way, except that it refuses one marker count
/// so that the refusal path is exercised too.
pub struct FixedHost;

impl KmsHost for FixedHost {
    fn answer(&mut self, request: &DecodedRequest) -> Result<HostAnswer, HResult> {
        if request.base.required_client_count == 999 {
            return Err(HResult::KMS_ID_MISMATCH);
        }
        Ok(HostAnswer {
            epid: EPID.into(),
            hwid: [0x3a, 0x1c, 0x04, 0x96, 0x00, 0xb6, 0x00, 0x76],
            current_count: 50,
            activation_interval: 120,
            renewal_interval: 10080,
        })
    }
}

/// A deterministic xorshift RNG (fuzzing needs reproducible runs, not secrecy).
pub struct CheapRng(pub u64);

impl Default for CheapRng {
    fn default() -> Self {
        CheapRng(0x9E37_79B9_7F4A_7C15)
    }
}

impl rand_core::RngCore for CheapRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Server configuration; `ndr64` and `btfn` as chosen by the input.
pub fn rpc_config(ndr64: bool, btfn: bool) -> RpcConfig {
    RpcConfig {
        ndr64,
        btfn,
        max_call_size: 16 * 1024,
        local_port: 1688,
        assoc_group: 0x05a9_7e71,
    }
}

/// A valid bind (NDR32, NDR64, BTFN offered) followed by an alter_context for NDR32.
pub fn bind_prefix() -> Vec<Vec<u8>> {
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: true,
    };
    vec![bind_pdu(2, offer), alter_context_pdu(2, true)]
}

/// Checks what the server sends: one complete, self-consistent PDU.
pub fn check_reply(reply: &[u8]) {
    let h = Header::parse(reply).expect("reply has a header");
    assert_eq!(h.frag_length as usize, reply.len(), "reply frag_length");
    assert_eq!(
        rkms_proto::rpc::complete_pdu_len(reply, 65535),
        Ok(Some(reply.len())),
        "reply frames as one PDU"
    );
    assert!(h.is_v5_le(), "reply is RPC 5.0 little-endian");
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim()).expect("appendix file is hex")
}

/// The Appendix A V4, V5 and V6 requests, as the client state that verifies responses.
pub fn appendix_requests() -> [ClientRequest; 3] {
    [
        include_str!("../../testdata/appendix-a/a2-v4-request.hex"),
        include_str!("../../testdata/appendix-a/a3-v5-request.hex"),
        include_str!("../../testdata/appendix-a/a4-v6-request.hex"),
    ]
    .map(|t| ClientRequest::from_bytes(&unhex(t)).expect("appendix request decodes"))
}
