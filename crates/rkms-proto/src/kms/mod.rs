//! KMS messages (PROTOCOL.md §4, §6, §7): the base request and response, the V4/V5/V6
//! envelopes, server-side processing and client-side building and verification.

mod base;
mod client;
mod hresult;
mod server;

pub use base::{
    filetime_from_unix, unix_from_filetime, BaseRequest, BaseResponse, EpidError, WORKSTATION_UNITS,
};
pub use client::{build_request, ClientRequest, VerifiedResponse, VerifyError};
pub use hresult::HResult;
pub use server::{
    decode_request, encode_response_into, handle_request, handle_request_into, max_response_len,
    DecodedRequest, HostAnswer, KmsHost, Refusal, RefusalReason,
};

/// A KMS protocol version as sent in the first four bytes of a request (`minor`, `major`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major version: 4, 5 or 6 for the supported protocols.
    pub major: u16,
    /// Minor version: 0 for the supported protocols.
    pub minor: u16,
}

impl Version {
    /// Protocol 4.0.
    pub const V4: Version = Version { major: 4, minor: 0 };
    /// Protocol 5.0.
    pub const V5: Version = Version { major: 5, minor: 0 };
    /// Protocol 6.0.
    pub const V6: Version = Version { major: 6, minor: 0 };

    /// The version for a major number, minor 0.
    pub fn new(major: u16) -> Self {
        Version { major, minor: 0 }
    }

    /// The version as displayed (`6.0`), without formatting for the supported ones (a host
    /// logs and records it for every request).
    pub fn text(self) -> std::borrow::Cow<'static, str> {
        match (self.major, self.minor) {
            (4, 0) => "4.0".into(),
            (5, 0) => "5.0".into(),
            (6, 0) => "6.0".into(),
            _ => self.to_string().into(),
        }
    }

    /// Whether this is 4.0, 5.0 or 6.0.
    pub fn is_supported(self) -> bool {
        self.minor == 0 && (4..=6).contains(&self.major)
    }

    fn from_bytes(b: [u8; 4]) -> Self {
        Version {
            minor: u16::from_le_bytes([b[0], b[1]]),
            major: u16::from_le_bytes([b[2], b[3]]),
        }
    }

    fn to_bytes(self) -> [u8; 4] {
        let mut out = [0u8; 4];
        out[..2].copy_from_slice(&self.minor.to_le_bytes());
        out[2..].copy_from_slice(&self.major.to_le_bytes());
        out
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Size of a V4 request (base request and MAC).
pub const V4_REQUEST_LEN: usize = 252;
/// Size of a V5/V6 request (version, IV, encrypted base request and padding).
pub const V5_REQUEST_LEN: usize = 260;
/// Size of the base request.
pub const BASE_REQUEST_LEN: usize = 236;

/// `n` rounded up past the next PKCS#7 boundary (always adds 1..=16).
pub(crate) fn pad16(n: usize) -> usize {
    n + 16 - n % 16
}

/// Expected KMS response size for a version and an ePID of `pid_size` bytes (incl. NUL).
pub fn response_len(version: Version, pid_size: usize) -> usize {
    match version.major {
        4 => 60 + pid_size,
        5 => 4 + pad16(108 + pid_size),
        _ => 4 + pad16(148 + pid_size),
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn text_is_the_version_as_displayed() {
        for major in 0..8 {
            for minor in 0..3 {
                let v = Version { major, minor };
                assert_eq!(v.text(), v.to_string());
            }
        }
        assert!(matches!(
            Version::V6.text(),
            std::borrow::Cow::Borrowed("6.0")
        ));
    }
}
