//! "Is a whole PDU here yet?" — kept apart from parsing, so an incomplete read is not an error.

/// Size of the common PDU header.
pub const HEADER_LEN: usize = 16;

/// The stream cannot carry a valid PDU: the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// `frag_length` is smaller than the header itself.
    #[error("frag_length {0} is smaller than the 16-byte header")]
    TooShort(u16),
    /// `frag_length` is larger than this host accepts.
    #[error("frag_length {len} exceeds the limit of {max} bytes")]
    TooLong {
        /// Declared length.
        len: u16,
        /// Configured limit.
        max: usize,
    },
}

/// Length of the complete PDU at the start of `buf`, `None` if more bytes are needed.
pub fn complete_pdu_len(buf: &[u8], max_pdu: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u16::from_le_bytes([buf[8], buf[9]]);
    if (len as usize) < HEADER_LEN {
        return Err(FrameError::TooShort(len));
    }
    if len as usize > max_pdu {
        return Err(FrameError::TooLong { len, max: max_pdu });
    }
    Ok((buf.len() >= len as usize).then_some(len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u16) -> Vec<u8> {
        let mut h = vec![5, 0, 11, 3, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        h[8..10].copy_from_slice(&len.to_le_bytes());
        h
    }

    #[test]
    fn needs_whole_header_then_whole_pdu() {
        assert_eq!(complete_pdu_len(&header(20)[..10], 100), Ok(None));
        assert_eq!(complete_pdu_len(&header(20), 100), Ok(None));
        let mut full = header(20);
        full.extend_from_slice(&[0; 6]);
        assert_eq!(complete_pdu_len(&full, 100), Ok(Some(20)));
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(
            complete_pdu_len(&header(15), 100),
            Err(FrameError::TooShort(15))
        );
        assert_eq!(
            complete_pdu_len(&header(101), 100),
            Err(FrameError::TooLong { len: 101, max: 100 })
        );
    }
}
