//! The few DER shapes relgate writes and reads: SPKI public keys and ECDSA signatures.
//!
//! Written here rather than taken from the `der`/`spki` crates' builders: three structures of
//! two or three fields each, and the reader accepts exactly the minimal encodings (RFC 5480,
//! X.690 DER), nothing a BER-lenient parser would let through.

/// A DER length.
fn len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// Tag, length, value.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(len(content.len()));
    out.extend_from_slice(content);
    out
}

pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// An unsigned INTEGER from big-endian magnitude bytes (leading zeros dropped, a zero byte
/// added where the top bit would make it negative).
pub fn uint(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    tlv(0x02, &content)
}

/// A BIT STRING with no unused bits.
pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = vec![0];
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

/// An OBJECT IDENTIFIER from its encoded body.
pub fn oid(body: &[u8]) -> Vec<u8> {
    tlv(0x06, body)
}

pub const NULL: &[u8] = &[0x05, 0x00];

/// Read one tag and its content from the front of `input`; lengths must be minimal.
fn read(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (&t, rest) = input.split_first().ok_or("DER: unexpected end")?;
    if t != tag {
        return Err(format!("DER: expected tag {tag:#04x}, found {t:#04x}"));
    }
    let (&first, rest) = rest.split_first().ok_or("DER: missing length")?;
    let (n, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let k = (first & 0x7f) as usize;
        if k == 0 || k > 4 || rest.len() < k {
            return Err("DER: bad length".into());
        }
        let n = rest[..k].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        if rest[0] == 0 || n < 0x80 {
            return Err("DER: length not minimal".into());
        }
        (n, &rest[k..])
    };
    if rest.len() < n {
        return Err("DER: content past the end".into());
    }
    Ok(rest.split_at(n))
}

/// The magnitude of a minimally encoded, non-negative INTEGER at the front of `input`.
fn read_uint(input: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (content, rest) = read(input, 0x02)?;
    match content {
        [] => Err("DER: empty INTEGER".into()),
        [b, ..] if b & 0x80 != 0 => Err("DER: negative INTEGER".into()),
        [0, b, ..] if b & 0x80 == 0 => Err("DER: INTEGER not minimal".into()),
        [0, rest_bytes @ ..] if !rest_bytes.is_empty() => Ok((rest_bytes, rest)),
        _ => Ok((content, rest)),
    }
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`, nothing after it: (r, s).
pub fn read_ecdsa_sig(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (seq, after) = read(input, 0x30)?;
    if !after.is_empty() {
        return Err("DER: bytes after the signature".into());
    }
    let (r, rest) = read_uint(seq)?;
    let (s, rest) = read_uint(rest)?;
    if !rest.is_empty() {
        return Err("DER: more than two integers in the signature".into());
    }
    Ok((r.to_vec(), s.to_vec()))
}

/// The DER `ECDSA-Sig-Value` of (r, s).
pub fn ecdsa_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
    sequence(&[&uint(r), &uint(s)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(&[0, 0, 1]), [2, 1, 1]);
        assert_eq!(uint(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(uint(&[]), [2, 1, 0]);
        assert_eq!(len(0x7f), [0x7f]);
        assert_eq!(len(0x80), [0x81, 0x80]);
        assert_eq!(len(0x1234), [0x82, 0x12, 0x34]);
    }

    #[test]
    fn ecdsa_signatures_round_trip_and_lax_encodings_are_refused() {
        let r = [0x80u8; 32];
        let s = [0x01u8; 32];
        let der = ecdsa_sig(&r, &s);
        assert_eq!(read_ecdsa_sig(&der).unwrap(), (r.to_vec(), s.to_vec()));
        // A padded INTEGER, a negative one, trailing bytes: refused.
        let padded = sequence(&[&tlv(2, &[0, 0x01]), &uint(&s)]);
        assert!(read_ecdsa_sig(&padded).is_err());
        let negative = sequence(&[&tlv(2, &[0x80]), &uint(&s)]);
        assert!(read_ecdsa_sig(&negative).is_err());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(read_ecdsa_sig(&trailing).is_err());
        // A long-form length for a short content is not DER.
        let mut long = vec![0x30, 0x81, (der.len() - 2) as u8];
        long.extend_from_slice(&der[2..]);
        assert!(read_ecdsa_sig(&long).is_err());
    }
}
