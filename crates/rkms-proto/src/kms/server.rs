//! Server side of the KMS layer (PROTOCOL.md §6): decode and check a request, ask the host's
//! policy for the answer, and build the V4/V5/V6 response.

use rand_core::RngCore;
use sha2::{Digest, Sha256};

use super::base::{BaseRequest, BaseResponse, EpidError};
use super::{HResult, Version, BASE_REQUEST_LEN, V4_REQUEST_LEN, V5_REQUEST_LEN};
use crate::crypto::{
    cbc_decrypt_in_place, cbc_encrypt_in_place, pkcs7_pad, v4_mac, v5_cipher, v6_cipher, v6_hmac,
    v6_hmac_key, v6_time_slot, xor16, Block16, BlockCipher,
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
    let mut buf;
    if version.major == 4 {
        base_bytes = &payload[..BASE_REQUEST_LEN];
        if v4_mac(base_bytes) != payload[BASE_REQUEST_LEN..V4_REQUEST_LEN] {
            return Err(Refusal::invalid(RefusalReason::BadMac));
        }
        iv = None;
        decrypted_iv = None;
    } else {
        buf = payload[4..V5_REQUEST_LEN].to_vec();
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

/// Builds the response to a decoded request from the host's answer.
pub fn encode_response(
    request: &DecodedRequest,
    answer: &HostAnswer,
    rng: &mut dyn RngCore,
) -> Result<Vec<u8>, Refusal> {
    BaseResponse::check_epid(&answer.epid)
        .map_err(|e| Refusal::invalid(RefusalReason::BadEpid(e)))?;
    let base = BaseResponse {
        version: request.base.version,
        epid: answer.epid.clone(),
        cmid: request.base.cmid,
        request_time: request.base.request_time,
        current_count: answer.current_count,
        activation_interval: answer.activation_interval,
        renewal_interval: answer.renewal_interval,
    }
    .encode();
    if request.version.major == 4 {
        let mut out = base;
        let mac = v4_mac(&out);
        out.extend_from_slice(&mac);
        return Ok(out);
    }
    let d = request
        .decrypted_iv
        .expect("V5/V6 requests carry the decrypted IV");
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let mut plain = Vec::with_capacity(280);
    if request.version.major == 5 {
        plain.extend_from_slice(&d);
    } else {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        plain.extend_from_slice(&salt);
    }
    plain.extend_from_slice(&base);
    plain.extend_from_slice(&xor16(&random, &d));
    plain.extend_from_slice(&Sha256::digest(random));
    if request.version.major == 6 {
        plain.extend_from_slice(&answer.hwid);
        plain.extend_from_slice(&d);
        let key = v6_hmac_key(v6_time_slot(request.base.request_time));
        let mac = v6_hmac(&key, &plain);
        plain.extend_from_slice(&mac);
    }
    pkcs7_pad(&mut plain);
    cbc_encrypt_in_place(cipher_for(request.version), &[0; 16], &mut plain);
    let mut out = Vec::with_capacity(4 + plain.len());
    out.extend_from_slice(&request.version.to_bytes());
    out.extend_from_slice(&plain);
    Ok(out)
}

pub(crate) fn cipher_for(version: Version) -> &'static dyn BlockCipher {
    if version.major == 6 {
        v6_cipher()
    } else {
        v5_cipher()
    }
}
