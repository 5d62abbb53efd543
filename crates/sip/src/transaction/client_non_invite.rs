//! The non-INVITE client transaction (RFC 3261 §17.1.2.2, Figure 6).
//!
//! ```text
//!                    |Request from TU; send request
//!  Timer E           V
//!  send request  +-----------+
//!      +---------|           |-------------------+
//!      |         |  Trying   |  Timer F          |
//!      +-------->|           |  or Transport Err.|
//!                +-----------+  inform TU        |
//!   200-699         |  |                          |
//!   resp. to TU     |  |1xx                       |
//!   +---------------+  |resp. to TU              |
//!   |                  |                          |
//!   |   Timer E        V       Timer F            |
//!   |   send req +-----------+ or Transport Err.  |
//!   |  +---------|           | inform TU          |
//!   |  |         |Proceeding |------------------->|
//!   |  +-------->|           |-----+              |
//!   |            +-----------+     |1xx           |
//!   |              |      ^        |resp to TU    |
//!   | 200-699      |      +--------+              |
//!   | resp. to TU  |                              |
//!   |              V                              |
//!   |            +-----------+                    |
//!   |            |           |                    |
//!   |            | Completed |                    |
//!   |            |           |                    |
//!   |            +-----------+                    |
//!   |              ^   |                          |
//!   |              |   | Timer K                  |
//!   +--------------+   | -                        |
//!                      |                          |
//!                      V                          |
//!                +-----------+                    |
//!                | Terminated|<-------------------+
//!                +-----------+
//! ```

use std::time::{Duration, Instant};

use super::{Action, TimerValues, Timers};

const E: usize = 0;
const F: usize = 1;
const K: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE client transaction (REGISTER, BYE, CANCEL, OPTIONS...).
#[derive(Clone, Debug)]
pub struct ClientNonInvite {
    state: State,
    values: TimerValues,
    reliable: bool,
    timers: Timers<3>,
    interval: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction as its request is sent.
    pub fn new(now: Instant, reliable: bool, values: TimerValues) -> Self {
        let mut timers = Timers::new();
        if !reliable {
            timers.set(E, now + values.t1);
        }
        timers.set(F, now + values.timeout());
        ClientNonInvite { state: State::Trying, values, reliable, timers, interval: values.t1 }
    }

    /// Handles a response with status `status`.
    pub fn on_response(&mut self, now: Instant, status: u16) -> Action {
        match self.state {
            State::Trying | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                Action::Deliver
            }
            State::Trying | State::Proceeding => {
                self.state = State::Completed;
                self.timers.clear_all();
                let k = if self.reliable { Duration::ZERO } else { self.values.t4 };
                self.timers.set(K, now + k);
                Action::Deliver
            }
            State::Completed | State::Terminated => Action::Absorb,
        }
    }

    /// Handles the due timers; returns what to do.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Action> {
        let timer = self.timers.take_due(now)?;
        match (timer, self.state) {
            (E, State::Trying | State::Proceeding) => {
                // Doubling up to T2 while trying; every T2 once a provisional came.
                self.interval = if self.state == State::Trying { (self.interval * 2).min(self.values.t2) } else { self.values.t2 };
                self.timers.set(E, now + self.interval);
                Some(Action::Retransmit)
            }
            (F, State::Trying | State::Proceeding) => {
                self.terminate();
                Some(Action::Timeout)
            }
            (K, State::Completed) => {
                self.terminate();
                None
            }
            _ => None,
        }
    }

    /// A transport error: the transaction ends and the TU is told (as a timeout).
    pub fn on_transport_error(&mut self) -> Action {
        self.terminate();
        Action::Timeout
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timers.clear_all();
    }

    /// When [`ClientNonInvite::on_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction is over and can be forgotten.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    const T1: Duration = Duration::from_millis(500);

    /// Runs the timers up to `until`, returning (time since start, action) for each firing.
    fn run(tx: &mut ClientNonInvite, t0: Instant, until: Duration) -> Vec<(Duration, Action)> {
        let mut out = Vec::new();
        while let Some(at) = tx.next_timeout().filter(|at| *at <= t0 + until) {
            if let Some(a) = tx.on_timeout(at) {
                out.push((at - t0, a));
            }
        }
        out
    }

    #[test]
    fn udp_retransmits_doubling_to_t2_then_times_out_at_64_t1() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, false, TimerValues::default());
        let events = run(&mut tx, t0, Duration::from_secs(40));
        let retransmits: Vec<u128> = events.iter().filter(|(_, a)| *a == Action::Retransmit).map(|(t, _)| t.as_millis()).collect();
        // 0.5, 1.5, 3.5, 7.5, 11.5, ... every 4 s after reaching T2.
        assert_eq!(&retransmits[..6], &[500, 1_500, 3_500, 7_500, 11_500, 15_500]);
        assert_eq!(events.last(), Some(&(T1 * 64, Action::Timeout)));
        assert!(tx.is_terminated());
    }

    #[test]
    fn provisional_slows_retransmits_to_t2() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, false, TimerValues::default());
        assert_eq!(tx.on_response(t0 + Duration::from_millis(100), 100), Action::Deliver);
        let events = run(&mut tx, t0, Duration::from_secs(13));
        let times: Vec<u128> = events.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, vec![500, 4_500, 8_500, 12_500]);
    }

    #[test]
    fn final_response_completes_then_absorbs_then_terminates_after_t4() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, false, TimerValues::default());
        assert_eq!(tx.on_response(t0, 200), Action::Deliver);
        assert_eq!(tx.on_response(t0, 200), Action::Absorb, "retransmitted final response");
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(tx.on_timeout(t0 + Duration::from_secs(5)), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_transport_never_retransmits_and_ends_at_once() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, true, TimerValues::default());
        assert_eq!(tx.next_timeout(), Some(t0 + T1 * 64));
        assert_eq!(tx.on_response(t0, 401), Action::Deliver);
        assert_eq!(tx.next_timeout(), Some(t0));
        tx.on_timeout(t0);
        assert!(tx.is_terminated());
        let mut tx = ClientNonInvite::new(t0, true, TimerValues::default());
        assert_eq!(run(&mut tx, t0, Duration::from_secs(60)), vec![(T1 * 64, Action::Timeout)]);
    }

    #[test]
    fn transport_error_informs_the_tu() {
        let mut tx = ClientNonInvite::new(Instant::now(), false, TimerValues::default());
        assert_eq!(tx.on_transport_error(), Action::Timeout);
        assert!(tx.is_terminated() && tx.next_timeout().is_none());
    }
}
