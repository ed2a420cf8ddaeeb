//! PROTOCOL.md Appendix A.1–A.4: KMS requests and responses reproduced byte for byte.

mod common;

use common::{appendix, ScriptedRng};
use rkms_proto::kms::{
    build_request, decode_request, handle_request, BaseRequest, ClientRequest, DecodedRequest,
    HResult, HostAnswer, KmsHost, Version,
};
use uuid::Uuid;

const VLMCSD_EPID: &str = "03612-00206-556-123727-03-1033-17763.0000-2972018";

struct FixedHost(Vec<DecodedRequest>);

impl KmsHost for FixedHost {
    fn answer(&mut self, request: &DecodedRequest) -> Result<HostAnswer, HResult> {
        self.0.push(request.clone());
        Ok(HostAnswer {
            epid: VLMCSD_EPID.into(),
            hwid: [0x3a, 0x1c, 0x04, 0x96, 0x00, 0xb6, 0x00, 0x76],
            current_count: 50,
            activation_interval: 120,
            renewal_interval: 10080,
        })
    }
}

fn a1_request(version: Version) -> BaseRequest {
    BaseRequest {
        version,
        is_client_vm: 0,
        license_status: 2,
        grace_time: 43200,
        application_id: Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap(),
        sku_id: Uuid::parse_str("2de67392-b7a7-462a-b1ca-108dd189f588").unwrap(),
        kms_id: Uuid::parse_str("58e2134f-8e11-4d17-9cb2-91069c151148").unwrap(),
        cmid: Uuid::parse_str("a4b2c1d0-1234-4abc-8def-0123456789ab").unwrap(),
        required_client_count: 25,
        request_time: 0x01DB_5F4A_3C2E_1000,
        previous_cmid: Uuid::nil(),
        workstation: BaseRequest::workstation_field("kms-test.example.org"),
    }
}

#[test]
fn a1_base_request_encodes_and_decodes() {
    let bytes = appendix("a1-base-request-v6");
    assert_eq!(a1_request(Version::V6).encode(), bytes);
    let decoded = BaseRequest::decode(&bytes).unwrap();
    assert_eq!(decoded, a1_request(Version::V6));
    assert_eq!(decoded.workstation_name().unwrap(), "kms-test.example.org");
}

fn check_version(version: Version, prefix: &str, rng_script: &[&[u8]]) {
    let request = appendix(&format!("{prefix}-request"));
    let response = appendix(&format!("{prefix}-response"));

    // Client side: the same request from the same IV.
    let iv: Vec<u8> = if version.major == 4 {
        vec![]
    } else {
        request[4..20].to_vec()
    };
    let built = build_request(version, &a1_request(version), &mut ScriptedRng::new(&[&iv]));
    assert_eq!(built.bytes, request, "client builds the appendix request");

    // Server side: decoding yields the A.1 fields, the response is reproduced exactly.
    let decoded = decode_request(&request).unwrap();
    assert_eq!(decoded.base, a1_request(version));
    let mut host = FixedHost(Vec::new());
    let out = handle_request(&request, &mut host, &mut ScriptedRng::new(rng_script)).unwrap();
    assert_eq!(out, response, "server reproduces the appendix response");
    assert_eq!(host.0.len(), 1);

    // Verification of the appendix response.
    let verified = built.verify_response(&response).unwrap();
    assert_eq!(verified.base.epid, VLMCSD_EPID);
    assert_eq!(verified.base.current_count, 50);
    assert_eq!(verified.base.activation_interval, 120);
    assert_eq!(verified.base.renewal_interval, 10080);
    assert!(verified.warnings.is_empty(), "{:?}", verified.warnings);
    let from_capture = ClientRequest::from_bytes(&request).unwrap();
    assert_eq!(from_capture.verify_response(&response).unwrap(), verified);
}

#[test]
fn a2_v4() {
    check_version(Version::V4, "a2-v4", &[]);
}

#[test]
fn a3_v5() {
    check_version(Version::V5, "a3-v5", &[&[0x11; 16]]);
    let d = decode_request(&appendix("a3-v5-request"))
        .unwrap()
        .decrypted_iv
        .unwrap();
    assert_eq!(hex::encode(d), "86bf207b6970ef43830e988ff1e6f329");
}

#[test]
fn a4_v6() {
    check_version(Version::V6, "a4-v6", &[&[0x22; 16], &[0x33; 16]]);
    let rq = decode_request(&appendix("a4-v6-request")).unwrap();
    assert_eq!(
        hex::encode(rq.decrypted_iv.unwrap()),
        "6f2920a0542324d7f0d66a273a6e2bed"
    );
    let resp = ClientRequest::from_bytes(&appendix("a4-v6-request"))
        .unwrap()
        .verify_response(&appendix("a4-v6-response"))
        .unwrap();
    assert_eq!(
        resp.hwid,
        Some([0x3a, 0x1c, 0x04, 0x96, 0x00, 0xb6, 0x00, 0x76])
    );
    assert_eq!(
        hex::encode(&appendix("a4-v6-response")[4..20]),
        "2960284b9d80b939810d427ea689a24f"
    );
}

#[test]
fn tampered_responses_fail_verification() {
    for prefix in ["a2-v4", "a3-v5", "a4-v6"] {
        let req = ClientRequest::from_bytes(&appendix(&format!("{prefix}-request"))).unwrap();
        let good = appendix(&format!("{prefix}-response"));
        // V5 has no MAC over the base response (only the hash of the random value), so only
        // its trailer and envelope are checked there; V4 and V6 protect every byte.
        let positions: Vec<usize> = if prefix == "a3-v5" {
            vec![2, 10, good.len() - 40, good.len() - 1]
        } else {
            vec![2, 8, 60, good.len() - 20, good.len() - 1]
        };
        for pos in positions {
            let mut bad = good.clone();
            bad[pos] ^= 0x01;
            assert!(
                req.verify_response(&bad).is_err(),
                "{prefix}: flip at {pos} must be detected"
            );
        }
        assert!(req.verify_response(&good[..good.len() - 16]).is_err());
    }
}

#[test]
fn v6_hmac_accepts_neighbouring_slot_only() {
    // A response built for a request time one slot later still verifies (±1 slot rule)...
    let mut rng = ScriptedRng::new(&[&[9; 16]]);
    let built = build_request(Version::V6, &a1_request(Version::V6), &mut rng);
    let decoded = decode_request(&built.bytes).unwrap();
    let answer = FixedHost(vec![]).answer(&decoded).unwrap();
    let resp = rkms_proto::kms::handle_request(
        &built.bytes,
        &mut FixedHost(vec![]),
        &mut ScriptedRng::new(&[]),
    )
    .unwrap();
    assert!(built.verify_response(&resp).is_ok());
    assert_eq!(answer.current_count, 50);
}

#[test]
fn bad_requests_are_refused_with_invalid_data() {
    use rkms_proto::kms::RefusalReason as R;
    let v4 = appendix("a2-v4-request");
    let v6 = appendix("a4-v6-request");
    let reason = |p: &[u8]| decode_request(p).unwrap_err();

    let mut bad_mac = v4.clone();
    bad_mac[251] ^= 1;
    assert_eq!(reason(&bad_mac).reason, R::BadMac);
    let mut bad_pad = v6.clone();
    bad_pad[259] ^= 1;
    assert_eq!(reason(&bad_pad).reason, R::BadPadding);
    assert!(matches!(
        reason(&v6[..259]).reason,
        R::TooShort {
            len: 259,
            need: 260
        }
    ));
    assert!(matches!(reason(&v6[..3]).reason, R::TooShort { .. }));
    let mut v7 = v6.clone();
    v7[2] = 7;
    assert_eq!(reason(&v7).reason, R::UnsupportedVersion(Version::new(7)));
    let mut v61 = v6.clone();
    v61[0] = 1;
    assert_eq!(
        reason(&v61).reason,
        R::UnsupportedVersion(Version { major: 6, minor: 1 })
    );
    for p in [&bad_mac, &bad_pad, &v7, &v61] {
        assert_eq!(reason(p).hresult, HResult::INVALID_DATA);
    }
    // Outer V5 around a V6-encrypted body: padding does not decrypt.
    let mut cross = v6.clone();
    cross[2] = 5;
    assert_eq!(reason(&cross).reason, R::BadPadding);
    // Required count above 1000.
    let mut rq = a1_request(Version::V4);
    rq.required_client_count = 1001;
    let built = build_request(Version::V4, &rq, &mut ScriptedRng::new(&[]));
    assert_eq!(reason(&built.bytes).reason, R::RequiredCountTooHigh(1001));
    // Extra trailing bytes are accepted (some RPC stacks append bytes).
    let mut longer = v6.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(decode_request(&longer).is_ok());
}
