//! Bounds-checked little-endian reading and writing of wire fields.
//!
//! Every parser in this crate reads untrusted bytes through [`Reader`], which never panics:
//! a read past the end returns [`Truncated`].

use uuid::Uuid;

/// A read went past the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated input: needed {needed} more byte(s) at offset {offset}")]
pub struct Truncated {
    /// Offset at which the read started.
    pub offset: usize,
    /// Bytes the read needed beyond what was left.
    pub needed: usize,
}

/// A cursor over a byte slice with bounds-checked little-endian reads.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset from the start of the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Everything not read yet, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.remaining() < n {
            return Err(Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), Truncated> {
        self.bytes(n).map(|_| ())
    }

    /// Skips to the next multiple of `align` from the start of the input.
    pub fn align(&mut self, align: usize) -> Result<(), Truncated> {
        let pad = (align - self.pos % align) % align;
        self.skip(pad)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a GUID in Microsoft wire layout (first three groups little-endian).
    pub fn guid(&mut self) -> Result<Uuid, Truncated> {
        Ok(Uuid::from_bytes_le(self.array()?))
    }
}

/// Appends little-endian fields to a byte vector.
pub(crate) trait PutLe {
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_guid(&mut self, g: &Uuid);
    fn pad_to(&mut self, align: usize);
}

impl PutLe for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_guid(&mut self, g: &Uuid) {
        self.extend_from_slice(&g.to_bytes_le());
    }
    fn pad_to(&mut self, align: usize) {
        let pad = (align - self.len() % align) % align;
        self.resize(self.len() + pad, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert_eq!(
            r.u32(),
            Err(Truncated {
                offset: 2,
                needed: 3
            })
        );
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.u8().is_err());
    }

    #[test]
    fn guid_uses_microsoft_layout() {
        let wire = [
            0x75, 0x21, 0xc8, 0x51, 0x4e, 0x84, 0x50, 0x47, 0xb0, 0xd8, 0xec, 0x25, 0x55, 0x55,
            0xbc, 0x06,
        ];
        let g = Reader::new(&wire).guid().unwrap();
        assert_eq!(g.to_string(), "51c82175-844e-4750-b0d8-ec255555bc06");
        let mut out = Vec::new();
        out.put_guid(&g);
        assert_eq!(out, wire);
    }

    #[test]
    fn align_is_relative_to_start() {
        let mut r = Reader::new(&[0; 16]);
        r.skip(5).unwrap();
        r.align(4).unwrap();
        assert_eq!(r.position(), 8);
        let mut v = vec![0u8; 26];
        v.pad_to(4);
        assert_eq!(v.len(), 28);
    }
}
