//! `happ-gateway codec {encode,decode} --law {alaw,ulaw}`: stdin to stdout, streamed.

use std::io::{self, BufWriter, ErrorKind, Read, Write};

use happ_media::Law;

use crate::cli::{CodecArgs, CodecDirection};

/// Bytes read per step.
const CHUNK: usize = 64 * 1024;

pub fn run(args: &CodecArgs) -> Result<(), String> {
    let law = Law::from(args.law);
    let stdin = io::stdin();
    let stdout = io::stdout();
    let result = convert(stdin.lock(), BufWriter::new(stdout.lock()), law, args.direction);
    match result {
        // A closed pipe (`| head`) ends the output; that is not an error.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) if e.kind() == ErrorKind::InvalidData => Err(e.to_string()),
        Err(e) => Err(format!("I/O error: {e}")),
        Ok(()) => Ok(()),
    }
}

fn convert(mut input: impl Read, mut output: impl Write, law: Law, direction: CodecDirection) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK + 1];
    let mut carry = 0usize; // a byte of a PCM sample split across reads
    let mut pcm = vec![0i16; CHUNK];
    let mut codes = vec![0u8; CHUNK];
    let mut bytes = vec![0u8; 2 * CHUNK];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf[carry..CHUNK + carry]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        let have = carry + n;
        match direction {
            CodecDirection::Encode => {
                let samples = have / 2;
                for (s, b) in pcm[..samples].iter_mut().zip(buf[..samples * 2].chunks_exact(2)) {
                    *s = i16::from_le_bytes([b[0], b[1]]);
                }
                law.encode(&pcm[..samples], &mut codes[..samples]);
                output.write_all(&codes[..samples])?;
                carry = have % 2;
                if carry == 1 {
                    buf[0] = buf[have - 1];
                }
            }
            CodecDirection::Decode => {
                law.decode(&buf[..have], &mut pcm[..have]);
                for (b, s) in bytes[..2 * have].chunks_exact_mut(2).zip(&pcm[..have]) {
                    b.copy_from_slice(&s.to_le_bytes());
                }
                output.write_all(&bytes[..2 * have])?;
            }
        }
    }
    output.flush()?;
    if carry != 0 {
        return Err(io::Error::new(ErrorKind::InvalidData, format!("input ends with half a sample ({total} bytes): 16-bit PCM has an even number of bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `step` bytes per read, to split samples across reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn encode_and_decode_stream_in_odd_pieces() {
        let pcm: Vec<i16> = (0..10_000).map(|i| ((i as f32 * 0.05).sin() * 12_000.0) as i16).collect();
        let raw: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        for law in [Law::Alaw, Law::Ulaw] {
            let mut encoded = Vec::new();
            convert(Trickle(&raw, 777), &mut encoded, law, CodecDirection::Encode).expect("encode");
            let mut expect = vec![0u8; pcm.len()];
            law.encode(&pcm, &mut expect);
            assert_eq!(encoded, expect);
            let mut decoded = Vec::new();
            convert(Trickle(&encoded, 333), &mut decoded, law, CodecDirection::Decode).expect("decode");
            assert_eq!(decoded.len(), raw.len());
        }
    }

    #[test]
    fn odd_byte_count_is_reported() {
        let err = convert(&[1u8, 2, 3][..], Vec::new(), Law::Alaw, CodecDirection::Encode).expect_err("odd");
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("half a sample (3 bytes)"), "{err}");
    }
}
