//! Prometheus metrics. The SIP task samples the cores' plain counters (the endpoint's and each
//! media session's) and updates these; nothing here is called from inside a protocol core.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a call outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `answered`, `failed`, `cancelled`, `rejected`.
    pub outcome: String,
}

/// Labels of a rejected inbound call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// The SIP status sent.
    pub status: String,
}

/// Labels of an outcome (`ok`, `failed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outcome.
    pub outcome: String,
}

/// Labels of a stage of an answer's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `stt_final`, `end_of_turn`, `llm_first_token`, `tts_first_audio`, `first_packet`.
    pub stage: String,
}

/// Labels of a conversation event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `turns`, `interruptions`, `false_interruptions`, `backchannels`, `echoes`, `fallbacks`,
    /// `apologies`, `reprompts`, `unvoiced_transcripts`.
    pub event: String,
}

/// Labels of a provider failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// `stt`, `llm` or `tts`.
    pub kind: String,
    /// The provider's name.
    pub provider: String,
}

/// Labels of a registration state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state.
    pub state: String,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Calls that ended, by direction and outcome.
    pub calls: Family<CallLabels, Counter>,
    /// Inbound calls rejected, by status.
    pub rejected: Family<RejectLabels, Counter>,
    /// Calls in progress.
    pub active_calls: Gauge,
    /// Phones by registration state.
    pub registrations: Family<StateLabels, Gauge>,
    /// SIP messages received.
    pub sip_received: Counter,
    /// Datagrams that were not SIP.
    pub sip_unparseable: Counter,
    /// Requests answered 400.
    pub sip_bad_requests: Counter,
    /// SIP retransmissions sent.
    pub sip_retransmissions: Counter,
    /// SIP transactions that timed out.
    pub sip_timeouts: Counter,
    /// Registrations accepted (first ones and refreshes).
    pub sip_registrations: Counter,
    /// RTP packets received by ended calls.
    pub rtp_received: Counter,
    /// RTP packets lost on the way in (RFC 3550 count) by ended calls.
    pub rtp_lost: Counter,
    /// RTP packets that arrived too late to play.
    pub rtp_late: Counter,
    /// Malformed RTP datagrams.
    pub rtp_malformed: Counter,
    /// RTP/RTCP port pairs in use.
    pub rtp_ports_in_use: Gauge,
    /// RTP/RTCP port pairs in the range.
    pub rtp_ports_capacity: Gauge,
    /// Reads of the Happ platform's phones and assistants, by outcome.
    pub platform_syncs: Family<OutcomeLabels, Counter>,
    /// Answers' latencies from the end of the caller's speech, by stage.
    pub turn_latency: Family<StageLabels, Histogram, fn() -> Histogram>,
    /// Provider failures during calls, by kind and provider.
    pub provider_failures: Family<ProviderLabels, Counter>,
    /// What happened in conversations, by event.
    pub conversation_events: Family<EventLabels, Counter>,
    last: std::sync::Mutex<happ_sip::endpoint::EndpointStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets of the latency histograms: 50 ms to 10 s.
fn latency_buckets() -> Histogram {
    Histogram::new([0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0])
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("happ_gateway");
        let m = Metrics {
            calls: Family::default(),
            rejected: Family::default(),
            active_calls: Gauge::default(),
            registrations: Family::default(),
            sip_received: Counter::default(),
            sip_unparseable: Counter::default(),
            sip_bad_requests: Counter::default(),
            sip_retransmissions: Counter::default(),
            sip_timeouts: Counter::default(),
            sip_registrations: Counter::default(),
            rtp_received: Counter::default(),
            rtp_lost: Counter::default(),
            rtp_late: Counter::default(),
            rtp_malformed: Counter::default(),
            rtp_ports_in_use: Gauge::default(),
            rtp_ports_capacity: Gauge::default(),
            platform_syncs: Family::default(),
            turn_latency: Family::new_with_constructor(latency_buckets),
            provider_failures: Family::default(),
            conversation_events: Family::default(),
            last: std::sync::Mutex::new(Default::default()),
            registry: Registry::default(),
        };
        registry.register("calls", "Calls ended, by direction and outcome", m.calls.clone());
        registry.register("calls_rejected", "Inbound calls rejected, by SIP status", m.rejected.clone());
        registry.register("calls_active", "Calls in progress", m.active_calls.clone());
        registry.register("phones", "Phones by registration state", m.registrations.clone());
        registry.register("sip_messages_received", "SIP messages received", m.sip_received.clone());
        registry.register("sip_unparseable", "Datagrams or frames that were not SIP", m.sip_unparseable.clone());
        registry.register("sip_bad_requests", "Requests answered 400", m.sip_bad_requests.clone());
        registry.register("sip_retransmissions", "SIP retransmissions sent", m.sip_retransmissions.clone());
        registry.register("sip_transaction_timeouts", "SIP transactions that timed out", m.sip_timeouts.clone());
        registry.register("sip_registrations", "Registrations accepted by a registrar (first ones and refreshes)", m.sip_registrations.clone());
        registry.register("rtp_packets_received", "RTP packets received (ended calls)", m.rtp_received.clone());
        registry.register("rtp_packets_lost", "RTP packets lost on the way in (ended calls)", m.rtp_lost.clone());
        registry.register("rtp_packets_late", "RTP packets too late to play (ended calls)", m.rtp_late.clone());
        registry.register("rtp_malformed", "Malformed RTP datagrams (ended calls)", m.rtp_malformed.clone());
        registry.register("rtp_port_pairs_in_use", "RTP/RTCP port pairs in use", m.rtp_ports_in_use.clone());
        registry.register("rtp_port_pairs", "RTP/RTCP port pairs in rtp.port_range", m.rtp_ports_capacity.clone());
        registry.register("platform_syncs", "Reads of the Happ platform's phones and assistants, by outcome", m.platform_syncs.clone());
        registry.register(
            "turn_latency_seconds",
            "Answers' latency from the end of the caller's speech to each stage (first_packet: the first packet of the answer on the wire)",
            m.turn_latency.clone(),
        );
        registry.register("provider_failures", "Speech and LLM provider failures during calls, by kind and provider", m.provider_failures.clone());
        registry.register(
            "conversation_events",
            "What happened in ended conversations: turns answered, interruptions (confirmed and false), backchannels and echoes ignored, provider fallbacks, apologies, reprompts",
            m.conversation_events.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An answer's latencies.
    pub fn turn(&self, l: &happ_call::TurnLatency) {
        let stages = [
            ("stt_final", l.stt_final),
            ("end_of_turn", Some(l.end_of_turn)),
            ("llm_first_token", l.llm_first_token),
            ("tts_first_audio", l.tts_first_audio),
            ("first_packet", Some(l.first_packet)),
        ];
        for (stage, d) in stages {
            if let Some(d) = d {
                self.turn_latency.get_or_create(&StageLabels { stage: stage.into() }).observe(d.as_secs_f64());
            }
        }
    }

    /// The counters of an ended conversation.
    pub fn conversation(&self, s: &happ_call::ConversationStats) {
        let events = [
            ("turns", s.turns),
            ("interruptions", s.interruptions),
            ("false_interruptions", s.false_interruptions),
            ("backchannels", s.backchannels),
            ("echoes", s.echoes),
            ("fallbacks", s.fallbacks),
            ("apologies", s.apologies),
            ("reprompts", s.reprompts),
            ("unvoiced_transcripts", s.unvoiced_transcripts),
        ];
        for (event, n) in events {
            self.conversation_events.get_or_create(&EventLabels { event: event.into() }).inc_by(u64::from(n));
        }
    }

    /// A provider failed during a call.
    pub fn provider_failed(&self, kind: &str, provider: &str) {
        self.provider_failures.get_or_create(&ProviderLabels { kind: kind.into(), provider: provider.into() }).inc();
    }

    /// Adds what the endpoint counted since the last call.
    pub fn sample_endpoint(&self, now: happ_sip::endpoint::EndpointStats) {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sip_received.inc_by(now.received.saturating_sub(last.received));
        self.sip_unparseable.inc_by(now.unparseable.saturating_sub(last.unparseable));
        self.sip_bad_requests.inc_by(now.bad_requests.saturating_sub(last.bad_requests));
        self.sip_retransmissions.inc_by(now.retransmissions.saturating_sub(last.retransmissions));
        self.sip_timeouts.inc_by(now.timeouts.saturating_sub(last.timeouts));
        self.sip_registrations.inc_by(now.registrations.saturating_sub(last.registrations));
        *last = now;
    }

    /// Adds an ended call's media counters.
    pub fn add_media(&self, stats: &happ_media::session::MediaStats) {
        self.rtp_received.inc_by(stats.rtp_received);
        self.rtp_lost.inc_by(stats.lost.max(0) as u64);
        self.rtp_late.inc_by(stats.buffer.late);
        self.rtp_malformed.inc_by(stats.rtp_malformed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_families() {
        let m = Metrics::new();
        m.calls.get_or_create(&CallLabels { direction: "inbound".into(), outcome: "answered".into() }).inc();
        m.active_calls.set(3);
        let text = m.render();
        assert!(text.contains("happ_gateway_calls_total{direction=\"inbound\",outcome=\"answered\"} 1"), "{text}");
        assert!(text.contains("happ_gateway_calls_active 3"));
    }
}
