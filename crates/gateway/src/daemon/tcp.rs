//! SIP over TCP: one task per connection, framing messages with the sans-IO
//! [`StreamDecoder`] and handing them to the SIP task; writes go through the connection's
//! queue. Outgoing connections are opened on demand, messages queued meanwhile.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use happ_sip::framing::{Frame, PONG, StreamDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

/// Messages from connection tasks to the SIP task.
#[derive(Debug)]
pub enum TcpIn {
    /// A whole SIP message from `peer`.
    Message {
        /// The remote address.
        peer: SocketAddr,
        /// The message.
        bytes: Vec<u8>,
    },
    /// The connection to `peer` closed, failed or could not be opened.
    Closed {
        /// The remote address.
        peer: SocketAddr,
        /// Why, when it failed.
        error: Option<String>,
    },
}

/// Queued writes per connection.
const QUEUE: usize = 256;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The open connections, by remote address.
#[derive(Default)]
pub struct Connections {
    writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
}

impl Connections {
    /// Queues `bytes` for `peer`, connecting first when there is no connection.
    pub fn send(&mut self, peer: SocketAddr, bytes: Vec<u8>, inbound: &mpsc::Sender<TcpIn>) {
        if let Some(w) = self.writers.get(&peer)
            && w.try_send(bytes.clone()).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        // A fresh queue cannot be full.
        let _ = tx.try_send(bytes);
        self.writers.insert(peer, tx);
        let inbound = inbound.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
                Ok(Ok(stream)) => serve(stream, peer, rx, inbound).await,
                Ok(Err(e)) => {
                    let _ = inbound.send(TcpIn::Closed { peer, error: Some(e.to_string()) }).await;
                }
                Err(_) => {
                    let _ = inbound.send(TcpIn::Closed { peer, error: Some("connect timed out".into()) }).await;
                }
            }
        });
    }

    /// Serves a connection accepted from `peer`.
    pub fn accepted(&mut self, stream: TcpStream, peer: SocketAddr, inbound: &mpsc::Sender<TcpIn>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.writers.insert(peer, tx);
        tokio::spawn(serve(stream, peer, rx, inbound.clone()));
    }

    /// Forgets a closed connection.
    pub fn closed(&mut self, peer: SocketAddr) {
        self.writers.remove(&peer);
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, mut writes: mpsc::Receiver<Vec<u8>>, inbound: mpsc::Sender<TcpIn>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let error = loop {
        tokio::select! {
            r = reader.read(&mut buf) => match r {
                Ok(0) => break None,
                Ok(n) => {
                    decoder.push(&buf[..n]);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(Frame::Message(bytes))) => {
                                if inbound.send(TcpIn::Message { peer, bytes }).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Some(Frame::Ping)) => {
                                if writer.write_all(PONG).await.is_err() {
                                    break;
                                }
                            }
                            Ok(Some(Frame::Pong)) => {}
                            Ok(None) => break,
                            Err(e) => {
                                debug!(%peer, error = %e, "closing a TCP connection that cannot be framed");
                                let _ = inbound.send(TcpIn::Closed { peer, error: Some(e.to_string()) }).await;
                                return;
                            }
                        }
                    }
                }
                Err(e) => break Some(e.to_string()),
            },
            w = writes.recv() => match w {
                Some(bytes) => {
                    if let Err(e) = writer.write_all(&bytes).await {
                        break Some(e.to_string());
                    }
                }
                None => break None,
            },
        }
    };
    let _ = inbound.send(TcpIn::Closed { peer, error }).await;
}
