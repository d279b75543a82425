// SPDX-License-Identifier: MIT OR Apache-2.0
//! A bounded LZO1X decoder (the format as described in Linux's
//! `Documentation/staging/lzo.rst`), written for rxen because no maintained no_std
//! LZO1X crate was found. Every copy is checked against the input's and the output's
//! bounds; run-length extensions are capped by the output size, so the work is bounded by
//! the input and output lengths.

/// What is wrong with an LZO1X stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lzo1xErrorKind {
    /// The stream ends before its end marker (or inside an instruction).
    Truncated,
    /// The stream decompresses past the end of the output buffer.
    OutputFull,
    /// A match refers to before the start of the output.
    BadDistance,
}

/// An LZO1X error and the input offset (into the stream) where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lzo1xError {
    pub kind: Lzo1xErrorKind,
    pub at: usize,
}

/// Decompress one LZO1X stream (up to and including its end marker) into `out`; returns
/// the bytes written.
pub fn decompress(src: &[u8], out: &mut [u8]) -> Result<usize, Lzo1xError> {
    use Lzo1xErrorKind::*;
    let mut ip = 0usize;
    let mut op = 0usize;
    let out_len = out.len();
    let err = |kind, at| Lzo1xError { kind, at };
    let byte = |ip: &mut usize| -> Result<usize, Lzo1xError> {
        let b = *src.get(*ip).ok_or(err(Truncated, *ip))?;
        *ip += 1;
        Ok(usize::from(b))
    };
    // A run length's extension: each zero byte adds 255, then the next byte its value.
    let ext = |ip: &mut usize, base: usize| -> Result<usize, Lzo1xError> {
        let mut n = base;
        loop {
            let b = *src.get(*ip).ok_or(err(Truncated, *ip))?;
            *ip += 1;
            if b != 0 {
                return n.checked_add(usize::from(b)).ok_or(err(OutputFull, *ip));
            }
            n = n.checked_add(255).ok_or(err(OutputFull, *ip))?;
            if n > out_len.saturating_add(255) {
                return Err(err(OutputFull, *ip));
            }
        }
    };
    let literals = |ip: &mut usize, op: &mut usize, out: &mut [u8], n: usize| -> Result<(), Lzo1xError> {
        let s = src.get(*ip..ip.saturating_add(n)).ok_or(err(Truncated, *ip))?;
        out.get_mut(*op..op.saturating_add(n)).ok_or(err(OutputFull, *ip))?.copy_from_slice(s);
        *ip += n;
        *op += n;
        Ok(())
    };
    let copy_match = |ip: usize, op: &mut usize, out: &mut [u8], dist: usize, len: usize| -> Result<(), Lzo1xError> {
        if dist == 0 || dist > *op {
            return Err(err(BadDistance, ip));
        }
        let end = op.checked_add(len).ok_or(err(OutputFull, ip))?;
        if end > out.len() {
            return Err(err(OutputFull, ip));
        }
        if dist >= len {
            out.copy_within(*op - dist..*op - dist + len, *op);
        } else {
            for i in *op..end {
                out[i] = out[i - dist];
            }
        }
        *op = end;
        Ok(())
    };
    // state: literals copied after the last instruction (0..3, or 4 after a long run).
    let mut state: usize;
    let first = *src.first().ok_or(err(Truncated, 0))?;
    if first > 17 {
        ip = 1;
        let n = usize::from(first) - 17;
        literals(&mut ip, &mut op, out, n)?;
        state = if n < 4 { n } else { 4 };
    } else {
        state = 0;
    }
    loop {
        let at = ip;
        let t = byte(&mut ip)?;
        let (dist, len);
        if t < 16 {
            if state == 0 {
                let n = if t == 0 { ext(&mut ip, 18)? } else { t + 3 };
                literals(&mut ip, &mut op, out, n)?;
                state = 4;
                continue;
            }
            let h = byte(&mut ip)?;
            if state == 4 {
                dist = (h << 2) + (t >> 2) + 2049;
                len = 3;
            } else {
                dist = (h << 2) + (t >> 2) + 1;
                len = 2;
            }
            copy_match(at, &mut op, out, dist, len)?;
            state = t & 3;
        } else if t < 32 {
            len = if t & 7 == 0 { ext(&mut ip, 2 + 7)? } else { 2 + (t & 7) };
            let lo = byte(&mut ip)?;
            let hi = byte(&mut ip)?;
            let d = (hi << 8 | lo) >> 2;
            let s = lo & 3;
            let dist = 16384 + ((t & 8) << 11) + d;
            if dist == 16384 {
                // The end marker.
                return Ok(op);
            }
            copy_match(at, &mut op, out, dist, len)?;
            state = s;
        } else if t < 64 {
            len = if t & 31 == 0 { ext(&mut ip, 2 + 31)? } else { 2 + (t & 31) };
            let lo = byte(&mut ip)?;
            let hi = byte(&mut ip)?;
            dist = ((hi << 8 | lo) >> 2) + 1;
            copy_match(at, &mut op, out, dist, len)?;
            state = lo & 3;
        } else {
            len = if t >= 128 { 5 + ((t >> 5) & 3) } else { 3 + ((t >> 5) & 1) };
            let h = byte(&mut ip)?;
            dist = (h << 3) + ((t >> 2) & 7) + 1;
            copy_match(at, &mut op, out, dist, len)?;
            state = t & 3;
        }
        if state != 0 {
            literals(&mut ip, &mut op, out, state)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_matches_and_end() {
        // 22 literals: first byte 17 + 5 = "hello"; then an M2 match of 4 bytes at
        // distance 5 ("hell"), then the end marker.
        let mut s = alloc::vec![17 + 5];
        s.extend_from_slice(b"hello");
        // M2: 0 1 L D D D S S with L=1 (len 4), D=4 (dist-1 = 4 => H=0), S=0.
        s.push(0b0110_0000 | (4 << 2));
        s.push(0);
        s.extend_from_slice(&[0x11, 0, 0]);
        let mut out = [0u8; 64];
        assert_eq!(decompress(&s, &mut out), Ok(9));
        assert_eq!(&out[..9], b"hellohell");
        // The same into too small a buffer, or cut short: errors, no panic.
        assert_eq!(decompress(&s, &mut out[..6]).unwrap_err().kind, Lzo1xErrorKind::OutputFull);
        for n in 0..s.len() - 1 {
            assert_eq!(decompress(&s[..n], &mut out).unwrap_err().kind, Lzo1xErrorKind::Truncated);
        }
        // A match before the start.
        assert_eq!(
            decompress(&[17 + 1, b'x', 0x40 | (7 << 2), 9, 0x11, 0, 0], &mut out),
            Err(Lzo1xError { kind: Lzo1xErrorKind::BadDistance, at: 2 })
        );
    }

    #[test]
    fn overlapping_match() {
        // "ab" then an M2 match of 7 bytes at distance 2 ("ababab a").
        let mut s = alloc::vec![17 + 2];
        s.extend_from_slice(b"ab");
        // M2 with L = len - 1 = 6 needs 3 bits: 1 L L D D D S S (len 5..8): t >= 128.
        // len = 5 + ((t >> 5) & 3) = 7 => bits 6..5 = 2; dist = (h << 3) + ((t >> 2) & 7) + 1 = 2.
        s.push(0x80 | (2 << 5) | (1 << 2));
        s.push(0);
        s.extend_from_slice(&[0x11, 0, 0]);
        let mut out = [0u8; 16];
        assert_eq!(decompress(&s, &mut out), Ok(9));
        assert_eq!(&out[..9], b"ababababa");
    }
}
