//! MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), the AAC sequence header.
//!
//! Only the fields a muxer and a status page need: object type, sample rate, channels.

use thiserror::Error;

/// Why an AudioSpecificConfig was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AscError {
    #[error("AudioSpecificConfig truncated")]
    Truncated,
    #[error("reserved sampling frequency index {0}")]
    BadFrequencyIndex(u8),
}

/// The parsed AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// 2 = AAC-LC, 5 = SBR (HE-AAC), 29 = PS.
    pub object_type: u8,
    pub sample_rate_hz: u32,
    /// 0 means "defined in the program config element"; 1..=7 per the table.
    pub channel_config: u8,
}

const SAMPLE_RATES_HZ: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

struct BitReader<'a> {
    data: &'a [u8],
    bit_pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, bits: u32) -> Result<u32, AscError> {
        let mut value = 0u32;
        for _ in 0..bits {
            let byte = *self.data.get(self.bit_pos / 8).ok_or(AscError::Truncated)?;
            let bit = (byte >> (7 - (self.bit_pos % 8))) & 1;
            value = (value << 1) | u32::from(bit);
            self.bit_pos += 1;
        }
        Ok(value)
    }
}

impl AudioSpecificConfig {
    /// Parses the leading fields of an AudioSpecificConfig.
    pub fn parse(data: &[u8]) -> Result<Self, AscError> {
        let mut reader = BitReader { data, bit_pos: 0 };
        let mut object_type = reader.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + reader.read(6)? as u8;
        }
        let frequency_index = reader.read(4)? as u8;
        let sample_rate_hz = if frequency_index == 15 {
            reader.read(24)?
        } else {
            *SAMPLE_RATES_HZ
                .get(usize::from(frequency_index))
                .ok_or(AscError::BadFrequencyIndex(frequency_index))?
        };
        let channel_config = reader.read(4)? as u8;
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate_hz,
            channel_config,
        })
    }

    /// Number of channels, 0 when the program config element would say.
    pub fn channels(&self) -> u8 {
        match self.channel_config {
            7 => 8,
            c => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lc_48k_stereo() {
        // 00010 0011 0010 000 = AAC-LC, 48 kHz, 2 channels.
        let asc = AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(asc.object_type, 2);
        assert_eq!(asc.sample_rate_hz, 48000);
        assert_eq!(asc.channels(), 2);
    }

    #[test]
    fn parses_explicit_frequency_and_escape_object_type() {
        // object type 31 escape + 6 bits (=10 → 42), freq index 15 + 24-bit 1000 Hz, 1 ch.
        let mut bits = String::from("11111");
        bits += "001010";
        bits += "1111";
        bits += &format!("{:024b}", 1000);
        bits += "0001";
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect();
        let asc = AudioSpecificConfig::parse(&bytes).unwrap();
        assert_eq!(asc.object_type, 42);
        assert_eq!(asc.sample_rate_hz, 1000);
        assert_eq!(asc.channel_config, 1);
    }

    #[test]
    fn refuses_truncated_and_reserved() {
        assert_eq!(AudioSpecificConfig::parse(&[]), Err(AscError::Truncated));
        assert_eq!(
            AudioSpecificConfig::parse(&[0x11]),
            Err(AscError::Truncated)
        );
        // freq index 13 is reserved.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AscError::BadFrequencyIndex(13))
        );
    }
}
