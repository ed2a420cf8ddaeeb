//! HRESULT values a KMS host returns in place of a response (PROTOCOL.md §10).

/// An HRESULT status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HResult(pub u32);

impl HResult {
    /// Success.
    pub const S_OK: HResult = HResult(0);
    /// ERROR_INVALID_DATA: bad version, short payload, bad MAC or padding, count over 1000.
    pub const INVALID_DATA: HResult = HResult(0x8007_000D);
    /// SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH: the KMS ID is not served here.
    pub const KMS_ID_MISMATCH: HResult = HResult(0xC004_F042);
    /// SL_E_VL_INVALID_TIMESTAMP: the client's clock is more than 4 hours off.
    pub const INVALID_TIMESTAMP: HResult = HResult(0xC004_F06C);
    /// SL_REMAPPING_SP_STATUS_INVALIDARG: an overcharged host refuses new clients.
    pub const SP_INVALID_ARG: HResult = HResult(0xC004_D104);
    /// SL_E_VL_NOT_ENOUGH_COUNT: the client saw a count below its threshold (client side).
    pub const NOT_ENOUGH_COUNT: HResult = HResult(0xC004_F038);
    /// SL_E_VL_BINDING_SERVICE_UNAVAILABLE: no KMS could be contacted (client side).
    pub const SERVICE_UNAVAILABLE: HResult = HResult(0xC004_F074);
    /// E_ACCESSDENIED.
    pub const ACCESS_DENIED: HResult = HResult(0x8007_0005);

    /// A short description of well-known codes.
    pub fn description(self) -> &'static str {
        match self.0 {
            0 => "success",
            0x8007_000D => {
                "the data is invalid (unsupported protocol version or malformed request)"
            }
            0xC004_F042 => "the specified KMS cannot be used (KMS ID not served by this host)",
            0xC004_F06C => {
                "the request timestamp is invalid (client clock differs by more than 4 hours)"
            }
            0xC004_D104 => {
                "the security processor reported that invalid data was used (host overcharged)"
            }
            0xC004_F038 => "the count reported by the KMS host is insufficient",
            0xC004_F074 => "no KMS host could be contacted",
            0x8007_0005 => "access denied",
            _ => "unknown status",
        }
    }
}

impl std::fmt::Display for HResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}
