//! The detector allocates nothing per frame: a minute of noisy speech at each rate, frame by
//! frame, under a counting allocator.

use happ_media::vad::eval::{Noise, Scene};
use happ_media::vad::{Vad, VadConfig, VadEvent};

mod alloc_count;

#[test]
fn processing_frames_allocates_nothing() {
    let digits: Vec<Vec<i16>> = (0..10).map(|d| happ_fixtures::digit(d, d % 4).samples).collect();
    for rate in [8_000u32, 16_000] {
        let clips: Vec<Vec<i16>> =
            digits.iter().map(|c| happ_fixtures::Audio { samples: c.clone(), rate: 8_000 }.resampled(rate).expect("supported").samples).collect();
        let refs: Vec<&[i16]> = clips.iter().map(Vec::as_slice).collect();
        let signal = Scene::new(&refs, rate, 5).noisy(Noise::White, Some(15.0), None, 5);
        let n = rate as usize / 50;
        let mut vad = Vad::new(VadConfig::new(rate)).expect("valid");
        let ((starts, frames), allocations) = alloc_count::allocations(|| {
            let (mut starts, mut frames) = (0, 0);
            for frame in signal.chunks_exact(n) {
                let d = vad.process(frame);
                starts += usize::from(matches!(d.event, Some(VadEvent::SpeechStart { .. })));
                frames += 1;
            }
            // Odd lengths take the same path: a short frame, a long one, an empty one.
            let _ = vad.process(&signal[..7]);
            let _ = vad.process(&signal[..3 * n]);
            let _ = vad.process(&[]);
            vad.reset();
            (starts, frames)
        });
        assert_eq!(allocations, 0, "{rate} Hz: allocations over {frames} frames");
        assert_eq!(starts, 10, "{rate} Hz: the workload exercises the turn machine");
    }
}

#[test]
fn the_decision_is_small() {
    assert!(size_of::<happ_media::vad::VadDecision>() <= 32, "{}", size_of::<happ_media::vad::VadDecision>());
}
