//! The detector allocates nothing per frame: a minute of noisy speech at each rate, frame by
//! frame, under a counting allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use happ_media::vad::eval::{Noise, Scene};
use happ_media::vad::{Vad, VadConfig, VadEvent};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls made on this thread while counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

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
        let (mut starts, mut frames) = (0, 0);
        COUNT.with(|c| c.set(0));
        COUNTING.with(|c| c.set(true));
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
        COUNTING.with(|c| c.set(false));
        assert_eq!(COUNT.with(Cell::get), 0, "{rate} Hz: allocations over {frames} frames");
        assert_eq!(starts, 10, "{rate} Hz: the workload exercises the turn machine");
    }
}

#[test]
fn the_decision_is_small() {
    assert!(size_of::<happ_media::vad::VadDecision>() <= 32, "{}", size_of::<happ_media::vad::VadDecision>());
}
