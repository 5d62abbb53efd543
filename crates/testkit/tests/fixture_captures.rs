//! The committed RTP captures are exactly what the speech fixtures produce, and are valid RTP to
//! an independent reader (tshark). Regenerate them with `HAPP_UPDATE_FIXTURES=1`.

use std::process::Command;

use happ_media::Law;
use happ_media::rtp::RtpPacket;
use happ_testkit::{captures, fixtures_dir, pcap};

#[test]
fn committed_captures_match_the_fixtures() {
    let dir = fixtures_dir().join("rtp");
    let update = std::env::var_os("HAPP_UPDATE_FIXTURES").is_some_and(|v| v == "1");
    for (name, bytes) in captures::all() {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, &bytes).expect("write fixture");
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with HAPP_UPDATE_FIXTURES=1)", path.display()));
        assert!(committed == bytes, "{name} differs from what the WAV fixtures produce (run with HAPP_UPDATE_FIXTURES=1)");
    }
}

#[test]
fn captures_decode_back_to_the_speech() {
    let file = std::fs::read(fixtures_dir().join("rtp/jfk_pcmu.pcap")).expect("fixture");
    let datagrams = pcap::read_udp(&file).expect("valid pcap");
    let speech = captures::jfk_8k();
    assert_eq!(datagrams.len(), speech.len().div_ceil(160));
    let mut decoded = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        assert_eq!((d.src, d.dst), (captures::SRC, captures::DST));
        let p = RtpPacket::parse(&d.payload).expect("RTP");
        assert_eq!(p.seq(), captures::FIRST_SEQ + i as u16);
        assert_eq!(p.timestamp(), 160 * i as u32);
        assert_eq!(p.payload_type(), 0);
        let mut pcm = [0i16; 160];
        Law::Ulaw.decode(p.payload(), &mut pcm);
        decoded.extend_from_slice(&pcm);
    }
    // G.711 keeps the speech: SNR well above 30 dB.
    let (mut err, mut power) = (0f64, 0f64);
    for (a, b) in speech.iter().zip(&decoded) {
        err += (f64::from(*a) - f64::from(*b)).powi(2);
        power += f64::from(*a).powi(2);
    }
    let snr = 10.0 * (power / err).log10();
    assert!(snr > 30.0, "{snr:.1} dB");
}

#[test]
fn tshark_reads_the_captures_as_rtp() {
    for (name, pt, codec) in [("jfk_pcma.pcap", "8", "PCMA"), ("digits_pcma.pcap", "8", "PCMA"), ("jfk_pcmu.pcap", "0", "PCMU")] {
        let path = fixtures_dir().join("rtp").join(name);
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&path)
            .args([
                "-d",
                "udp.port==40002,rtp",
                "-T",
                "fields",
                "-e",
                "rtp.seq",
                "-e",
                "rtp.p_type",
                "-e",
                "udp.checksum.status",
                "-o",
                "udp.check_checksum:TRUE",
            ])
            .output()
            .expect("tshark runs (Debian package tshark, installed by .ci/run)");
        assert!(out.status.success(), "tshark failed on {name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        assert!(rows.len() > 50, "{name}: {} packets", rows.len());
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r[0], (captures::FIRST_SEQ as usize + i).to_string(), "{name} packet {i}");
            assert_eq!(r[1], pt, "{name}: payload type for {codec}");
            assert_eq!(r[2], "1", "{name} packet {i}: UDP checksum (tshark status 1 = good)");
        }
    }
}
