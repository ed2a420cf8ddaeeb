//! The client's checks on arbitrary server bytes: `ClientRequest::verify_response` for the
//! Appendix A V4/V5/V6 requests (raw, and with the input as a plaintext that is encrypted
//! first), and `rpc::client::check_response` / `check_bind_ack` on the input as a PDU.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rkms_proto::crypto::{cbc_encrypt_in_place, pkcs7_pad, v5_cipher, v6_cipher, BlockCipher};
use rkms_proto::kms::ClientRequest;
use rkms_proto::rpc::client::{check_bind_ack, check_response, Bound, BTFN_OFFER};
use rkms_proto::rpc::{TransferSyntax, NDR32_SYNTAX, NDR64_SYNTAX};
use rkms_proto_fuzz::appendix_requests;

fn requests() -> &'static [ClientRequest; 3] {
    static REQUESTS: OnceLock<[ClientRequest; 3]> = OnceLock::new();
    REQUESTS.get_or_init(appendix_requests)
}

fn verify_all(resp: &[u8]) {
    for rq in requests() {
        let _ = rq.verify_response(resp);
    }
}

fuzz_target!(|data: &[u8]| {
    // KMS layer, raw.
    verify_all(data);

    // KMS layer, with the input as the plaintext of a V5 and a V6 response.
    let v5 = &requests()[1];
    let v6 = &requests()[2];
    let ciphers: [(&ClientRequest, &dyn BlockCipher, u8); 2] =
        [(v5, v5_cipher(), 5), (v6, v6_cipher(), 6)];
    for (rq, cipher, major) in ciphers {
        let mut plain = data.to_vec();
        pkcs7_pad(&mut plain);
        cbc_encrypt_in_place(cipher, &[0; 16], &mut plain);
        let mut resp = vec![0, 0, major, 0];
        resp.extend_from_slice(&plain);
        let _ = rq.verify_response(&resp);
    }

    // RPC layer: the input as it is, and with its frag_length made to match its size (the
    // first check a reply must pass, which blind mutation rarely satisfies).
    check_pdu(data);
    if (10..=usize::from(u16::MAX)).contains(&data.len()) {
        let mut fixed = data.to_vec();
        fixed[8..10].copy_from_slice(&(data.len() as u16).to_le_bytes());
        check_pdu(&fixed);
    }
});

fn check_pdu(data: &[u8]) {
    let own_call_id = data
        .get(12..16)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(2);
    let ctx = data
        .get(20..22)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    for call_id in [own_call_id, 2] {
        for syntax in [TransferSyntax::Ndr32, TransferSyntax::Ndr64] {
            for context in [ctx, 0, 1] {
                if let Ok(stub) = check_response(data, call_id, context, syntax) {
                    if let Ok(payload) = stub.result {
                        verify_all(&payload);
                    }
                }
            }
        }
        let offers: [&[_]; 3] = [
            &[NDR32_SYNTAX, NDR64_SYNTAX, BTFN_OFFER],
            &[NDR32_SYNTAX, BTFN_OFFER],
            &[NDR32_SYNTAX],
        ];
        for offered in offers {
            for alter in [false, true] {
                let mut bound = Bound::default();
                let _ = check_bind_ack(data, call_id, offered, true, alter, &mut bound);
            }
        }
    }
}
