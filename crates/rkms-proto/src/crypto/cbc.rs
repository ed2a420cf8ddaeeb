//! CBC mode over any [`BlockCipher`] and PKCS#7 padding (block size 16).

use super::{Block16, BlockCipher, PAR_BLOCKS};

/// PKCS#7 padding was missing or malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad PKCS#7 padding")]
pub struct BadPadding;

/// Encrypts `data` (a multiple of 16 bytes) in place with CBC and the given IV.
///
/// Panics if `data.len()` is not a multiple of 16 (callers pad first).
pub fn cbc_encrypt_in_place(cipher: &dyn BlockCipher, iv: &Block16, data: &mut [u8]) {
    assert!(
        data.len().is_multiple_of(16),
        "CBC input must be block aligned"
    );
    // One call through the cipher's table per message, not per block.
    cipher.cbc_encrypt_blocks(iv, data);
}

/// Decrypts `data` (a multiple of 16 bytes) in place with CBC and the given IV.
///
/// Panics if `data.len()` is not a multiple of 16 (callers check lengths first).
pub fn cbc_decrypt_in_place(cipher: &dyn BlockCipher, iv: &Block16, data: &mut [u8]) {
    assert!(
        data.len().is_multiple_of(16),
        "CBC input must be block aligned"
    );
    let mut prev = *iv;
    // Up to PAR_BLOCKS blocks are deciphered together, then each is XORed with the
    // ciphertext block before it.
    for group in data.chunks_mut(16 * PAR_BLOCKS) {
        let mut blocks = [[0u8; 16]; PAR_BLOCKS];
        let n = group.len() / 16;
        for (b, chunk) in blocks.iter_mut().zip(group.chunks_exact(16)) {
            b.copy_from_slice(chunk);
        }
        let cipher_blocks = blocks;
        cipher.decrypt_par(&mut blocks[..n]);
        for ((chunk, plain), cipher_block) in group
            .chunks_exact_mut(16)
            .zip(blocks.iter())
            .zip(cipher_blocks.iter())
        {
            for i in 0..16 {
                chunk[i] = plain[i] ^ prev[i];
            }
            prev = *cipher_block;
        }
    }
}

/// Appends PKCS#7 padding (1..=16 bytes).
pub fn pkcs7_pad(data: &mut Vec<u8>) {
    let n = 16 - data.len() % 16;
    data.resize(data.len() + n, n as u8);
}

/// Checks and strips PKCS#7 padding, returning the unpadded length.
pub fn pkcs7_unpad(data: &[u8]) -> Result<usize, BadPadding> {
    let n = *data.last().ok_or(BadPadding)? as usize;
    if n == 0 || n > 16 || n > data.len() || data[data.len() - n..].iter().any(|&b| b as usize != n)
    {
        return Err(BadPadding);
    }
    Ok(data.len() - n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::v5_cipher;

    #[test]
    fn round_trip_and_padding() {
        let mut data: Vec<u8> = (0..33).collect();
        pkcs7_pad(&mut data);
        assert_eq!(data.len(), 48);
        assert_eq!(&data[33..], &[15u8; 15]);
        let plain = data.clone();
        let iv = [7u8; 16];
        cbc_encrypt_in_place(v5_cipher(), &iv, &mut data);
        assert_ne!(data, plain);
        cbc_decrypt_in_place(v5_cipher(), &iv, &mut data);
        assert_eq!(data, plain);
        assert_eq!(pkcs7_unpad(&data), Ok(33));
    }

    #[test]
    fn cbc_loop_of_each_cipher_equals_cbc_over_single_blocks() {
        use crate::crypto::{v4_cipher, v6_cipher};
        let ciphers: [&dyn BlockCipher; 3] = [v4_cipher(), v5_cipher(), v6_cipher()];
        for cipher in ciphers {
            for blocks in 0..20usize {
                let plain: Vec<u8> = (0..16 * blocks).map(|i| (i * 31 + 7) as u8).collect();
                let iv: Block16 = core::array::from_fn(|i| (i * 13) as u8);
                // CBC spelled out with the one-block encryption.
                let mut expected = plain.clone();
                let mut prev = iv;
                for chunk in expected.chunks_exact_mut(16) {
                    let mut b: Block16 = core::array::from_fn(|i| chunk[i] ^ prev[i]);
                    cipher.encrypt(&mut b);
                    chunk.copy_from_slice(&b);
                    prev = b;
                }
                let mut got = plain.clone();
                cbc_encrypt_in_place(cipher, &iv, &mut got);
                assert_eq!(got, expected, "{blocks} blocks");
                cbc_decrypt_in_place(cipher, &iv, &mut got);
                assert_eq!(got, plain, "{blocks} blocks back");
            }
        }
    }

    #[test]
    fn aligned_input_gets_a_full_block() {
        let mut data = vec![0u8; 16];
        pkcs7_pad(&mut data);
        assert_eq!(&data[16..], &[16u8; 16]);
    }

    #[test]
    fn bad_padding_rejected() {
        assert_eq!(pkcs7_unpad(&[]), Err(BadPadding));
        assert_eq!(pkcs7_unpad(&[0u8; 16]), Err(BadPadding));
        let mut d = vec![1u8; 16];
        d[15] = 17;
        assert_eq!(pkcs7_unpad(&d), Err(BadPadding));
        d[15] = 3;
        d[14] = 2;
        assert_eq!(pkcs7_unpad(&d), Err(BadPadding));
    }
}
