//! A minimal DER reader and writer for the OCSP messages (RFC 6960), whose few structures are
//! simpler to walk by tag than to model. Definite lengths only (DER allows nothing else);
//! every read is bounds-checked and hostile input yields `None`, never a panic.

/// One tag-length-value.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octet (single-octet tags only).
    pub tag: u8,
    /// The contents.
    pub content: &'a [u8],
    /// The whole encoding, tag and length included.
    pub raw: &'a [u8],
}

/// Reads one TLV from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at_checked(len)?;
    let raw = input.get(..header + len)?;
    Some((Tlv { tag, content, raw }, after))
}

/// Every TLV inside `content` (a SEQUENCE's contents); `None` if any is malformed.
pub fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read(content)?;
        out.push(tlv);
        content = rest;
    }
    Some(out)
}

/// Encodes one TLV.
pub fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The contents of a positive INTEGER with value `magnitude` (big-endian, no leading zeros).
pub fn integer(magnitude: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    write(0x02, &content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_refuses_truncation() {
        let long = vec![7u8; 300];
        let enc = write(0x04, &long);
        let (tlv, rest) = read(&enc).unwrap();
        assert_eq!((tlv.tag, tlv.content.len(), rest.len()), (0x04, 300, 0));
        assert_eq!(tlv.raw, &enc[..]);
        assert!(read(&enc[..enc.len() - 1]).is_none());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read(&[0x1f, 0x01, 0x00]).is_none());
        assert_eq!(integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[0x01]), vec![0x02, 0x01, 0x01]);
        assert!(children(&[0x02, 0x01]).is_none());
    }
}
