//! Audio between the call and the providers: synthesised chunks to PCM at the call's push rate,
//! and the call's frames to what a recogniser takes.

use happ_media::Law;
use happ_media::resample::Resampler;
use happ_speech::{AudioFormat, Encoding};

/// Turns a synthesiser's chunks (little-endian PCM that may end mid-sample, or G.711 bytes) into
/// PCM at the push rate.
pub struct ChunkDecoder {
    format: AudioFormat,
    /// The first byte of a sample split between two chunks.
    odd: Option<u8>,
    resampler: Option<Resampler>,
    pcm: Vec<i16>,
    out: Vec<i16>,
}

impl ChunkDecoder {
    /// A decoder of `format` to PCM at `push_rate`.
    pub fn new(format: AudioFormat, push_rate: u32) -> Result<ChunkDecoder, String> {
        let resampler = if format.sample_rate == push_rate {
            None
        } else {
            Some(Resampler::new(format.sample_rate, push_rate).map_err(|e| format!("{} Hz to {push_rate} Hz: {e}", format.sample_rate))?)
        };
        Ok(ChunkDecoder { format, odd: None, resampler, pcm: Vec::new(), out: Vec::new() })
    }

    /// The samples of `data`.
    pub fn decode(&mut self, data: &[u8]) -> &[i16] {
        self.pcm.clear();
        match self.format.encoding {
            Encoding::Pcm16 => {
                let mut bytes = data;
                if let Some(first) = self.odd.take()
                    && let Some((&second, rest)) = bytes.split_first()
                {
                    self.pcm.push(i16::from_le_bytes([first, second]));
                    bytes = rest;
                }
                let pairs = bytes.chunks_exact(2);
                self.odd = pairs.remainder().first().copied();
                self.pcm.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
            }
            Encoding::Mulaw => self.pcm.extend(data.iter().map(|&c| Law::Ulaw.decode_sample(c))),
            Encoding::Alaw => self.pcm.extend(data.iter().map(|&c| Law::Alaw.decode_sample(c))),
        }
        match &mut self.resampler {
            None => &self.pcm,
            Some(r) => {
                self.out.resize(r.max_output(self.pcm.len()), 0);
                let n = r.process(&self.pcm, &mut self.out);
                &self.out[..n]
            }
        }
    }
}

/// The law of a G.711 format.
pub fn law(format: AudioFormat) -> Option<Law> {
    match format.encoding {
        Encoding::Mulaw => Some(Law::Ulaw),
        Encoding::Alaw => Some(Law::Alaw),
        Encoding::Pcm16 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_split_between_chunks_is_joined() {
        let mut d = ChunkDecoder::new(AudioFormat::PCM_8K, 8_000).expect("same rate");
        let bytes: Vec<u8> = [1000i16, -2000, 3000].iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(d.decode(&bytes[..3]), [1000]);
        assert_eq!(d.decode(&bytes[3..]), [-2000, 3000]);
        let mut u = ChunkDecoder::new(AudioFormat::MULAW_8K, 8_000).expect("same rate");
        assert_eq!(u.decode(&[0xFF, 0x7F]), [0, 0]);
        let mut up = ChunkDecoder::new(AudioFormat::PCM_8K, 16_000).expect("8 to 16 kHz");
        let n = up.decode(&vec![0u8; 320]).len();
        assert!((300..=340).contains(&n), "{n}");
    }
}
