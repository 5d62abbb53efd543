//! What the endpoint tells its driver: datagrams and stream writes to send, and events.

use std::net::SocketAddr;
use std::time::Duration;

use super::ids::{AccountId, LegId};
use crate::message::{Headers, NameAddr, Transport, Uri};

/// Bytes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Over which transport.
    pub transport: Transport,
    /// To whom (for TCP, the connection to that address, opened if needed).
    pub dest: SocketAddr,
    /// The bytes (a whole message, or a keep-alive).
    pub bytes: Vec<u8>,
}

/// The state of an account's registration, as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not registering (a trunk, or before the first attempt).
    Idle,
    /// A REGISTER is on its way.
    Registering,
    /// Registered until refreshed.
    Registered {
        /// The lifetime the registrar granted.
        expires: Duration,
        /// The contact registered.
        contact: String,
    },
    /// The last attempt failed; another follows after `retry_in`.
    Failed {
        /// The registrar's status code, or none for a timeout or transport error.
        status: Option<u16>,
        /// What went wrong, for operators.
        reason: String,
        /// When the next attempt is.
        retry_in: Duration,
    },
    /// Unregistered (Expires: 0 accepted, or given up at shutdown).
    Unregistered,
}

/// An INVITE that starts a call.
#[derive(Clone, Debug)]
pub struct IncomingCall {
    /// The new leg.
    pub leg: LegId,
    /// The Request-URI (the number called, in its user part).
    pub request_uri: Uri,
    /// The caller.
    pub from: NameAddr,
    /// The callee as the caller addressed it.
    pub to: NameAddr,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// Over which transport.
    pub transport: Transport,
    /// Its Call-ID.
    pub call_id: String,
    /// The SDP offer, if the INVITE carried one.
    pub sdp: Option<Vec<u8>>,
    /// All its headers, for anything else the gateway wants to read.
    pub headers: Headers,
}

/// Who ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ender {
    /// We did (hangup, or a failure on our side).
    Local,
    /// The peer did.
    Remote,
}

/// Something that happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// An account's registration changed.
    Registration {
        /// The account.
        account: AccountId,
        /// Its new state.
        state: RegistrationState,
    },
    /// A registrar or proxy challenged one of an account's requests (401 or 407), for the
    /// log: which realm and algorithm it asked for is what an operator needs when credentials
    /// that work elsewhere fail here.
    Challenged {
        /// The account.
        account: AccountId,
        /// The method challenged.
        method: String,
        /// 401 or 407.
        status: u16,
        /// The realm.
        realm: String,
        /// The algorithm asked for.
        algorithm: String,
        /// Whether only the nonce had expired.
        stale: bool,
    },
    /// A new inbound call: ring it, answer it or reject it.
    IncomingCall(Box<IncomingCall>),
    /// A provisional response to our INVITE (180 Ringing, 183 with early media).
    CallProgress {
        /// The leg.
        leg: LegId,
        /// 101-199.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// Early-media SDP, if any.
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE was answered (the ACK is sent).
    CallAnswered {
        /// The leg.
        leg: LegId,
        /// The SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// The ACK of our 2xx arrived: the call is set up. It carries the SDP answer when the
    /// INVITE had no offer and we made one in the 2xx.
    CallConfirmed {
        /// The leg.
        leg: LegId,
        /// The SDP of the ACK, if any.
        sdp: Option<Vec<u8>>,
    },
    /// The peer sent a re-INVITE (hold, unhold, codec change): answer or reject it.
    ReInvite {
        /// The leg.
        leg: LegId,
        /// The new offer, if any.
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE failed with a final response, a timeout (408) or a transport error (503).
    CallFailed {
        /// The leg.
        leg: LegId,
        /// The status code.
        status: u16,
        /// The reason.
        reason: String,
    },
    /// The caller cancelled an inbound call before it was answered.
    CallCancelled {
        /// The leg.
        leg: LegId,
    },
    /// An established call ended.
    CallEnded {
        /// The leg.
        leg: LegId,
        /// Who ended it.
        by: Ender,
        /// How (a BYE, a missing ACK, a timeout...).
        reason: String,
    },
    /// An INFO request in a call (DTMF relay, for one).
    Info {
        /// The leg.
        leg: LegId,
        /// Its Content-Type.
        content_type: Option<String>,
        /// Its body.
        body: Vec<u8>,
    },
}

/// Counters of the endpoint, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Messages received and parsed.
    pub received: u64,
    /// Datagrams or frames that were not SIP at all (dropped).
    pub unparseable: u64,
    /// Requests answered 400 for missing or malformed headers.
    pub bad_requests: u64,
    /// Responses that matched no transaction (dropped).
    pub stray_responses: u64,
    /// Retransmissions sent.
    pub retransmissions: u64,
    /// Transactions that timed out.
    pub timeouts: u64,
    /// Registrations accepted by a registrar (2xx to a REGISTER that binds: first ones and
    /// refreshes).
    pub registrations: u64,
    /// Live transactions.
    pub transactions: u64,
    /// Live call legs.
    pub legs: u64,
}
