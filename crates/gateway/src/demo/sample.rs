//! The built-in sample assistant of the demo: a fictional bakery, with the knowledge the
//! built-in caller script asks about, answered by the local knowledge LLM.

/// The assistant's id in the demo configuration.
pub const ID: &str = "sunrise-bakery";

/// Its name.
pub const NAME: &str = "Sunrise Bakery";

/// The greeting spoken on answer.
pub const FIRST_MESSAGE: &str = "Hello, thank you for calling Sunrise Bakery. How can I help you?";

/// The system prompt (read by remote LLMs; the local one answers from the knowledge only).
pub const PROMPT: &str = "You are the phone assistant of Sunrise Bakery, a small neighbourhood bakery. Answer in one or two short sentences, \
     using only the bakery's knowledge. If you do not know, say so and offer to take a message.";

/// The knowledge entries: (`name`, `resourceContent`).
pub const KNOWLEDGE: [(&str, &str); 5] = [
    ("Opening hours", "Our opening hours are 7 am to 6 pm from Tuesday to Saturday, and 8 am to 2 pm on Sunday. We are closed on Mondays."),
    ("Address", "Our address is 12 Mill Street, next to the town square."),
    ("Prices", "A sourdough loaf costs 6 dollars. Croissants cost 2 dollars each. A birthday cake costs from 35 dollars."),
    ("Delivery", "We deliver within 5 kilometres for orders over 30 dollars. Delivery is free on weekdays."),
    ("Parking", "There is free parking behind the bakery on Mill Lane. Bicycles can be left at the rack by the door."),
];

/// The assistant as a `[[assistants]]` table of the gateway configuration.
pub fn assistant() -> toml::Table {
    let mut a = toml::Table::new();
    a.insert("id".into(), ID.into());
    a.insert("name".into(), NAME.into());
    a.insert("promptText".into(), PROMPT.into());
    a.insert("firstMessage".into(), FIRST_MESSAGE.into());
    a.insert("llmProvider".into(), "local".into());
    a.insert("llmModel".into(), "knowledge".into());
    a.insert("language".into(), "en".into());
    let knowledge = KNOWLEDGE
        .iter()
        .map(|(name, content)| {
            let mut k = toml::Table::new();
            k.insert("name".into(), (*name).into());
            k.insert("resourceContent".into(), (*content).into());
            toml::Value::Table(k)
        })
        .collect();
    a.insert("knowledge".into(), toml::Value::Array(knowledge));
    a
}

#[cfg(test)]
mod tests {
    use happ_speech::local::{KnowledgeBase, KnowledgeEntry, KnowledgeOptions};

    use super::*;
    use crate::demo::script;

    fn base() -> KnowledgeBase {
        KnowledgeBase::new(KNOWLEDGE.iter().map(|(n, c)| KnowledgeEntry::new(*n, *c)).collect())
    }

    #[test]
    fn each_built_in_question_is_answered_from_the_matching_entry() {
        let options = KnowledgeOptions::default();
        let expected = ["7 am", "12 Mill Street", "6 dollars", "parking"];
        let questions = &script::BUILT_IN[..script::BUILT_IN.len() - 1];
        assert_eq!(questions.len(), expected.len());
        for (q, want) in questions.iter().zip(expected) {
            let answer = base().answer(q, options.min_coverage, options.max_sentences);
            let answer = answer.unwrap_or_else(|| panic!("no answer to {q:?}"));
            assert!(answer.contains(want), "{q:?} answered {answer:?}, expected it to mention {want:?}");
        }
    }

    #[test]
    fn the_table_is_a_valid_assistant() {
        let mut doc = toml::Table::new();
        doc.insert("assistants".into(), toml::Value::Array(vec![toml::Value::Table(assistant())]));
        let text = toml::to_string(&doc).expect("test setup");
        let config = crate::config::Config::from_text(std::path::Path::new("demo.toml"), &text, |_| None).expect("test setup");
        let a = &config.assistants[0];
        assert_eq!((a.id.as_str(), a.first_message.as_str(), a.llm_provider.as_str()), (ID, FIRST_MESSAGE, "local"));
        assert_eq!(a.knowledge.len(), KNOWLEDGE.len());
    }
}
