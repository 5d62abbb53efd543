//! What a caller's utterance is besides a question: a request for a person, a greeting, thanks, a
//! goodbye, a yes. Word lists, not a model: they cover how people open and close a call, and an
//! utterance with anything else in it is treated as a question first.

use super::text::{is_stop_word, words};

const PERSON: &[&str] = &[
    "human",
    "person",
    "agent",
    "operator",
    "representative",
    "rep",
    "receptionist",
    "someone",
    "somebody",
    "staff",
    "manager",
    "employee",
    "people",
    "advisor",
];
const REACH: &[&str] = &["talk", "speak", "connect", "transfer", "put", "reach", "want", "need", "chat", "get", "through"];
const GREETING: &[&str] = &["hello", "hi", "hey", "hiya", "howdy", "greetings", "morning", "afternoon", "evening"];
const THANKS: &[&str] = &["thank", "thanks", "thankyou", "cheers", "appreciate", "appreciated"];
const GOODBYE: &[&str] = &["bye", "goodbye", "farewell", "byebye"];
/// Two-word goodbyes ("that's all", "see you").
const GOODBYE_PAIRS: &[(&str, &str)] = &[("thats", "all"), ("that", "all"), ("see", "you"), ("nothing", "else"), ("all", "set"), ("talk", "later")];
const YES: &[&str] = &["yes", "yeah", "yep", "yup", "sure", "please", "ok", "okay", "alright", "certainly"];
/// Words that carry no question in an opening or closing ("good morning", "how are you",
/// "thanks a lot", "have a nice day").
const FILLER: &[&str] = &[
    "good",
    "great",
    "nice",
    "day",
    "very",
    "much",
    "lot",
    "so",
    "all",
    "else",
    "nothing",
    "again",
    "how",
    "doing",
    "today",
    "there",
    "no",
    "nope",
    "thats",
    "see",
    "later",
    "set",
    "lovely",
    "wonderful",
    "perfect",
    "bye",
    "have",
    "fine",
    "alright",
    "sure",
    "yeah",
    "yes",
    "yep",
    "yup",
    "certainly",
    "oh",
    "help",
    "helpful",
    "talk",
    "for",
    "everything",
    "once",
];

/// What an utterance contains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Asks for a human.
    pub(crate) handoff: bool,
    pub(crate) greeting: bool,
    pub(crate) thanks: bool,
    pub(crate) goodbye: bool,
    /// Agrees ("yes", "sure", "please").
    pub(crate) yes: bool,
    /// Has words beyond these: something to look up.
    pub(crate) content: bool,
}

/// Reads an utterance.
pub(crate) fn read(utterance: &str) -> Reading {
    let w: Vec<String> = words(utterance).collect();
    let has = |list: &[&str]| w.iter().any(|x| list.contains(&x.as_str()));
    let pair = w.windows(2).any(|p| GOODBYE_PAIRS.contains(&(p[0].as_str(), p[1].as_str())));
    let person = has(PERSON);
    let content_words = w.iter().filter(|x| {
        let x = x.as_str();
        !is_stop_word(x) && ![PERSON, REACH, GREETING, THANKS, GOODBYE, YES, FILLER].iter().any(|list| list.contains(&x))
    });
    Reading {
        // "Can I talk to a person?", or a bare "operator!".
        handoff: person && (has(REACH) || w.len() <= 3),
        greeting: has(GREETING),
        thanks: has(THANKS),
        goodbye: has(GOODBYE) || pair,
        yes: has(YES),
        content: content_words.count() > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_a_person() {
        for s in ["Can I talk to a person?", "I want to speak with a real human.", "Operator!", "Put me through to someone, please.", "agent"] {
            assert!(read(s).handoff, "{s}");
        }
        for s in ["Who is the manager of the shop?", "Can someone tell me the price?"] {
            assert!(!read(s).handoff, "{s}");
        }
    }

    #[test]
    fn openings_and_closings_have_no_content() {
        let hello = read("Hi there, good morning! How are you?");
        assert!(hello.greeting && !hello.content);
        let bye = read("No, that's all. Thanks a lot, have a nice day. Bye!");
        assert!(bye.goodbye && bye.thanks && !bye.content);
        let question = read("Hello, what time do you open on Saturday?");
        assert!(question.greeting && question.content);
    }
}
