//! Classic libpcap files of UDP over IPv4 over Ethernet: written for SIPp's `play_pcap_audio`,
//! read back to check captures.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

const ETHERNET: u32 = 1;
const ETH_HEADER: usize = 14;
const IP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// Writes a pcap file in memory.
#[derive(Debug)]
pub struct PcapWriter {
    out: Vec<u8>,
    ip_id: u16,
}

impl Default for PcapWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PcapWriter {
    /// A file with its global header (microsecond timestamps, Ethernet link type).
    pub fn new() -> Self {
        let mut out = Vec::new();
        out.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&ETHERNET.to_le_bytes());
        PcapWriter { out, ip_id: 1 }
    }

    /// Appends a UDP datagram captured at `at` (since the Unix epoch).
    pub fn udp(&mut self, at: Duration, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
        let udp_len = UDP_HEADER + payload.len();
        let ip_len = IP_HEADER + udp_len;
        let frame_len = ETH_HEADER + ip_len;
        self.out.extend_from_slice(&(at.as_secs() as u32).to_le_bytes());
        self.out.extend_from_slice(&at.subsec_micros().to_le_bytes());
        self.out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        self.out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        // Ethernet: locally administered MAC addresses, IPv4.
        self.out.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = [0u8; IP_HEADER];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // TTL
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&src.ip().octets());
        ip[16..20].copy_from_slice(&dst.ip().octets());
        let sum = checksum(&ip, 0);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        self.out.extend_from_slice(&ip);
        let mut udp = [0u8; UDP_HEADER];
        udp[0..2].copy_from_slice(&src.port().to_be_bytes());
        udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        // Pseudo-header, header and payload.
        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&src.ip().octets());
        pseudo.extend_from_slice(&dst.ip().octets());
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
        let partial = sum_words(&pseudo, sum_words(&udp, sum_words(payload, 0)));
        let udp_sum = match fold(partial) {
            0 => 0xFFFF,
            s => s,
        };
        udp[6..8].copy_from_slice(&udp_sum.to_be_bytes());
        self.out.extend_from_slice(&udp);
        self.out.extend_from_slice(payload);
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

fn sum_words(bytes: &[u8], mut acc: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for w in &mut chunks {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
}

fn checksum(bytes: &[u8], acc: u32) -> u16 {
    fold(sum_words(bytes, acc))
}

/// A UDP datagram read from a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Capture time since the Unix epoch.
    pub at: Duration,
    /// Source address.
    pub src: SocketAddrV4,
    /// Destination address.
    pub dst: SocketAddrV4,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Why a capture could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapError(pub String);

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad pcap: {}", self.0)
    }
}

impl std::error::Error for PcapError {}

/// Reads the IPv4/UDP datagrams of a little-endian, microsecond, Ethernet pcap file; other
/// frames are skipped.
pub fn read_udp(file: &[u8]) -> Result<Vec<Datagram>, PcapError> {
    let err = |m: &str| PcapError(m.to_owned());
    let header = file.get(..24).ok_or_else(|| err("shorter than the global header"))?;
    if header[..4] != 0xA1B2_C3D4u32.to_le_bytes() {
        return Err(err("not a little-endian microsecond pcap"));
    }
    if u32::from_le_bytes([header[20], header[21], header[22], header[23]]) != ETHERNET {
        return Err(err("link type is not Ethernet"));
    }
    let mut pos = 24;
    let mut out = Vec::new();
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    while pos < file.len() {
        let rec = file.get(pos..pos + 16).ok_or_else(|| err("truncated record header"))?;
        let at = Duration::new(u64::from(u32_at(rec, 0)), u32_at(rec, 4) * 1000);
        let caplen = u32_at(rec, 8) as usize;
        let frame = file.get(pos + 16..pos + 16 + caplen).ok_or_else(|| err("truncated record"))?;
        pos += 16 + caplen;
        if frame.len() < ETH_HEADER + IP_HEADER + UDP_HEADER || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[ETH_HEADER..];
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        if ip[9] != 17 || ip.len() < ihl + UDP_HEADER {
            continue;
        }
        let addr = |o: usize| Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
        let udp = &ip[ihl..];
        let port = |o: usize| u16::from_be_bytes([udp[o], udp[o + 1]]);
        let len = usize::from(port(4));
        let payload = udp.get(UDP_HEADER..len).ok_or_else(|| err("UDP length beyond the frame"))?;
        out.push(Datagram { at, src: SocketAddrV4::new(addr(12), port(0)), dst: SocketAddrV4::new(addr(16), port(2)), payload: payload.to_vec() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4002);
        let mut w = PcapWriter::new();
        w.udp(Duration::from_millis(1500), a, b, b"hello");
        w.udp(Duration::from_millis(1520), b, a, &[1, 2, 3, 4]);
        let got = read_udp(&w.finish()).expect("valid");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Datagram { at: Duration::from_millis(1500), src: a, dst: b, payload: b"hello".to_vec() });
        assert_eq!(got[1].src, b);
    }

    #[test]
    fn ip_checksum_verifies() {
        // The checksum over a header that includes its checksum is zero.
        let a = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 1), 1);
        let mut w = PcapWriter::new();
        w.udp(Duration::ZERO, a, a, &[0; 3]);
        let file = w.finish();
        let ip = &file[24 + 16 + 14..24 + 16 + 14 + 20];
        assert_eq!(checksum(ip, 0), 0);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read_udp(b"nope").is_err());
        let mut file = PcapWriter::new().finish();
        file.extend_from_slice(&[0; 10]);
        assert!(read_udp(&file).is_err());
    }
}
