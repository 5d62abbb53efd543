//! A sans-IO reader of the streamed WAV that `espeak-ng --stdout` writes: a RIFF header whose
//! lengths are unknown (`0x7ffff000`-ish placeholders, since the audio is not synthesised yet),
//! then 16-bit mono PCM for as long as the process speaks.
//!
//! The lengths are therefore ignored: the data chunk runs to the end of the stream.

/// Where the reader is.
#[derive(Debug)]
enum State {
    /// Gathering the header until the `data` chunk starts.
    Header(Vec<u8>),
    /// In the samples; `carry` is the first byte of a sample split between two reads.
    Data { carry: Option<u8> },
}

/// Reads the header, then yields samples.
#[derive(Debug)]
pub(crate) struct WavReader {
    state: State,
    sample_rate: Option<u32>,
}

/// Headers larger than this are not what espeak-ng writes (44 bytes).
const MAX_HEADER: usize = 4096;

impl WavReader {
    pub(crate) fn new() -> Self {
        Self { state: State::Header(Vec::new()), sample_rate: None }
    }

    /// The sample rate, once the header was read.
    pub(crate) fn sample_rate(&self) -> Option<u32> {
        self.sample_rate
    }

    /// Feeds bytes read from the stream; appends the samples they complete to `samples`. An
    /// `Err` describes a header that is not 16-bit mono PCM WAV.
    pub(crate) fn push(&mut self, mut bytes: &[u8], samples: &mut Vec<i16>) -> Result<(), String> {
        if let State::Header(header) = &mut self.state {
            header.extend_from_slice(bytes);
            let Some((rate, data_at)) = parse_header(header)? else {
                if header.len() > MAX_HEADER {
                    return Err(format!("no data chunk in the first {MAX_HEADER} bytes"));
                }
                return Ok(());
            };
            self.sample_rate = Some(rate);
            let rest = header.split_off(data_at);
            self.state = State::Data { carry: None };
            return self.push(&rest, samples);
        }
        let State::Data { carry } = &mut self.state else { return Ok(()) };
        if let Some(low) = carry.take() {
            let Some((&high, rest)) = bytes.split_first() else { return Ok(()) };
            samples.push(i16::from_le_bytes([low, high]));
            bytes = rest;
        }
        let pairs = bytes.chunks_exact(2);
        *carry = pairs.remainder().first().copied();
        samples.extend(pairs.map(|p| i16::from_le_bytes([p[0], p[1]])));
        Ok(())
    }
}

/// The sample rate and the offset of the first sample, once the header up to the `data` chunk
/// is complete; `None` while more bytes are needed.
fn parse_header(h: &[u8]) -> Result<Option<(u32, usize)>, String> {
    if h.len() < 12 {
        return Ok(None);
    }
    if &h[0..4] != b"RIFF" || &h[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE stream".into());
    }
    let mut at = 12;
    let mut rate = None;
    loop {
        let Some(chunk) = h.get(at..at + 8) else { return Ok(None) };
        let id = &chunk[0..4];
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        let body = at + 8;
        if id == b"data" {
            let rate = rate.ok_or("data chunk before the fmt chunk")?;
            return Ok(Some((rate, body)));
        }
        let Some(data) = h.get(body..body + size) else { return Ok(None) };
        if id == b"fmt " {
            if data.len() < 16 {
                return Err("fmt chunk too short".into());
            }
            let le16 = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
            let (format, channels, bits) = (le16(0), le16(2), le16(14));
            if format != 1 || channels != 1 || bits != 16 {
                return Err(format!("expected 16-bit mono PCM, got format {format}, {channels} channels, {bits} bits"));
            }
            rate = Some(u32::from_le_bytes([data[4], data[5], data[6], data[7]])).filter(|&r| r > 0);
            if rate.is_none() {
                return Err("sample rate 0".into());
            }
        }
        // RIFF chunks are padded to an even size.
        at = body + size + (size & 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header espeak-ng 1.51 writes, byte for byte, then three samples.
    const STREAM: [u8; 50] = [
        b'R', b'I', b'F', b'F', 0x24, 0xf0, 0xff, 0x7f, b'W', b'A', b'V', b'E', b'f', b'm', b't', b' ', 0x10, 0, 0, 0, 1, 0, 1, 0, 0x22, 0x56, 0, 0, 0x44,
        0xac, 0, 0, 2, 0, 16, 0, b'd', b'a', b't', b'a', 0x00, 0xf0, 0xff, 0x7f, 0x01, 0x00, 0xff, 0xff, 0x00, 0x80,
    ];

    #[test]
    fn reads_espeak_output_split_anywhere() {
        for cut in 0..=STREAM.len() {
            let mut r = WavReader::new();
            let mut samples = Vec::new();
            r.push(&STREAM[..cut], &mut samples).expect("valid");
            r.push(&STREAM[cut..], &mut samples).expect("valid");
            assert_eq!(r.sample_rate(), Some(22_050), "cut at {cut}");
            assert_eq!(samples, [1, -1, i16::MIN], "cut at {cut}");
        }
    }

    #[test]
    fn refuses_what_is_not_mono_pcm() {
        let mut stereo = STREAM;
        stereo[22] = 2;
        assert!(WavReader::new().push(&stereo, &mut Vec::new()).is_err());
        assert!(WavReader::new().push(b"ID3\x04 not a wav at all", &mut Vec::new()).is_err());
    }
}
