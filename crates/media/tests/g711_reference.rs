//! G.711 conformance: every linear input and every code of both laws against independent
//! reference implementations, compiled from C and run by this test.
//!
//! - `oracle/g191_g711.c`: a transcription of the ITU-T G.191 reference `g711.c`, the normative
//!   oracle. Our codec must agree with it on all 65,536 inputs and 256 codes of each law.
//! - `oracle/spandsp_g711.c`: spandsp's inline G.711 (Debian's `libspandsp-dev`), a second
//!   opinion. It agrees with G.191 everywhere except for µ-law encoding of 127 negative inputs,
//!   where its `0x84 - x` bias lands exactly on a decision level that G.191's one's complement
//!   (`~x >> 2`) keeps below. The test pins that difference down to those inputs.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

use std::path::{Path, PathBuf};
use std::process::Command;

use happ_media::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};

struct Tables {
    alaw_enc: Vec<u8>,
    ulaw_enc: Vec<u8>,
    alaw_dec: Vec<i16>,
    ulaw_dec: Vec<i16>,
}

fn run_oracle(source: &str) -> Tables {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle");
    // One binary per process and thread: tests may run at once, in threads or processes.
    let unique = format!("{}-{}-{:?}", source.trim_end_matches(".c"), std::process::id(), std::thread::current().id());
    let exe: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique.replace(['(', ')'], ""));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out =
        Command::new(&cc).args(["-O1", "-o"]).arg(&exe).arg(dir.join(source)).output().unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(out.status.success(), "compiling {source} failed (spandsp needs Debian's libspandsp-dev):\n{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().expect("run the oracle");
    let _ = std::fs::remove_file(&exe);
    assert!(run.status.success());
    let b = run.stdout;
    assert_eq!(b.len(), 2 * 65_536 + 2 * 512, "oracle output size");
    let words = |s: &[u8]| s.chunks_exact(2).map(|w| i16::from_le_bytes([w[0], w[1]])).collect();
    Tables { alaw_enc: b[..65_536].to_vec(), ulaw_enc: b[65_536..131_072].to_vec(), alaw_dec: words(&b[131_072..131_584]), ulaw_dec: words(&b[131_584..]) }
}

fn ours() -> Tables {
    let pcm: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let codes: Vec<u8> = (0..=255).collect();
    let mut t = Tables { alaw_enc: vec![0; 65_536], ulaw_enc: vec![0; 65_536], alaw_dec: vec![0; 256], ulaw_dec: vec![0; 256] };
    alaw_encode(&pcm, &mut t.alaw_enc);
    ulaw_encode(&pcm, &mut t.ulaw_enc);
    alaw_decode(&codes, &mut t.alaw_dec);
    ulaw_decode(&codes, &mut t.ulaw_dec);
    t
}

fn mismatches<T: PartialEq + Copy>(a: &[T], b: &[T]) -> Vec<usize> {
    a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect()
}

fn check_against_g191() {
    let reference = run_oracle("g191_g711.c");
    let t = ours();
    assert_eq!(mismatches(&t.alaw_enc, &reference.alaw_enc), Vec::<usize>::new(), "A-law encode");
    assert_eq!(mismatches(&t.ulaw_enc, &reference.ulaw_enc), Vec::<usize>::new(), "µ-law encode");
    assert_eq!(t.alaw_dec, reference.alaw_dec, "A-law decode");
    assert_eq!(t.ulaw_dec, reference.ulaw_dec, "µ-law decode");
}

#[test]
fn bit_exact_with_g191_reference() {
    check_against_g191();
}

#[test]
fn bit_exact_with_g191_reference_on_baseline_kernels() {
    happ_media::set_simd_enabled(false);
    check_against_g191();
    happ_media::set_simd_enabled(true);
}

/// Whether spandsp's µ-law encoder places negative `x` one level above G.191: its magnitude
/// `132 - x` sits exactly on a multiple of the quantisation step of its segment.
fn spandsp_rounds_up(x: i16) -> bool {
    if x >= 0 {
        return false;
    }
    let v = 132 - i32::from(x);
    let seg = (31 - (v | 0xFF).leading_zeros()) as i32 - 7;
    seg < 8 && v % (1 << (seg + 3)) == 0
}

#[test]
fn spandsp_agrees_except_its_known_ulaw_rounding() {
    let spandsp = run_oracle("spandsp_g711.c");
    let t = ours();
    assert_eq!(mismatches(&t.alaw_enc, &spandsp.alaw_enc), Vec::<usize>::new(), "A-law encode");
    assert_eq!(t.alaw_dec, spandsp.alaw_dec, "A-law decode");
    assert_eq!(t.ulaw_dec, spandsp.ulaw_dec, "µ-law decode");

    let diff = mismatches(&t.ulaw_enc, &spandsp.ulaw_enc);
    let expected: Vec<usize> = (i16::MIN..=i16::MAX).enumerate().filter(|&(_, x)| spandsp_rounds_up(x)).map(|(i, _)| i).collect();
    assert_eq!(diff.len(), 127);
    assert_eq!(diff, expected);
    for i in diff {
        // Negative codes count magnitude down from 0x7F: spandsp is exactly one level larger.
        assert_eq!(t.ulaw_enc[i] - 1, spandsp.ulaw_enc[i], "input {}", i as i32 - 32_768);
    }
}
