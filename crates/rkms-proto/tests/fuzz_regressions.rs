//! Inputs found by fuzzing (fuzz/) that once crashed a parser, minimised, as hex literals.

mod common;

use rkms_proto::rpc::client::{check_bind_ack, check_response, Bound, RpcError};
use rkms_proto::rpc::{TransferSyntax, NDR32_SYNTAX};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// `rpc::client::check_response` on a 23-byte response PDU (header, alloc_hint, context id
/// and cancel count, but no byte 23): it slices `pdu[24..]` after reading only 23 bytes and
/// panics with "range start index 24 out of range for slice of length 23"
/// (crates/rkms-proto/src/rpc/client.rs, `check_response`). Found by `client_verify`.
#[test]
fn check_response_23_byte_pdu() {
    let pdu = unhex(
        "05 00 02 03 10 00 00 00 17 00 00 00 02 00 00 00  \
         00 00 00 00 00 00 00",
    );
    assert_eq!(pdu.len(), 23);
    for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
        let result = check_response(&pdu, 2, 0, syntax);
        assert!(
            matches!(result, Err(RpcError::Protocol(_))),
            "{syntax}: {result:?}"
        );
    }
}

/// The input `client_verify` found (artifacts/client_verify/crash-cb9b9243…, 23 bytes, with
/// its frag_length fixed up to 23 by the harness): flags 0x07, call_id 0, context 0xff25.
#[test]
fn check_response_23_byte_pdu_as_found() {
    let pdu = unhex("05000207 10000000 17000000 00000000 e4000000 25ff00");
    for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
        assert!(check_response(&pdu, 0, 0xff25, syntax).is_err());
    }
}

/// Every other truncation of the Appendix A.5 responses (frag_length fixed up) is an error,
/// not a panic; the 23-byte case is the one above.
#[test]
fn check_response_truncations_other_than_23() {
    for name in [
        "a5-response-ndr32",
        "a5-response-ndr64",
        "a5-error-ndr32",
        "a5-bind-ack-ndr64",
    ] {
        let full = common::appendix(name);
        for len in (0..full.len()).filter(|&len| len != 23) {
            let mut pdu = full[..len].to_vec();
            if len >= 10 {
                pdu[8..10].copy_from_slice(&(len as u16).to_le_bytes());
            }
            for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
                assert!(check_response(&pdu, 2, 0, syntax).is_err());
            }
            let mut bound = Bound::default();
            let _ = check_bind_ack(&pdu, 2, &[NDR32_SYNTAX], false, false, &mut bound);
        }
    }
}
