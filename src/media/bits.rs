//! MSB-first bit reading shared by the parameter-set parsers (H.264 and H.265 SPS, AV1
//! sequence header).
//!
//! Every value comes from the network, so every read is bounds-checked and Exp-Golomb codes
//! longer than 32 bits are refused instead of shifted into overflow.

use thiserror::Error;

/// Why a bit-level read failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum BitsError {
    #[error("truncated")]
    Truncated,
    #[error("exp-golomb code too long")]
    CodeTooLong,
}

impl BitsError {
    /// The message as a static string, for error enums that carry `&'static str`.
    pub fn as_str(self) -> &'static str {
        match self {
            BitsError::Truncated => "truncated",
            BitsError::CodeTooLong => "exp-golomb code too long",
        }
    }
}

/// Reads bits from a byte slice, most significant bit first.
pub struct BitReader<'a> {
    data: &'a [u8],
    bit_pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, bit_pos: 0 }
    }

    pub fn bit(&mut self) -> Result<u32, BitsError> {
        let byte = *self
            .data
            .get(self.bit_pos / 8)
            .ok_or(BitsError::Truncated)?;
        let shift = 7 - (self.bit_pos % 8);
        self.bit_pos += 1;
        Ok(u32::from((byte >> shift) & 1))
    }

    pub fn flag(&mut self) -> Result<bool, BitsError> {
        Ok(self.bit()? == 1)
    }

    /// Up to 32 bits as an unsigned number.
    pub fn bits(&mut self, count: u32) -> Result<u32, BitsError> {
        let mut value = 0u64;
        for _ in 0..count.min(32) {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Ok(value as u32)
    }

    /// Skips `count` bits.
    pub fn skip(&mut self, count: usize) -> Result<(), BitsError> {
        let end = self.bit_pos.saturating_add(count);
        if end > self.data.len().saturating_mul(8) {
            return Err(BitsError::Truncated);
        }
        self.bit_pos = end;
        Ok(())
    }

    /// Unsigned Exp-Golomb code (H.264/H.265 `ue(v)`; AV1 `uvlc()` has the same form).
    pub fn ue(&mut self) -> Result<u32, BitsError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(BitsError::CodeTooLong);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// Signed Exp-Golomb code (`se(v)`).
    pub fn se(&mut self) -> Result<i64, BitsError> {
        let code = self.ue()?;
        let magnitude = i64::from(code.div_ceil(2));
        Ok(if code % 2 == 1 { magnitude } else { -magnitude })
    }
}

/// The RBSP of a NAL unit: its bytes without emulation prevention (`00 00 03` → `00 00`).
pub fn strip_emulation_prevention(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &byte in nal {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_exp_golomb() {
        // 1 | 010 (ue=1) | 011 (ue=2) | 00100 (ue=3) | 1111 1111 ...
        let data = [0b1010_0110, 0b0100_1111, 0xff, 0xff, 0xff, 0xff];
        let mut r = BitReader::new(&data);
        assert!(r.flag().unwrap());
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.bits(32).unwrap(), u32::MAX);
        assert_eq!(r.bits(8), Err(BitsError::Truncated));
    }

    #[test]
    fn long_codes_and_skips_past_the_end_are_errors() {
        let zeros = [0u8; 8];
        assert_eq!(BitReader::new(&zeros).ue(), Err(BitsError::CodeTooLong));
        let mut r = BitReader::new(&zeros);
        assert_eq!(r.skip(65), Err(BitsError::Truncated));
        assert_eq!(r.skip(64), Ok(()));
    }

    #[test]
    fn strips_emulation_prevention() {
        assert_eq!(
            strip_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
    }
}
