//! Whole calls in virtual time: the caller's phone and the gateway's bridge exchange RTP, the
//! providers are scripted. Each test asserts what the caller heard on the wire and what the
//! transcript holds.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{LlmStep, MS, Sim, TtsMode, config};
use happ_call::{Action, ConversationConfig, Entry, Providers};

const S: Duration = Duration::from_secs(1);

fn sim() -> Sim {
    Sim::new(config(), Providers::default())
}

/// Answers, lets the greeting play, and has the caller ask `question` (1.2 s of speech).
fn greeted_then_asked(s: &mut Sim, question: &'static str) {
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1200 * MS, question);
}

#[test]
fn greeting_question_and_answer() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("We open at nine. "), LlmStep::Text("We close at six."), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(3 * S);
    // The greeting is on the wire from the start.
    let greeting = s.heard_speech(0);
    assert!(!greeting.is_empty() && greeting[0] < 200 * MS, "greeting heard at {:?}", greeting.first());
    s.say(Duration::ZERO, 1500 * MS, "when do you open");
    s.run_for(6 * S);
    let t = s.transcript();
    assert_eq!(t, ["assistant: Hello, this is the bakery.", "caller: when do you open", "assistant: We open at nine. We close at six."], "{t:?}");
    // Both sentences were heard, the second right after the first.
    let (first, second) = (s.heard_speech(1), s.heard_speech(2));
    assert!(!first.is_empty() && !second.is_empty());
    assert!(second[0] >= *first.last().expect("first") && second[0] - *first.last().expect("first") <= 40 * MS);
    // Voice to voice: the answer starts within the endpointing delay plus the providers' delays.
    let latency = s.actions.iter().find_map(|(_, a)| if let Action::Latency(l) = a { Some(*l) } else { None }).expect("latency");
    assert!(latency.end_of_turn >= 500 * MS && latency.end_of_turn < 560 * MS, "{latency:?}");
    assert!(latency.first_packet >= latency.end_of_turn && latency.first_packet < latency.end_of_turn + 150 * MS, "{latency:?}");
    assert!(s.stt_frames > 400, "the recogniser got the caller's audio");
}

#[test]
fn barge_in_stops_the_audio_within_a_packet_and_nothing_of_it_is_heard_again() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(
        &[LlmStep::Text("Our cakes are baked fresh every morning with local butter and flour. "), LlmStep::Text("We also make bread."), LlmStep::Done],
        30 * MS,
    ));
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Yes, on Sundays too."), LlmStep::Done], 30 * MS));
    greeted_then_asked(&mut s, "tell me about cakes");
    s.run_for(3 * S);
    assert!(s.speaking(), "the answer is playing");
    // The caller talks over it.
    s.say(Duration::ZERO, 1500 * MS, "are you open on sunday");
    s.run_for(6 * S);
    let pause = *s.pauses.first().expect("a barge-in paused playback");
    // On the wire: after the decision, at most one packet (the fade) of the old answer.
    let old: Vec<Duration> = s.heard.iter().filter(|h| h.speech == Some(1) || h.speech == Some(2)).map(|h| h.at).collect();
    let after: Vec<&Duration> = old.iter().filter(|t| **t > pause).collect();
    assert!(after.iter().all(|t| **t <= pause + 20 * MS), "old answer heard after the barge-in at {pause:?}: {after:?}");
    let t = s.transcript();
    assert_eq!(t.len(), 5, "{t:?}");
    assert!(t[2].starts_with("assistant: Our cakes are") && t[2].ends_with("[interrupted]"), "{t:?}");
    assert!(!t[2].contains("bread"), "{t:?}");
    assert_eq!(t[3], "caller: are you open on sunday");
    assert_eq!(t[4], "assistant: Yes, on Sundays too.");
    // The interrupted answer holds what was heard: its share of the sentence matches the audio.
    let heard_secs = old.iter().filter(|t| **t <= pause).count() as f64 * 0.02;
    let Entry::Assistant { text, .. } = &s.history()[2] else { panic!("an assistant entry") };
    let sentence = "Our cakes are baked fresh every morning with local butter and flour.";
    let expected_chars = heard_secs / (sentence.len() as f64 * 0.06) * sentence.len() as f64;
    assert!((text.len() as f64 - expected_chars).abs() < 12.0, "{text:?} after {heard_secs} s");
    assert!(!s.when(|a| matches!(a, Action::CancelLlm(_) | Action::CancelSpeech(_))).is_empty());
}

#[test]
fn a_cough_is_a_false_interruption_and_playback_resumes_where_it_paused() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Our cakes are baked fresh every morning with local butter and flour."), LlmStep::Done], 30 * MS));
    greeted_then_asked(&mut s, "tell me about cakes");
    s.run_for(2500 * MS);
    // Voice long enough to pause, but no words.
    s.say(Duration::ZERO, 600 * MS, "");
    s.run_for(8 * S);
    assert_eq!(s.pauses.len(), 1, "{:?}", s.pauses);
    assert_eq!(s.bridge.conversation().stats().false_interruptions, 1);
    let t = s.transcript();
    assert_eq!(t[2], "assistant: Our cakes are baked fresh every morning with local butter and flour.", "{t:?}");
    // Every 20 ms of the sentence went out exactly once: its tone lasted its full length.
    let sentence = "Our cakes are baked fresh every morning with local butter and flour.";
    let heard = s.heard_speech(1).len() as f64 * 0.02;
    let length = sentence.len() as f64 * 0.06;
    assert!((heard - length).abs() <= 0.06, "{heard} s heard of {length} s");
}

#[test]
fn backchannels_neither_interrupt_nor_become_turns() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Our cakes are baked fresh every morning with local butter and flour."), LlmStep::Done], 30 * MS));
    greeted_then_asked(&mut s, "tell me about cakes");
    s.run_for(2500 * MS);
    s.say(Duration::ZERO, 300 * MS, "uh-huh");
    s.run_for(6 * S);
    assert!(s.pauses.is_empty(), "{:?}", s.pauses);
    assert_eq!(s.transcript().len(), 3, "{:?}", s.transcript());
    assert_eq!(s.bridge.conversation().stats().backchannels, 1);
}

#[test]
fn the_assistants_own_echo_does_not_interrupt_it() {
    for gain in [0.1f32, 0.3, 0.7] {
        let mut s = sim();
        s.echo = Some((120 * MS, gain));
        s.llm_answers.push_back(Sim::answer_with(
            &[LlmStep::Text("Our cakes are baked fresh every morning with local butter and flour, and we sell them until six."), LlmStep::Done],
            30 * MS,
        ));
        s.answer();
        // Long enough for the greeting even when a loud echo paused it once.
        s.run_for(6 * S);
        s.say(Duration::ZERO, 1200 * MS, "tell me about cakes");
        s.run_for(10 * S);
        let stats = s.bridge.conversation().stats();
        let t = s.transcript();
        assert_eq!(stats.interruptions, 0, "echo gain {gain}: {t:?}");
        assert!(t.iter().all(|l| !l.contains("[interrupted]")), "echo gain {gain}: {t:?}");
        // A loud echo may pause playback once; the guard learns it and it does not again.
        assert!(stats.false_interruptions <= 1, "echo gain {gain}: {stats:?}");
        eprintln!("echo gain {gain}: {stats:?}, learned echo gain {:.1} dB, bridge {:?}", s.bridge.echo_gain_db(), s.bridge.stats());
    }
}

#[test]
fn the_caller_still_barges_in_over_a_line_echo() {
    let mut s = sim();
    s.echo = Some((120 * MS, 0.1));
    s.llm_answers.push_back(Sim::answer_with(
        &[LlmStep::Text("Our cakes are baked fresh every morning with local butter and flour, and we sell them until six."), LlmStep::Done],
        30 * MS,
    ));
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Yes."), LlmStep::Done], 30 * MS));
    greeted_then_asked(&mut s, "tell me about cakes");
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1500 * MS, "do you deliver");
    s.run_for(5 * S);
    assert_eq!(s.bridge.conversation().stats().interruptions, 1, "{:?}", s.transcript());
    assert!(s.transcript().iter().any(|l| l == "caller: do you deliver"));
}

#[test]
fn digits_stop_playback_and_reach_the_llm() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Please enter your order number followed by the pound key, then wait."), LlmStep::Done], 30 * MS));
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Thank you."), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1200 * MS, "where is my order");
    s.run_for(2500 * MS);
    for (i, c) in "42#".chars().enumerate() {
        s.press(300 * MS * i as u32, c);
    }
    s.run_for(4 * S);
    let t = s.transcript();
    assert!(t[2].ends_with("[interrupted]"), "{t:?}");
    assert_eq!(t[3], "caller: [keypad] 42#", "{t:?}");
    assert_eq!(t[4], "assistant: Thank you.");
}

#[test]
fn digits_pressed_while_speaking_are_kept_with_the_words() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Thank you."), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 2000 * MS, "my number is");
    s.press(500 * MS, '7');
    s.press(900 * MS, '#');
    s.run_for(5 * S);
    let t = s.transcript();
    assert_eq!(t[1], "caller: my number is [keypad] 7#", "{t:?}");
}

#[test]
fn a_failed_llm_falls_back_to_the_next_provider() {
    let mut s = Sim::new(config(), Providers { stt: 1, llm: 2, tts: 1 });
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Fail { fall_back: true, retry: false }], 100 * MS));
    s.fallback_answers.push_back(Sim::answer_with(&[LlmStep::Text("We open at nine."), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1200 * MS, "when do you open");
    s.run_for(5 * S);
    assert_eq!(s.transcript()[2], "assistant: We open at nine.");
    assert_eq!(s.bridge.conversation().stats().fallbacks, 1);
}

#[test]
fn a_stalled_llm_gets_an_apology_within_three_seconds() {
    let mut s = sim();
    s.llm_answers.push_back(vec![]);
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1200 * MS, "when do you open");
    s.run_for(8 * S);
    let end_of_turn = s.when(|a| matches!(a, Action::StartLlm { .. }))[0];
    let apology = s.when(|a| matches!(a, Action::Speak { canned: true, .. }))[0];
    assert!(apology - end_of_turn <= 3 * S, "apology at {apology:?}, turn ended at {end_of_turn:?}");
    // And it is on the wire at once: the canned audio is loud from the next packet.
    let loud_after: Vec<_> = s.heard.iter().filter(|h| h.at > apology && h.at <= apology + 60 * MS).collect();
    assert!(!loud_after.is_empty());
    assert!(s.transcript()[2].contains("trouble"), "{:?}", s.transcript());
    assert_eq!(s.bridge.conversation().stats().apologies, 1);
}

#[test]
fn a_failing_synthesiser_falls_back_then_apologises() {
    let mut s = Sim::new(config(), Providers { stt: 1, llm: 1, tts: 2 });
    s.tts = vec![TtsMode::Fail, TtsMode::Speak { delay: 50 * MS }];
    s.answer();
    s.run_for(3 * S);
    // The greeting was spoken by the second synthesiser.
    assert_eq!(s.transcript(), ["assistant: Hello, this is the bakery."]);
    let mut s = Sim::new(config(), Providers { stt: 1, llm: 1, tts: 1 });
    s.tts = vec![TtsMode::Stall];
    s.answer();
    s.run_for(5 * S);
    assert_eq!(s.bridge.conversation().stats().apologies, 1, "{:?}", s.transcript());
}

#[test]
fn silence_gets_a_reprompt_then_a_goodbye_and_a_hangup() {
    let mut s = sim();
    s.answer();
    s.run_for(40 * S);
    let t = s.transcript();
    assert_eq!(t.len(), 3, "{t:?}");
    assert_eq!(t[1], "assistant: Are you still there?");
    assert!(t[2].contains("Goodbye"));
    let (at, reason) = s.hung_up.clone().expect("hung up");
    assert!(reason.contains("silent"), "{reason}");
    // Reprompt 10 s after the greeting ended, goodbye 10 s after the reprompt ended.
    assert!(at > 22 * S && at < 30 * S, "{at:?}");
}

#[test]
fn the_maximum_duration_ends_the_call_after_a_goodbye() {
    let mut s = Sim::new(ConversationConfig { max_duration: Some(8 * S), silence_reprompt: None, ..config() }, Providers::default());
    s.answer();
    s.run_for(20 * S);
    let (at, reason) = s.hung_up.clone().expect("hung up");
    assert!(reason.contains("maximum"), "{reason}");
    assert!(at > 8 * S && at < 16 * S, "{at:?}");
    assert!(s.transcript().last().is_some_and(|l| l.contains("time limit")));
}

#[test]
fn the_hangup_tool_waits_for_the_goodbye_to_be_heard() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Thank you for calling, goodbye!"), LlmStep::Tool("hangup", "{}"), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1000 * MS, "that is all thanks bye");
    s.run_for(6 * S);
    let (at, _) = s.hung_up.clone().expect("hung up");
    let goodbye = s.heard_speech(1);
    assert!(!goodbye.is_empty());
    assert!(at >= *goodbye.last().expect("heard"), "hung up at {at:?} before the goodbye ended {:?}", goodbye.last());
}

#[test]
fn hand_off_stops_the_ai_and_speaks_the_operator() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Tool("turnOffAiMode", "{\"reason\":\"asked\"}"), LlmStep::Done], 30 * MS));
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("One moment please, I'm connecting you."), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(3 * S);
    s.say(Duration::ZERO, 1200 * MS, "i want a person");
    s.run_for(5 * S);
    assert!(s.actions.iter().any(|(_, a)| *a == Action::SetAiControl(false)));
    let llm_calls = s.when(|a| matches!(a, Action::StartLlm { .. })).len();
    s.say(Duration::ZERO, 1200 * MS, "hello is anyone there");
    s.run_for(3 * S);
    assert_eq!(s.when(|a| matches!(a, Action::StartLlm { .. })).len(), llm_calls, "no LLM after the hand-off");
    let now = s.now;
    s.bridge.handle_operator_message(now, "Hi, this is Anna from the bakery.");
    s.run_for(4 * S);
    let t = s.transcript();
    assert!(t.contains(&"caller: hello is anyone there".to_owned()), "{t:?}");
    assert_eq!(t.last().map(String::as_str), Some("operator: Hi, this is Anna from the bakery."), "{t:?}");
}

#[test]
fn a_caller_who_waits_for_the_assistant_is_answered_first_by_the_caller() {
    let mut s = Sim::new(ConversationConfig { opening: happ_call::Opening::WaitForCaller, ..config() }, Providers::default());
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Hello! How can I help?"), LlmStep::Done], 30 * MS));
    s.answer();
    s.run_for(2 * S);
    assert!(s.heard.iter().all(|h| h.speech.is_none()), "silent until the caller speaks");
    s.say(Duration::ZERO, 800 * MS, "hello");
    s.run_for(3 * S);
    assert_eq!(s.transcript(), ["caller: hello", "assistant: Hello! How can I help?"]);
}

#[test]
fn hanging_up_mid_answer_keeps_what_was_heard() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("Our cakes are baked fresh every morning with local butter and flour."), LlmStep::Done], 30 * MS));
    greeted_then_asked(&mut s, "tell me about cakes");
    s.run_for(3 * S);
    let now = s.now;
    s.bridge.handle_call_ended(now);
    let t = s.transcript();
    assert!(t[2].starts_with("assistant: Our cakes") && t[2].ends_with("[interrupted]"), "{t:?}");
}

#[test]
fn words_without_any_voice_neither_interrupt_nor_make_a_turn() {
    let mut s = sim();
    s.answer();
    s.run_for(300 * MS);
    // The recogniser "hears" a word in line noise while the greeting plays, and after it.
    let now = s.now;
    s.bridge.handle_transcript(now, "a", true, true);
    s.run_for(4 * S);
    let now = s.now;
    s.bridge.handle_transcript(now, "put", true, true);
    s.run_for(2 * S);
    assert_eq!(s.transcript(), ["assistant: Hello, this is the bakery."]);
    assert_eq!(s.bridge.conversation().stats().unvoiced_transcripts, 1);
    assert!(s.when(|a| matches!(a, Action::StartLlm { .. })).is_empty());
}

#[test]
fn a_transient_llm_failure_is_retried_on_the_same_provider() {
    let mut s = sim();
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Fail { fall_back: true, retry: true }], 100 * MS));
    s.llm_answers.push_back(Sim::answer_with(&[LlmStep::Text("We open at nine."), LlmStep::Done], 30 * MS));
    greeted_then_asked(&mut s, "when do you open");
    s.run_for(5 * S);
    assert_eq!(s.transcript()[2], "assistant: We open at nine.");
    let starts: Vec<usize> = s.actions.iter().filter_map(|(_, a)| if let Action::StartLlm { provider, .. } = a { Some(*provider) } else { None }).collect();
    assert_eq!(starts, [0, 0], "retried on the same provider");
    assert_eq!(s.bridge.conversation().stats().retries, 1);
}
