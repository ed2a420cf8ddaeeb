//! Server side of the KMS layer (PROTOCOL.md §6): decode and check a request, ask the host's
//! policy for the answer, and build the V4/V5/V6 response.

use rand_core::RngCore;
use sha2::{Digest, Sha256};

use super::base::{pid_size, BaseRequest, BaseResponse, BaseResponseRef, EpidError};
use super::{response_len, HResult, Version, BASE_REQUEST_LEN, V4_REQUEST_LEN, V5_REQUEST_LEN};
use crate::crypto::{
    cbc_decrypt_in_place, cbc_encrypt_in_place, v4_mac, v5_cipher, v6_cipher, v6_slot_hmac,
    v6_time_slot, xor16, Block16, BlockCipher,
};

/// The largest `RequiredClientCount` a host accepts (§6.1 step 1).
pub const MAX_REQUIRED_CLIENT_COUNT: u32 = 1000;

/// A request decoded and checked by the KMS layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRequest {
    /// The outer version (bytes 0..4 of the payload).
    pub version: Version,
    /// The (decrypted) base request.
    pub base: BaseRequest,
    /// V5/V6: the request IV (bytes 4..20).
    pub iv: Option<Block16>,
    /// V5/V6: the IV decrypted with the version's cipher ("D").
    pub decrypted_iv: Option<Block16>,
}

/// Why a request was refused, with the HRESULT sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status returned in the NDR error stub.
    pub hresult: HResult,
    /// What was wrong.
    pub reason: RefusalReason,
}

/// What was wrong with a refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    /// The payload is shorter than its version requires.
    #[error("KMS payload of {len} bytes is shorter than the {need} its version needs")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes required.
        need: usize,
    },
    /// Not 4.0, 5.0 or 6.0.
    #[error("unsupported KMS protocol version {0}")]
    UnsupportedVersion(Version),
    /// The decrypted base request names another version than the envelope.
    #[error("inner version {inner} differs from outer version {outer}")]
    VersionMismatch {
        /// Envelope version.
        outer: Version,
        /// Base-request version.
        inner: Version,
    },
    /// V4 request MAC does not match.
    #[error("V4 request MAC is wrong")]
    BadMac,
    /// V5/V6 decrypted padding is not `04 04 04 04`.
    #[error("V5/V6 request padding is wrong (bad key or corrupted data)")]
    BadPadding,
    /// `RequiredClientCount` over 1000.
    #[error("required client count {0} is above 1000")]
    RequiredCountTooHigh(u32),
    /// The host's policy refused (it logs its own reason).
    #[error("refused by host policy")]
    Policy,
    /// The host produced an ePID that cannot be sent.
    #[error("host ePID unusable: {0}")]
    BadEpid(EpidError),
}

impl RefusalReason {
    /// A short machine-readable code (for metrics).
    pub fn code(&self) -> &'static str {
        match self {
            RefusalReason::TooShort { .. } => "too_short",
            RefusalReason::UnsupportedVersion(_) => "unsupported_version",
            RefusalReason::VersionMismatch { .. } => "version_mismatch",
            RefusalReason::BadMac => "bad_mac",
            RefusalReason::BadPadding => "bad_padding",
            RefusalReason::RequiredCountTooHigh(_) => "required_count_too_high",
            RefusalReason::Policy => "policy",
            RefusalReason::BadEpid(_) => "bad_epid",
        }
    }
}

impl Refusal {
    fn invalid(reason: RefusalReason) -> Self {
        Refusal {
            hresult: HResult::INVALID_DATA,
            reason,
        }
    }
}

/// What the host's policy answers for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAnswer {
    /// ePID of the CSVLK serving the request's KMS ID.
    pub epid: String,
    /// Host hardware ID (sent in V6 only).
    pub hwid: [u8; 8],
    /// Active client count to report.
    pub current_count: u32,
    /// Activation (retry) interval, minutes.
    pub activation_interval: u32,
    /// Renewal interval, minutes.
    pub renewal_interval: u32,
}

/// The host's policy: counts, ePIDs, whitelisting. Implemented outside the protocol core.
pub trait KmsHost {
    /// Answers a decoded, well-formed request, or refuses it with an HRESULT.
    fn answer(&mut self, request: &DecodedRequest) -> Result<HostAnswer, HResult>;
}

/// Decodes and checks a KMS request payload (version, size, MAC or padding, count bound).
pub fn decode_request(payload: &[u8]) -> Result<DecodedRequest, Refusal> {
    if payload.len() < 4 {
        return Err(Refusal::invalid(RefusalReason::TooShort {
            len: payload.len(),
            need: 4,
        }));
    }
    let version = Version::from_bytes([payload[0], payload[1], payload[2], payload[3]]);
    if !version.is_supported() {
        return Err(Refusal::invalid(RefusalReason::UnsupportedVersion(version)));
    }
    let need = if version.major == 4 {
        V4_REQUEST_LEN
    } else {
        V5_REQUEST_LEN
    };
    if payload.len() < need {
        return Err(Refusal::invalid(RefusalReason::TooShort {
            len: payload.len(),
            need,
        }));
    }
    let (base_bytes, iv, decrypted_iv);
    let mut buf = [0u8; V5_REQUEST_LEN - 4];
    if version.major == 4 {
        base_bytes = &payload[..BASE_REQUEST_LEN];
        if v4_mac(base_bytes) != payload[BASE_REQUEST_LEN..V4_REQUEST_LEN] {
            return Err(Refusal::invalid(RefusalReason::BadMac));
        }
        iv = None;
        decrypted_iv = None;
    } else {
        buf.copy_from_slice(&payload[4..V5_REQUEST_LEN]);
        cbc_decrypt_in_place(cipher_for(version), &[0; 16], &mut buf);
        if buf[252..256] != [4, 4, 4, 4] {
            return Err(Refusal::invalid(RefusalReason::BadPadding));
        }
        let mut d = [0u8; 16];
        d.copy_from_slice(&buf[..16]);
        let mut i = [0u8; 16];
        i.copy_from_slice(&payload[4..20]);
        iv = Some(i);
        decrypted_iv = Some(d);
        base_bytes = &buf[16..252];
    }
    let base = BaseRequest::decode(base_bytes).expect("base request slice has the full length");
    if base.version != version {
        return Err(Refusal::invalid(RefusalReason::VersionMismatch {
            outer: version,
            inner: base.version,
        }));
    }
    if base.required_client_count > MAX_REQUIRED_CLIENT_COUNT {
        return Err(Refusal::invalid(RefusalReason::RequiredCountTooHigh(
            base.required_client_count,
        )));
    }
    Ok(DecodedRequest {
        version,
        base,
        iv,
        decrypted_iv,
    })
}

/// Processes one KMS request payload: decode, ask `host`, build the response.
pub fn handle_request(
    payload: &[u8],
    host: &mut dyn KmsHost,
    rng: &mut dyn RngCore,
) -> Result<Vec<u8>, Refusal> {
    let request = decode_request(payload)?;
    let answer = host.answer(&request).map_err(|hresult| Refusal {
        hresult,
        reason: RefusalReason::Policy,
    })?;
    encode_response(&request, &answer, rng)
}

/// [`handle_request`] appending the response to `out` (the RPC layer builds it straight into
/// its reply). On a refusal `out` may hold part of a response: the caller truncates it.
pub fn handle_request_into(
    payload: &[u8],
    host: &mut dyn KmsHost,
    rng: &mut dyn RngCore,
    out: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let request = decode_request(payload)?;
    let answer = host.answer(&request).map_err(|hresult| Refusal {
        hresult,
        reason: RefusalReason::Policy,
    })?;
    encode_response_into(&request, &answer, rng, out)
}

/// The longest response a host sends (V6 with a 63-character ePID).
pub fn max_response_len() -> usize {
    response_len(Version::V6, 2 * (63 + 1))
}

/// Builds the response to a decoded request from the host's answer.
///
/// The response is written into one buffer of its exact final size: for V5/V6 the outer
/// version first, then the plaintext, padded and encrypted in place.
pub fn encode_response(
    request: &DecodedRequest,
    answer: &HostAnswer,
    rng: &mut dyn RngCore,
) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::with_capacity(response_len(request.version, pid_size(&answer.epid)));
    encode_response_into(request, answer, rng, &mut out)?;
    Ok(out)
}

/// [`encode_response`] appending the response to `out`.
pub fn encode_response_into(
    request: &DecodedRequest,
    answer: &HostAnswer,
    rng: &mut dyn RngCore,
    out: &mut Vec<u8>,
) -> Result<(), Refusal> {
    BaseResponse::check_epid(&answer.epid)
        .map_err(|e| Refusal::invalid(RefusalReason::BadEpid(e)))?;
    let base = BaseResponseRef {
        version: request.base.version,
        epid: &answer.epid,
        cmid: request.base.cmid,
        request_time: request.base.request_time,
        current_count: answer.current_count,
        activation_interval: answer.activation_interval,
        renewal_interval: answer.renewal_interval,
    };
    let start = out.len();
    out.reserve(response_len(request.version, pid_size(&answer.epid)));
    if request.version.major == 4 {
        base.encode_into(out);
        let mac = v4_mac(&out[start..]);
        out.extend_from_slice(&mac);
        return Ok(());
    }
    let d = request
        .decrypted_iv
        .expect("V5/V6 requests carry the decrypted IV");
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    out.extend_from_slice(&request.version.to_bytes());
    if request.version.major == 5 {
        out.extend_from_slice(&d);
    } else {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        out.extend_from_slice(&salt);
    }
    base.encode_into(out);
    out.extend_from_slice(&xor16(&random, &d));
    out.extend_from_slice(&Sha256::digest(random));
    if request.version.major == 6 {
        out.extend_from_slice(&answer.hwid);
        out.extend_from_slice(&d);
        let mac = v6_slot_hmac(v6_time_slot(request.base.request_time), &out[start + 4..]);
        out.extend_from_slice(&mac);
    }
    // PKCS#7 over the plaintext (everything after the 4 version bytes).
    let pad = 16 - (out.len() - start - 4) % 16;
    out.resize(out.len() + pad, pad as u8);
    cbc_encrypt_in_place(cipher_for(request.version), &[0; 16], &mut out[start + 4..]);
    Ok(())
}

pub(crate) fn cipher_for(version: Version) -> &'static dyn BlockCipher {
    if version.major == 6 {
        v6_cipher()
    } else {
        v5_cipher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::{build_request, WORKSTATION_UNITS};
    use uuid::Uuid;

    struct Answer(String);

    impl KmsHost for Answer {
        fn answer(&mut self, _: &DecodedRequest) -> Result<HostAnswer, HResult> {
            Ok(HostAnswer {
                epid: self.0.clone(),
                hwid: [1; 8],
                current_count: 50,
                activation_interval: 120,
                renewal_interval: 10080,
            })
        }
    }

    struct Counter(u8);

    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    /// The response is built in one allocation of its exact size, up to the longest ePID.
    #[test]
    fn response_fills_its_initial_capacity() {
        for version in [Version::V4, Version::V5, Version::V6] {
            for len in [1, 49, 63] {
                let base = BaseRequest {
                    version,
                    is_client_vm: 0,
                    license_status: 2,
                    grace_time: 43200,
                    application_id: Uuid::nil(),
                    sku_id: Uuid::nil(),
                    kms_id: Uuid::nil(),
                    cmid: Uuid::from_u128(7),
                    required_client_count: 25,
                    request_time: 0x01DB_5F4A_3C2E_1000,
                    previous_cmid: Uuid::nil(),
                    workstation: [0; WORKSTATION_UNITS],
                };
                let rq = build_request(version, &base, &mut Counter(0));
                let epid = "7".repeat(len);
                let resp =
                    handle_request(&rq.bytes, &mut Answer(epid.clone()), &mut Counter(9)).unwrap();
                assert_eq!(resp.len(), response_len(version, 2 * (len + 1)));
                assert_eq!(resp.capacity(), resp.len(), "{version} ePID of {len}");
                let verified = rq.verify_response(&resp).unwrap();
                assert_eq!(verified.base.epid, epid);
            }
        }
    }
}
