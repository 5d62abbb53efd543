//! A small authoritative DNS server on loopback, for tests of SRV and address lookups: it
//! answers A and SRV queries over UDP from a fixed table, with NXDOMAIN for names it does not
//! know and an empty answer for a known name without records of the type asked. Messages are
//! read and written with `hickory-proto`, the resolver's own wire code.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A record of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// A service location (RFC 2782).
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Among equal priorities, heavier is chosen more often.
        weight: u16,
        /// The port.
        port: u16,
        /// The host name.
        target: String,
    },
}

/// A running server; stopped when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    asked: Arc<Mutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl DnsServer {
    /// Serves `records` (name, answer) on a free loopback UDP port.
    pub fn start(records: Vec<(&str, Answer)>) -> std::io::Result<DnsServer> {
        DnsServer::start_on(0, records)
    }

    /// Serves `records` on this loopback UDP port (0: a free one), for a server that must come
    /// up at an address given out before.
    pub fn start_on(port: u16, records: Vec<(&str, Answer)>) -> std::io::Result<DnsServer> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, port))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let table: Vec<(Name, Answer)> = records
            .into_iter()
            .map(|(n, a)| Name::from_ascii(n).map(|n| (n, a)))
            .collect::<Result<_, _>>()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (st, log) = (stop.clone(), asked.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let reply = answer(&table, &query, &log);
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        Ok(DnsServer { addr, stop, asked, thread: Some(thread) })
    }

    /// Its address, for the resolver's configuration.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The questions asked so far, as `TYPE name` (`SRV _sip._udp.example.test.`).
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(table: &[(Name, Answer)], query: &Message, asked: &Mutex<Vec<String>>) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    let mut known = false;
    for q in &query.queries {
        asked.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{} {}", q.query_type(), q.name()));
        reply.add_query(q.clone());
        // Names compare case-insensitively.
        for (name, a) in table.iter().filter(|(n, _)| n == q.name()) {
            known = true;
            let rdata = match (a, q.query_type()) {
                (Answer::A(ip), RecordType::A) => RData::A(A(*ip)),
                (Answer::Srv { priority, weight, port, target }, RecordType::SRV) => match Name::from_ascii(target) {
                    Ok(t) => RData::SRV(SRV::new(*priority, *weight, *port, t)),
                    Err(_) => continue,
                },
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(name.clone(), 60, rdata));
        }
    }
    if !known {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_the_table() {
        let server = DnsServer::start(vec![
            ("sip.example.test.", Answer::A(Ipv4Addr::new(127, 0, 0, 9))),
            ("_sip._udp.example.test.", Answer::Srv { priority: 10, weight: 5, port: 5070, target: "sip.example.test.".into() }),
        ])
        .expect("start");
        let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        client.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let ask = |name: &str, kind: RecordType| {
            let mut q = Message::query();
            q.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("name"), kind));
            client.send_to(&q.to_vec().expect("encode"), server.addr()).expect("send");
            let mut buf = [0u8; 4096];
            let n = client.recv(&mut buf).expect("reply");
            Message::from_vec(&buf[..n]).expect("decode")
        };
        let srv = ask("_sip._udp.example.test.", RecordType::SRV);
        assert!(matches!(&srv.answers[0].data, RData::SRV(s) if s.port == 5070 && s.priority == 10));
        let a = ask("sip.example.test.", RecordType::A);
        assert!(matches!(&a.answers[0].data, RData::A(A(ip)) if *ip == Ipv4Addr::new(127, 0, 0, 9)));
        assert!(ask("sip.example.test.", RecordType::AAAA).answers.is_empty());
        assert_eq!(ask("nowhere.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(server.asked().len(), 4);
    }
}
