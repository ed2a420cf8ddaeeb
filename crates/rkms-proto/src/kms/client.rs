//! Client side of the KMS layer: build a V4/V5/V6 request and verify the host's response as a
//! genuine client does (PROTOCOL.md §5.8, §7).

use rand_core::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::base::{BaseRequest, BaseResponse};
use super::server::{cipher_for, decode_request, Refusal};
use super::{response_len, Version, BASE_REQUEST_LEN};
use crate::crypto::{
    cbc_decrypt_in_place, cbc_encrypt_in_place, pkcs7_unpad, v4_mac, v6_hmac, v6_hmac_key,
    v6_time_slot, xor16, Block16, V6_SLOT_STEP,
};

/// A request built (or captured) by a client, with what is needed to verify its response.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The KMS request payload.
    pub bytes: Vec<u8>,
    /// Protocol version.
    pub version: Version,
    /// Client machine ID sent.
    pub cmid: Uuid,
    /// Request time sent (FILETIME).
    pub request_time: u64,
    iv: Block16,
    decrypted_iv: Block16,
}

/// Builds a request for `base` with its version forced to `version` (4, 5 or 6).
pub fn build_request(version: Version, base: &BaseRequest, rng: &mut dyn RngCore) -> ClientRequest {
    let mut base = base.clone();
    base.version = version;
    let plain = base.encode();
    let (bytes, iv, decrypted_iv) = if version.major == 4 {
        let mut out = plain;
        let mac = v4_mac(&out);
        out.extend_from_slice(&mac);
        (out, [0; 16], [0; 16])
    } else {
        let cipher = cipher_for(version);
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut iv);
        let mut body = plain;
        body.extend_from_slice(&[4, 4, 4, 4]);
        cbc_encrypt_in_place(cipher, &iv, &mut body);
        let mut out = Vec::with_capacity(260);
        out.extend_from_slice(&version.to_bytes());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&body);
        let mut d = iv;
        cipher.decrypt(&mut d);
        (out, iv, d)
    };
    debug_assert!(bytes.len() >= BASE_REQUEST_LEN);
    ClientRequest {
        bytes,
        version,
        cmid: base.cmid,
        request_time: base.request_time,
        iv,
        decrypted_iv,
    }
}

impl ClientRequest {
    /// Rebuilds the verification state from a request payload (e.g. a captured one).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Refusal> {
        let rq = decode_request(bytes)?;
        Ok(ClientRequest {
            bytes: bytes.to_vec(),
            version: rq.version,
            cmid: rq.base.cmid,
            request_time: rq.base.request_time,
            iv: rq.iv.unwrap_or([0; 16]),
            decrypted_iv: rq.decrypted_iv.unwrap_or([0; 16]),
        })
    }

    /// Verifies a response payload against this request.
    pub fn verify_response(&self, resp: &[u8]) -> Result<VerifiedResponse, VerifyError> {
        if resp.len() < 4 {
            return Err(VerifyError::Truncated(resp.len()));
        }
        let outer = Version::from_bytes([resp[0], resp[1], resp[2], resp[3]]);
        if outer != self.version {
            return Err(VerifyError::VersionMismatch {
                expected: self.version,
                got: outer,
            });
        }
        let mut warnings = Vec::new();
        let (base, hwid) = if self.version.major == 4 {
            let (base, len) = BaseResponse::decode(resp).map_err(VerifyError::Malformed)?;
            let mac = resp
                .get(len..len + 16)
                .ok_or(VerifyError::Truncated(resp.len()))?;
            if v4_mac(&resp[..len]) != mac {
                return Err(VerifyError::BadMac);
            }
            (base, None)
        } else {
            self.verify_encrypted(resp, &mut warnings)?
        };
        if base.version != self.version {
            return Err(VerifyError::VersionMismatch {
                expected: self.version,
                got: base.version,
            });
        }
        if base.cmid != self.cmid {
            return Err(VerifyError::CmidMismatch);
        }
        if base.request_time != self.request_time {
            return Err(VerifyError::TimeMismatch);
        }
        let expected = response_len(self.version, base.pid_size());
        if resp.len() != expected {
            warnings.push(format!(
                "response is {} bytes, expected {expected}",
                resp.len()
            ));
        }
        Ok(VerifiedResponse {
            base,
            hwid,
            warnings,
        })
    }

    fn verify_encrypted(
        &self,
        resp: &[u8],
        warnings: &mut Vec<String>,
    ) -> Result<(BaseResponse, Option<[u8; 8]>), VerifyError> {
        let body = &resp[4..];
        if body.len() < 32 || !body.len().is_multiple_of(16) {
            return Err(VerifyError::Malformed(format!(
                "encrypted part is {} bytes, not a multiple of 16 of at least 32",
                body.len()
            )));
        }
        let mut plain = body.to_vec();
        cbc_decrypt_in_place(cipher_for(self.version), &[0; 16], &mut plain);
        let len = pkcs7_unpad(&plain).map_err(|_| VerifyError::BadPadding)?;
        let plain = &plain[..len];
        let (base, base_len) =
            BaseResponse::decode(plain.get(16..).unwrap_or(&[])).map_err(VerifyError::Malformed)?;
        let mut r = crate::wire::Reader::new(&plain[16 + base_len..]);
        let short = |_| VerifyError::Malformed("response ends inside its trailer".into());
        let random_xor: Block16 = r.array().map_err(short)?;
        let hash: [u8; 32] = r.array().map_err(short)?;
        let random = xor16(&random_xor, &self.decrypted_iv);
        if Sha256::digest(random).as_slice() != hash {
            return Err(VerifyError::BadHash);
        }
        let wire_iv = &resp[4..20];
        if self.version.major == 5 {
            if wire_iv != self.iv {
                return Err(VerifyError::IvMismatch);
            }
            return Ok((base, None));
        }
        let hwid: [u8; 8] = r.array().map_err(short)?;
        let xor_salts: Block16 = r.array().map_err(short)?;
        let hmac_at = 16 + base_len + 16 + 32 + 8 + 16;
        let mac: Block16 = r.array().map_err(short)?;
        if xor_salts != self.decrypted_iv {
            return Err(VerifyError::XorSaltsMismatch);
        }
        let slot = v6_time_slot(self.request_time);
        // The request's own time slot first: a host answers with it unless its clock is a
        // slot away, so one HMAC usually settles it.
        let ok = [
            slot,
            slot.wrapping_sub(V6_SLOT_STEP),
            slot.wrapping_add(V6_SLOT_STEP),
        ]
        .iter()
        .any(|&s| v6_hmac(&v6_hmac_key(s), &plain[..hmac_at]) == mac);
        if !ok {
            return Err(VerifyError::BadHmac);
        }
        if wire_iv == self.iv {
            warnings.push("V6 response IV equals the request IV (emulator detected)".into());
        }
        Ok((base, Some(hwid)))
    }
}

/// A response that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedResponse {
    /// The decoded base response.
    pub base: BaseResponse,
    /// V6: the host's hardware ID.
    pub hwid: Option<[u8; 8]>,
    /// Deviations a genuine client only warns about.
    pub warnings: Vec<String>,
}

/// A check a genuine client makes failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Too short to hold anything.
    #[error("response of {0} bytes is truncated")]
    Truncated(usize),
    /// Structure could not be parsed.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Outer or inner version differs from the request's.
    #[error("response version {got} does not match request version {expected}")]
    VersionMismatch {
        /// Request version.
        expected: Version,
        /// Version in the response.
        got: Version,
    },
    /// V4 MAC wrong.
    #[error("V4 response MAC is wrong")]
    BadMac,
    /// V5/V6 PKCS#7 padding wrong after decryption.
    #[error("decrypted response has bad padding (wrong key or corrupted)")]
    BadPadding,
    /// SHA-256 of the random value does not match.
    #[error("response hash does not match")]
    BadHash,
    /// V5 response IV differs from the request IV.
    #[error("V5 response IV differs from the request IV")]
    IvMismatch,
    /// V6 XorSalts differs from the decrypted request IV.
    #[error("V6 XorSalts field does not match the request")]
    XorSaltsMismatch,
    /// V6 HMAC wrong in all three time slots.
    #[error("V6 response HMAC is wrong")]
    BadHmac,
    /// CMID not echoed.
    #[error("response does not echo the client machine ID")]
    CmidMismatch,
    /// Request time not echoed.
    #[error("response does not echo the request time")]
    TimeMismatch,
}
