//! The base request (236 bytes) and base response (44 + P bytes) shared by all versions.

use uuid::Uuid;

use super::{Version, BASE_REQUEST_LEN};
use crate::wire::{PutLe, Reader, Truncated};

/// Code units in the workstation-name field (NUL-padded UTF-16LE).
pub const WORKSTATION_UNITS: usize = 64;

/// Seconds between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// FILETIME (100 ns since 1601) for a Unix time in seconds.
pub fn filetime_from_unix(unix_seconds: u64) -> u64 {
    (unix_seconds + FILETIME_UNIX_OFFSET) * 10_000_000
}

/// Unix seconds for a FILETIME (negative before 1970).
pub fn unix_from_filetime(filetime: u64) -> i64 {
    (filetime / 10_000_000) as i64 - FILETIME_UNIX_OFFSET as i64
}

/// The client's activation request, common to V4, V5 and V6 (PROTOCOL.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRequest {
    /// Inner protocol version.
    pub version: Version,
    /// 1 if the client runs in a virtual machine.
    pub is_client_vm: u32,
    /// Client licence state (0..=6).
    pub license_status: u32,
    /// Minutes left in the current licence state.
    pub grace_time: u32,
    /// Application ID (Windows, Office 2010, Office 2013+).
    pub application_id: Uuid,
    /// SKU (activation) ID: the exact edition.
    pub sku_id: Uuid,
    /// KMS counted ID: the product group.
    pub kms_id: Uuid,
    /// Client machine ID.
    pub cmid: Uuid,
    /// Activation threshold the client needs.
    pub required_client_count: u32,
    /// Client time, FILETIME UTC.
    pub request_time: u64,
    /// Previous client machine ID, or nil.
    pub previous_cmid: Uuid,
    /// Workstation name field, raw UTF-16 code units.
    pub workstation: [u16; WORKSTATION_UNITS],
}

impl BaseRequest {
    /// Parses the 236-byte base request.
    pub fn decode(bytes: &[u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(bytes);
        let version = Version::from_bytes(r.array()?);
        let is_client_vm = r.u32()?;
        let license_status = r.u32()?;
        let grace_time = r.u32()?;
        let application_id = r.guid()?;
        let sku_id = r.guid()?;
        let kms_id = r.guid()?;
        let cmid = r.guid()?;
        let required_client_count = r.u32()?;
        let request_time = r.u64()?;
        let previous_cmid = r.guid()?;
        let mut workstation = [0u16; WORKSTATION_UNITS];
        for unit in workstation.iter_mut() {
            *unit = r.u16()?;
        }
        Ok(BaseRequest {
            version,
            is_client_vm,
            license_status,
            grace_time,
            application_id,
            sku_id,
            kms_id,
            cmid,
            required_client_count,
            request_time,
            previous_cmid,
            workstation,
        })
    }

    /// Serialises to 236 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BASE_REQUEST_LEN);
        out.extend_from_slice(&self.version.to_bytes());
        out.put_u32(self.is_client_vm);
        out.put_u32(self.license_status);
        out.put_u32(self.grace_time);
        out.put_guid(&self.application_id);
        out.put_guid(&self.sku_id);
        out.put_guid(&self.kms_id);
        out.put_guid(&self.cmid);
        out.put_u32(self.required_client_count);
        out.put_u64(self.request_time);
        out.put_guid(&self.previous_cmid);
        for unit in self.workstation {
            out.put_u16(unit);
        }
        out
    }

    /// Encodes a workstation name into the fixed field (at most 63 code units are kept).
    pub fn workstation_field(name: &str) -> [u16; WORKSTATION_UNITS] {
        let mut field = [0u16; WORKSTATION_UNITS];
        for (slot, unit) in field
            .iter_mut()
            .zip(name.encode_utf16().take(WORKSTATION_UNITS - 1))
        {
            *slot = unit;
        }
        field
    }

    /// The workstation name up to the first NUL, or an error if it is not valid UTF-16.
    pub fn workstation_name(&self) -> Result<String, std::string::FromUtf16Error> {
        let units = self.workstation_units();
        // ASCII (the usual name) is copied byte for byte rather than decoded character by
        // character.
        if units.iter().all(|&u| u < 0x80) {
            let bytes = units.iter().map(|&u| u as u8).collect();
            if let Ok(name) = String::from_utf8(bytes) {
                return Ok(name);
            }
        }
        String::from_utf16(units)
    }

    /// The workstation name with invalid UTF-16 replaced by U+FFFD.
    pub fn workstation_name_lossy(&self) -> String {
        String::from_utf16_lossy(self.workstation_units())
    }

    fn workstation_units(&self) -> &[u16] {
        let end = self
            .workstation
            .iter()
            .position(|&u| u == 0)
            .unwrap_or(WORKSTATION_UNITS);
        &self.workstation[..end]
    }
}

/// An ePID that cannot be carried in a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpidError {
    /// Empty or longer than 63 UTF-16 code units (PIDSize would exceed 128).
    #[error("ePID must be 1 to 63 characters long, got {0}")]
    Length(usize),
    /// Contains a NUL character.
    #[error("ePID contains a NUL character")]
    EmbeddedNul,
}

/// The host's answer, common to V4, V5 and V6 (PROTOCOL.md §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseResponse {
    /// Version copied from the request.
    pub version: Version,
    /// The host's extended product ID.
    pub epid: String,
    /// Client machine ID copied from the request.
    pub cmid: Uuid,
    /// Request time copied from the request.
    pub request_time: u64,
    /// Number of active clients the host reports.
    pub current_count: u32,
    /// Minutes before a client retries an unsuccessful activation.
    pub activation_interval: u32,
    /// Minutes between renewals.
    pub renewal_interval: u32,
}

impl BaseResponse {
    /// Checks that `epid` fits a response: 1..=63 UTF-16 units, no NUL.
    pub fn check_epid(epid: &str) -> Result<(), EpidError> {
        let units = utf16_units(epid);
        if units == 0 || units > 63 {
            return Err(EpidError::Length(units));
        }
        if epid.contains('\0') {
            return Err(EpidError::EmbeddedNul);
        }
        Ok(())
    }

    /// PIDSize: bytes of the UTF-16LE ePID including its NUL.
    pub fn pid_size(&self) -> usize {
        pid_size(&self.epid)
    }

    /// Serialises to 44 + PIDSize bytes. The ePID must have passed [`Self::check_epid`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(44 + self.pid_size());
        self.encode_into(&mut out);
        out
    }

    /// Appends the 44 + PIDSize bytes of [`Self::encode`] to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        BaseResponseRef {
            version: self.version,
            epid: &self.epid,
            cmid: self.cmid,
            request_time: self.request_time,
            current_count: self.current_count,
            activation_interval: self.activation_interval,
            renewal_interval: self.renewal_interval,
        }
        .encode_into(out);
    }

    /// Parses a base response at the start of `bytes`, returning it and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), String> {
        let mut r = Reader::new(bytes);
        let trunc = |e: Truncated| format!("response truncated: {e}");
        let version = Version::from_bytes(r.array().map_err(trunc)?);
        let pid_size = r.u32().map_err(trunc)? as usize;
        if !(2..=128).contains(&pid_size) || !pid_size.is_multiple_of(2) {
            return Err(format!(
                "ePID size {pid_size} is not an even number of bytes in 2..=128"
            ));
        }
        let raw = r.bytes(pid_size).map_err(trunc)?;
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let (last, body) = units.split_last().expect("pid_size >= 2");
        if *last != 0 {
            return Err("ePID is not NUL-terminated".into());
        }
        if body.contains(&0) {
            return Err("ePID contains an embedded NUL".into());
        }
        let epid = String::from_utf16(body).map_err(|_| "ePID is not valid UTF-16".to_string())?;
        let cmid = r.guid().map_err(trunc)?;
        let request_time = r.u64().map_err(trunc)?;
        let current_count = r.u32().map_err(trunc)?;
        let activation_interval = r.u32().map_err(trunc)?;
        let renewal_interval = r.u32().map_err(trunc)?;
        Ok((
            BaseResponse {
                version,
                epid,
                cmid,
                request_time,
                current_count,
                activation_interval,
                renewal_interval,
            },
            r.position(),
        ))
    }
}

/// PIDSize of an ePID: bytes of its UTF-16LE form including the NUL.
pub(crate) fn pid_size(epid: &str) -> usize {
    2 * (utf16_units(epid) + 1)
}

/// UTF-16 code units of `s` (its length when it is ASCII, as ePIDs are).
fn utf16_units(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// Appends `s` in UTF-16LE (an ASCII string byte by byte, each followed by a zero byte).
fn put_utf16(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        let start = out.len();
        out.resize(start + 2 * s.len(), 0);
        for (unit, &b) in out[start..].chunks_exact_mut(2).zip(s.as_bytes()) {
            unit[0] = b;
        }
    } else {
        for unit in s.encode_utf16() {
            out.put_u16(unit);
        }
    }
}

/// A [`BaseResponse`] that borrows its ePID, so the server encodes without copying it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BaseResponseRef<'a> {
    pub version: Version,
    pub epid: &'a str,
    pub cmid: Uuid,
    pub request_time: u64,
    pub current_count: u32,
    pub activation_interval: u32,
    pub renewal_interval: u32,
}

impl BaseResponseRef<'_> {
    /// Appends the 44 + PIDSize bytes of the base response to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_bytes());
        out.put_u32(pid_size(self.epid) as u32);
        put_utf16(out, self.epid);
        out.put_u16(0);
        out.put_guid(&self.cmid);
        out.put_u64(self.request_time);
        out.put_u32(self.current_count);
        out.put_u32(self.activation_interval);
        out.put_u32(self.renewal_interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_of_ascii_and_other_text_equals_encode_utf16() {
        for s in [
            "",
            "a",
            "05426-00206-152-068754-03-1033-9600.0000-0812024",
            "é",
            "a€b",
            "𝄞x",
        ] {
            let mut out = vec![7u8];
            put_utf16(&mut out, s);
            let expected: Vec<u8> = std::iter::once(7u8)
                .chain(s.encode_utf16().flat_map(u16::to_le_bytes))
                .collect();
            assert_eq!(out, expected, "{s:?}");
            assert_eq!(utf16_units(s), s.encode_utf16().count(), "{s:?}");
            assert_eq!(pid_size(s), 2 * (s.encode_utf16().count() + 1));
        }
    }

    #[test]
    fn workstation_name_ascii_and_not() {
        let mut rq = sample();
        for name in [
            "",
            "PC",
            "pc-01.example",
            "Zürich-PC",
            "\u{7f}\u{80}",
            "名前",
            "a\u{1F600}b",
        ] {
            rq.workstation = BaseRequest::workstation_field(name);
            assert_eq!(rq.workstation_name().unwrap(), name);
        }
        // An unpaired surrogate is refused, also after ASCII.
        rq.workstation = [0; WORKSTATION_UNITS];
        rq.workstation[..3].copy_from_slice(&[b'a' as u16, 0xD800, b'b' as u16]);
        assert!(rq.workstation_name().is_err());
        assert_eq!(rq.workstation_name_lossy(), "a\u{FFFD}b");
    }

    #[test]
    fn workstation_name_round_trip_and_truncation() {
        let long = "x".repeat(100);
        let field = BaseRequest::workstation_field(&long);
        assert_eq!(field[62], 'x' as u16);
        assert_eq!(field[63], 0);
        let mut rq = sample();
        rq.workstation = BaseRequest::workstation_field("pc-01.example");
        assert_eq!(rq.workstation_name().unwrap(), "pc-01.example");
        let decoded = BaseRequest::decode(&rq.encode()).unwrap();
        assert_eq!(decoded, rq);
    }

    #[test]
    fn invalid_utf16_name_detected() {
        let mut rq = sample();
        rq.workstation[0] = 0xD800; // lone surrogate
        assert!(rq.workstation_name().is_err());
        assert_eq!(rq.workstation_name_lossy(), "\u{FFFD}");
    }

    #[test]
    fn epid_rules() {
        assert!(BaseResponse::check_epid("").is_err());
        assert!(BaseResponse::check_epid(&"1".repeat(64)).is_err());
        assert!(BaseResponse::check_epid(&"1".repeat(63)).is_ok());
        assert!(BaseResponse::check_epid("a\0b").is_err());
    }

    #[test]
    fn filetime_conversion() {
        assert_eq!(filetime_from_unix(0), 116_444_736_000_000_000);
        assert_eq!(
            unix_from_filetime(filetime_from_unix(1_700_000_000)),
            1_700_000_000
        );
    }

    fn sample() -> BaseRequest {
        BaseRequest {
            version: Version::V6,
            is_client_vm: 0,
            license_status: 2,
            grace_time: 43200,
            application_id: Uuid::nil(),
            sku_id: Uuid::nil(),
            kms_id: Uuid::nil(),
            cmid: Uuid::from_u128(1),
            required_client_count: 25,
            request_time: 1,
            previous_cmid: Uuid::nil(),
            workstation: [0; WORKSTATION_UNITS],
        }
    }
}
