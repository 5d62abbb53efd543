//! Audio formats that providers accept and produce, and the choice that avoids work.
//!
//! A telephone call carries 8 kHz G.711 (µ-law or A-law). Every provider that takes that as is
//! saves the bridge a decode and a resample per frame, and the provider gets the exact bytes the
//! caller sent; one that takes 8 kHz PCM saves the resample. [`negotiate`] picks, from what a
//! provider declares, the format that costs the bridge least.

/// How samples are coded. Always mono.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Signed 16-bit linear PCM, little-endian on the wire.
    Pcm16,
    /// G.711 µ-law (PCMU), one byte per sample.
    Mulaw,
    /// G.711 A-law (PCMA), one byte per sample.
    Alaw,
}

/// An audio format: encoding and sample rate, mono.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    /// Sample coding.
    pub encoding: Encoding,
    /// Samples per second.
    pub sample_rate: u32,
}

impl AudioFormat {
    /// 8 kHz µ-law, as most calls carry it.
    pub const MULAW_8K: Self = Self { encoding: Encoding::Mulaw, sample_rate: 8_000 };
    /// 8 kHz A-law.
    pub const ALAW_8K: Self = Self { encoding: Encoding::Alaw, sample_rate: 8_000 };
    /// 8 kHz linear PCM.
    pub const PCM_8K: Self = Self { encoding: Encoding::Pcm16, sample_rate: 8_000 };
    /// 16 kHz linear PCM, what most recognisers prefer.
    pub const PCM_16K: Self = Self { encoding: Encoding::Pcm16, sample_rate: 16_000 };
    /// 24 kHz linear PCM, what OpenAI's speech endpoint produces.
    pub const PCM_24K: Self = Self { encoding: Encoding::Pcm16, sample_rate: 24_000 };

    /// Bytes per sample on the wire.
    pub fn bytes_per_sample(self) -> usize {
        match self.encoding {
            Encoding::Pcm16 => 2,
            Encoding::Mulaw | Encoding::Alaw => 1,
        }
    }

    /// Bytes in `millis` milliseconds of audio (rounded down).
    pub fn bytes_per_millis(self, millis: u32) -> usize {
        (u64::from(self.sample_rate) * u64::from(millis) / 1000) as usize * self.bytes_per_sample()
    }
}

/// What the bridge must do to audio between the call's format and a provider's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// The provider-side format chosen.
    pub format: AudioFormat,
    /// G.711 must be decoded to PCM or PCM encoded to G.711.
    pub transcode: bool,
    /// The sample rate differs, a resampler is needed.
    pub resample: bool,
}

/// Picks, among the formats a provider declares (`offered`), the one cheapest to convert to or from
/// the call's format `call`: the same format (no work) before the same rate in another encoding
/// (a G.711 table lookup) before another rate (a resampler, the costly step). Among equals the
/// provider's order wins, so a provider lists its preferred format first. `None` when the provider
/// declares nothing.
pub fn negotiate(call: AudioFormat, offered: &[AudioFormat]) -> Option<Conversion> {
    offered
        .iter()
        .enumerate()
        .map(|(i, &format)| {
            let resample = format.sample_rate != call.sample_rate;
            let transcode = format.encoding != call.encoding;
            // Transcoding between µ-law and A-law goes through PCM: it counts as a transcode too.
            (resample, transcode, i, Conversion { format, transcode, resample })
        })
        .min_by_key(|&(resample, transcode, i, _)| (resample, transcode, i))
        .map(|(_, _, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_needs_no_work() {
        let c = negotiate(AudioFormat::MULAW_8K, &[AudioFormat::PCM_16K, AudioFormat::PCM_8K, AudioFormat::MULAW_8K]).expect("a format");
        assert_eq!(c, Conversion { format: AudioFormat::MULAW_8K, transcode: false, resample: false });
    }

    #[test]
    fn same_rate_beats_provider_preference_for_higher_rate() {
        let c = negotiate(AudioFormat::ALAW_8K, &[AudioFormat::PCM_16K, AudioFormat::PCM_8K]).expect("a format");
        assert_eq!(c, Conversion { format: AudioFormat::PCM_8K, transcode: true, resample: false });
    }

    #[test]
    fn resample_only_when_the_provider_insists() {
        let c = negotiate(AudioFormat::MULAW_8K, &[AudioFormat::PCM_24K, AudioFormat::PCM_16K]).expect("a format");
        assert_eq!(c, Conversion { format: AudioFormat::PCM_24K, transcode: true, resample: true });
        assert_eq!(negotiate(AudioFormat::MULAW_8K, &[]), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(AudioFormat::MULAW_8K.bytes_per_millis(20), 160);
        assert_eq!(AudioFormat::PCM_16K.bytes_per_millis(20), 640);
    }
}
