//! Free loopback ports for peers started by tests.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};

/// Counter spreading ports between tests of one process; each process starts at an offset
/// from its PID so that parallel test processes rarely collide, and every port is checked.
static NEXT: AtomicU16 = AtomicU16::new(0);

/// A loopback port free for both UDP and TCP right now (checked by binding both), from
/// 20000-59999. With `span` > 1, the `span` ports from it are all free (for a peer using a
/// range, like an RTP port and its RTCP port).
pub fn free_port(span: u16) -> u16 {
    let span = span.max(1);
    let base = 20_000 + (std::process::id() % 400) as u16 * 100;
    for _ in 0..10_000 {
        let offset = NEXT.fetch_add(span, Ordering::Relaxed) % 39_000;
        let port = 20_000 + (base - 20_000 + offset) % 39_000;
        if port.checked_add(span).is_none_or(|end| end > 59_999) {
            continue;
        }
        if (port..port + span).all(available) {
            return port;
        }
    }
    panic!("no free loopback port range of {span}");
}

fn available(port: u16) -> bool {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_free_and_distinct() {
        let a = super::free_port(2);
        let b = super::free_port(1);
        assert_ne!(a, b);
        assert!(super::available(a) && super::available(a + 1) && super::available(b));
    }
}
