//! The demo call's recording: two 8 kHz channels on one timeline, caller left and gateway
//! right, written as a stereo 16-bit WAV.
//!
//! Audio is placed by its sample offset from the start of the call's media (an RTP timestamp
//! difference at 8 kHz is exactly that), so the two channels stay aligned whatever the packet
//! timing; where nothing was placed there is silence.

use std::path::Path;

/// The sample rate of both channels.
pub const RATE: u32 = 8_000;

/// Samples in one 20 ms frame.
pub const FRAME: usize = RATE as usize / 50;

/// The longest recording kept (an offset beyond it is a bogus timestamp, not a long call).
const MAX_SAMPLES: usize = RATE as usize * 600;

/// Which side of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// What the caller sent (left).
    Caller,
    /// What the gateway sent back (right).
    Gateway,
}

/// Both channels, growing as audio is placed.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    caller: Vec<i16>,
    gateway: Vec<i16>,
}

impl Recording {
    /// An empty recording.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `pcm` at `offset` samples from the start on `channel`, over whatever was there.
    /// Audio past ten minutes is dropped.
    pub fn put(&mut self, channel: Channel, offset: usize, pcm: &[i16]) {
        if offset >= MAX_SAMPLES {
            return;
        }
        let pcm = &pcm[..pcm.len().min(MAX_SAMPLES - offset)];
        let track = match channel {
            Channel::Caller => &mut self.caller,
            Channel::Gateway => &mut self.gateway,
        };
        let end = offset + pcm.len();
        if track.len() < end {
            track.resize(end, 0);
        }
        track[offset..end].copy_from_slice(pcm);
    }

    /// Samples per channel: the longer of the two, rounded up to whole frames.
    pub fn len(&self) -> usize {
        self.caller.len().max(self.gateway.len()).div_ceil(FRAME) * FRAME
    }

    /// Whether nothing was placed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sample at `index` of `channel` (silence where nothing was placed).
    pub fn sample(&self, channel: Channel, index: usize) -> i16 {
        let track = match channel {
            Channel::Caller => &self.caller,
            Channel::Gateway => &self.gateway,
        };
        track.get(index).copied().unwrap_or(0)
    }

    /// Writes a stereo 16-bit WAV at 8 kHz: caller left, gateway right.
    pub fn write_wav(&self, path: &Path) -> Result<(), String> {
        let spec = hound::WavSpec { channels: 2, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let fail = |e: hound::Error| format!("cannot write {}: {e}", path.display());
        let mut w = hound::WavWriter::create(path, spec).map_err(fail)?;
        for i in 0..self.len() {
            w.write_sample(self.sample(Channel::Caller, i)).map_err(fail)?;
            w.write_sample(self.sample(Channel::Gateway, i)).map_err(fail)?;
        }
        w.finalize().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> (hound::WavSpec, Vec<(i16, i16)>) {
        let mut r = hound::WavReader::open(path).expect("test setup");
        let spec = r.spec();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.expect("a sample")).collect();
        (spec, s.chunks(2).map(|c| (c[0], c[1])).collect())
    }

    #[test]
    fn channels_are_aligned_by_offset_with_silence_in_between() {
        let mut rec = Recording::new();
        rec.put(Channel::Caller, 0, &[100; FRAME]);
        rec.put(Channel::Gateway, 2 * FRAME, &[-200; FRAME]);
        rec.put(Channel::Caller, 3 * FRAME, &[300; FRAME / 2]);
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("call.wav");
        rec.write_wav(&path).expect("test setup");
        let (spec, frames) = read(&path);
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8_000, 16));
        assert_eq!(frames.len(), 4 * FRAME, "whole frames, as long as the longer channel");
        for (i, &(l, r)) in frames.iter().enumerate() {
            let want_l = match i / FRAME {
                0 => 100,
                3 if i < 3 * FRAME + FRAME / 2 => 300,
                _ => 0,
            };
            let want_r = if i / FRAME == 2 { -200 } else { 0 };
            assert_eq!((l, r), (want_l, want_r), "sample {i}");
        }
    }

    #[test]
    fn later_audio_overwrites_and_out_of_order_frames_land_in_place() {
        let mut rec = Recording::new();
        rec.put(Channel::Gateway, FRAME, &[2; FRAME]);
        rec.put(Channel::Gateway, 0, &[1; FRAME]);
        rec.put(Channel::Gateway, FRAME, &[3; FRAME]);
        assert_eq!(rec.len(), 2 * FRAME);
        assert_eq!((rec.sample(Channel::Gateway, 0), rec.sample(Channel::Gateway, FRAME)), (1, 3));
        assert_eq!(rec.sample(Channel::Caller, 5), 0);
    }

    #[test]
    fn a_bogus_offset_does_not_grow_the_recording() {
        let mut rec = Recording::new();
        rec.put(Channel::Caller, usize::MAX / 2, &[1; FRAME]);
        rec.put(Channel::Caller, MAX_SAMPLES - 10, &[1; FRAME]);
        assert_eq!(rec.len(), MAX_SAMPLES);
        assert!(Recording::new().is_empty());
    }
}
