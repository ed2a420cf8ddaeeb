//! KMS cryptography: the three block ciphers, CBC with PKCS#7, the V4 MAC and the V6 HMAC.
//!
//! V5 is plain AES-128 (RustCrypto's `aes`). V4 (160-bit key, 11 rounds) and V6 (AES-128 with
//! three round-key bytes changed) are built from `aes`'s hazmat round functions with a schedule
//! expanded here (PROTOCOL.md §5).

mod block;
mod cbc;
mod mac;

pub use block::{v4_cipher, v5_cipher, v6_cipher, BlockCipher, ExpandedKey, PAR_BLOCKS};
pub use cbc::{cbc_decrypt_in_place, cbc_encrypt_in_place, pkcs7_pad, pkcs7_unpad};
pub use mac::{v4_mac, v6_hmac, v6_hmac_key, v6_slot_hmac, v6_time_slot, V6_SLOT_STEP};

/// One 16-byte cipher block.
pub type Block16 = [u8; 16];

/// XOR of two blocks (one 128-bit operation).
pub fn xor16(a: &Block16, b: &Block16) -> Block16 {
    (u128::from_ne_bytes(*a) ^ u128::from_ne_bytes(*b)).to_ne_bytes()
}
