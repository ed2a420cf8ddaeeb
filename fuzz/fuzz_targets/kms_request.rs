//! KMS request payloads through `decode_request` and `handle_request`.
//!
//! The input is used twice: as a raw payload, and (from 236 bytes on) as a plaintext base
//! request wrapped in a valid V4/V5/V6 envelope so the checks after decryption are reached.
//! Every response the server produces must verify with the client's own checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkms_proto::crypto::{cbc_encrypt_in_place, v4_mac, v5_cipher, v6_cipher, BlockCipher};
use rkms_proto::kms::{
    decode_request, handle_request, ClientRequest, RefusalReason, BASE_REQUEST_LEN,
};
use rkms_proto_fuzz::{CheapRng, FixedHost, EPID};

fn check(payload: &[u8]) {
    let decoded = decode_request(payload);
    let handled = handle_request(payload, &mut FixedHost, &mut CheapRng::default());
    match (&decoded, &handled) {
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Err(a), Ok(_)) => panic!("handle_request answered a request decode refused: {a:?}"),
        (Ok(rq), Err(r)) => {
            assert_eq!(r.reason, RefusalReason::Policy, "{r:?}");
            assert_eq!(rq.base.required_client_count, 999);
        }
        (Ok(rq), Ok(resp)) => {
            let client = ClientRequest::from_bytes(payload).expect("decoded request rebuilds");
            let v = client
                .verify_response(resp)
                .expect("the server's response verifies");
            assert_eq!(v.base.epid, EPID);
            assert_eq!(v.base.cmid, rq.base.cmid);
            assert_eq!(v.base.current_count, 50);
            assert_eq!(v.hwid.is_some(), rq.version.major == 6);
            assert!(
                v.warnings.iter().all(|w| w.contains("IV equals")),
                "{:?}",
                v.warnings
            );
        }
    }
}

/// Wraps a plaintext base request in the envelope its first four bytes name (V6 otherwise).
fn wrap(base: &[u8], rest: &[u8]) -> Vec<u8> {
    let major = u16::from_le_bytes([base[2], base[3]]);
    if major == 4 {
        let mut out = base.to_vec();
        out.extend_from_slice(&v4_mac(base));
        return out;
    }
    let cipher: &dyn BlockCipher = if major == 5 { v5_cipher() } else { v6_cipher() };
    let mut iv = [0u8; 16];
    for (d, s) in iv.iter_mut().zip(rest) {
        *d = *s;
    }
    let mut body = base.to_vec();
    body.extend_from_slice(&[4, 4, 4, 4]);
    cbc_encrypt_in_place(cipher, &iv, &mut body);
    let mut out = vec![0, 0, if major == 5 { 5 } else { 6 }, 0];
    out.extend_from_slice(&iv);
    out.extend_from_slice(&body);
    out
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= BASE_REQUEST_LEN {
        let (base, rest) = data.split_at(BASE_REQUEST_LEN);
        check(&wrap(base, rest));
    }
});
