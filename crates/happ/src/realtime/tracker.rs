//! What has been delivered, per chat: the catch-up position and the duplicate filter.
//!
//! [`Tracker`] is pure (no I/O, no clock): the real-time task feeds it every `MESSAGE_CREATED`
//! ([`Tracker::live`]) and every catch-up listing ([`Tracker::caught_up`]), and delivers only
//! what it lets through. Per chat it keeps
//!
//! - the **last seen** message (id and `createdAt`): the catch-up lists the messages after it
//!   (`HappClient::messages_since`). It moves forward only: a late event for an older message does
//!   not move it back, so a later catch-up does not list again what was already seen;
//! - the ids of the most recent messages ([`TrackerLimits::ids_per_chat`]): a message whose id is
//!   among them is a duplicate (the same event live and from a catch-up, or sent twice).
//!
//! Chats the caller watches ([`Tracker::watch`]) are kept until unwatched; other chats are
//! remembered as their messages go by, at most [`TrackerLimits::max_chats`] of them, the least
//! recently active forgotten first.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::model::{ChatId, Message, MessageId, Timestamp};

/// How much a [`Tracker`] remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerLimits {
    /// Message ids remembered per chat for the duplicate filter. Default 1024: a duplicate is at
    /// most one outage's worth of messages old.
    pub ids_per_chat: usize,
    /// Chats remembered besides the watched ones. Default 1024.
    pub max_chats: usize,
}

impl Default for TrackerLimits {
    fn default() -> Self {
        Self { ids_per_chat: 1024, max_chats: 1024 }
    }
}

/// The delivered messages of each chat (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    chats: HashMap<ChatId, ChatLog>,
    limits: TrackerLimits,
    /// A logical clock: bumped on every touch, it orders chats for eviction.
    tick: u64,
}

#[derive(Clone, Debug, Default)]
struct ChatLog {
    watched: bool,
    last: Option<(MessageId, Option<Timestamp>)>,
    ids: HashSet<MessageId>,
    order: VecDeque<MessageId>,
    touched: u64,
}

impl ChatLog {
    /// Records `id`; false if it was already there.
    fn remember(&mut self, id: &MessageId, limit: usize) -> bool {
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id.clone());
        while self.order.len() > limit.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }

    /// Moves the last seen message to `m` unless `m` is older than it.
    fn advance(&mut self, m: &Message) {
        let newer = match &self.last {
            Some((_, Some(at))) => m.created_at.cmp_instant(at).is_ge(),
            _ => true,
        };
        if newer {
            self.last = Some((m.id.clone(), Some(m.created_at.clone())));
        }
    }
}

impl Tracker {
    /// An empty tracker.
    pub fn new(limits: TrackerLimits) -> Self {
        Self { chats: HashMap::new(), limits, tick: 0 }
    }

    /// Watches `chat`: its messages are caught up after every reconnect. With `after`, the
    /// caller already has the messages up to that one (it becomes the last seen, unless the chat
    /// already has one); without, a chat never seen before is caught up from its first message.
    /// Returns false if the chat was already watched (nothing changes then).
    pub fn watch(&mut self, chat: ChatId, after: Option<MessageId>) -> bool {
        let limit = self.limits.ids_per_chat;
        let log = self.touch(chat);
        if log.watched {
            return false;
        }
        log.watched = true;
        if let Some(id) = after
            && log.last.is_none()
        {
            log.remember(&id, limit);
            // Its time is unknown: any message listed after it counts as newer.
            log.last = Some((id, None));
        }
        true
    }

    /// Stops watching `chat`; what was seen of it is kept like any unwatched chat's. Returns
    /// false if it was not watched.
    pub fn unwatch(&mut self, chat: &ChatId) -> bool {
        let was = self.chats.get_mut(chat).is_some_and(|log| std::mem::replace(&mut log.watched, false));
        self.evict();
        was
    }

    /// Whether `chat` is watched.
    pub fn is_watched(&self, chat: &ChatId) -> bool {
        self.chats.get(chat).is_some_and(|log| log.watched)
    }

    /// The watched chats, sorted by id.
    pub fn watched(&self) -> Vec<ChatId> {
        let mut chats: Vec<ChatId> = self.chats.iter().filter(|(_, log)| log.watched).map(|(id, _)| id.clone()).collect();
        chats.sort();
        chats
    }

    /// The last message seen in `chat`: where its next catch-up starts.
    pub fn last_seen(&self, chat: &ChatId) -> Option<&MessageId> {
        self.chats.get(chat).and_then(|log| log.last.as_ref()).map(|(id, _)| id)
    }

    /// A `MESSAGE_CREATED` that came live: true if it is new and must be delivered, false for a
    /// duplicate.
    pub fn live(&mut self, message: &Message) -> bool {
        let limit = self.limits.ids_per_chat;
        let log = self.touch(message.chat_id.clone());
        if !log.remember(&message.id, limit) {
            return false;
        }
        log.advance(message);
        self.evict();
        true
    }

    /// The listing of a catch-up of `chat` (the messages after [`Tracker::last_seen`], oldest
    /// first): returns those to deliver, in order, without the ones already delivered. The last
    /// seen message moves to the newest listed.
    pub fn caught_up(&mut self, chat: &ChatId, listing: Vec<Message>) -> Vec<Message> {
        let limit = self.limits.ids_per_chat;
        let log = self.touch(chat.clone());
        let mut fresh = Vec::with_capacity(listing.len());
        for message in listing {
            log.advance(&message);
            if log.remember(&message.id, limit) {
                fresh.push(message);
            }
        }
        self.evict();
        fresh
    }

    /// Chats remembered, watched or not.
    pub fn len(&self) -> usize {
        self.chats.len()
    }

    /// True when no chat is remembered.
    pub fn is_empty(&self) -> bool {
        self.chats.is_empty()
    }

    fn touch(&mut self, chat: ChatId) -> &mut ChatLog {
        self.tick += 1;
        let log = self.chats.entry(chat).or_default();
        log.touched = self.tick;
        log
    }

    /// Forgets the least recently touched unwatched chats beyond the limit.
    fn evict(&mut self) {
        let unwatched = self.chats.values().filter(|log| !log.watched).count();
        for _ in self.limits.max_chats..unwatched {
            let oldest = self.chats.iter().filter(|(_, log)| !log.watched).min_by_key(|(_, log)| log.touched).map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.chats.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn msg(chat: &str, id: &str, second: u32) -> Message {
        Message {
            id: MessageId::new(id),
            chat_id: ChatId::new(chat),
            content: format!("text {id}"),
            role: Role::User,
            created_at: Timestamp::new(format!("2025-01-01T10:00:{second:02}.000Z")),
        }
    }

    fn ids(messages: &[Message]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn live_messages_pass_once_and_move_the_last_seen() {
        let mut t = Tracker::new(TrackerLimits::default());
        assert!(t.live(&msg("c", "m1", 1)));
        assert!(t.live(&msg("c", "m2", 2)));
        assert!(!t.live(&msg("c", "m1", 1)), "sent twice");
        assert_eq!(t.last_seen(&ChatId::new("c")).map(MessageId::as_str), Some("m2"));
        // The same id in another chat is another message.
        assert!(t.live(&msg("d", "m1", 1)));
    }

    #[test]
    fn catch_up_delivers_the_missed_ones_in_order_without_duplicates() {
        let mut t = Tracker::new(TrackerLimits::default());
        let chat = ChatId::new("c");
        assert!(t.watch(chat.clone(), None));
        assert_eq!(t.last_seen(&chat), None, "a new chat is caught up from its start");
        assert!(t.live(&msg("c", "m1", 1)));
        // Disconnected after m1; m2..m4 missed; m3 was also received live during the catch-up.
        assert!(t.live(&msg("c", "m3", 3)));
        let fresh = t.caught_up(&chat, vec![msg("c", "m2", 2), msg("c", "m3", 3), msg("c", "m4", 4)]);
        assert_eq!(ids(&fresh), ["m2", "m4"]);
        assert_eq!(t.last_seen(&chat).map(MessageId::as_str), Some("m4"));
        // m4 arrives live afterwards (a held event): filtered.
        assert!(!t.live(&msg("c", "m4", 4)));
        // An empty listing changes nothing.
        assert!(t.caught_up(&chat, Vec::new()).is_empty());
        assert_eq!(t.last_seen(&chat).map(MessageId::as_str), Some("m4"));
    }

    #[test]
    fn a_late_event_does_not_move_the_last_seen_back() {
        let mut t = Tracker::new(TrackerLimits::default());
        let chat = ChatId::new("c");
        t.watch(chat.clone(), None);
        t.caught_up(&chat, vec![msg("c", "m1", 1), msg("c", "m2", 2), msg("c", "m3", 3)]);
        // m0 is older but was never seen (e.g. created with an earlier timestamp): delivered once,
        // and the catch-up position stays at m3.
        assert!(t.live(&msg("c", "m0", 0)));
        assert_eq!(t.last_seen(&chat).map(MessageId::as_str), Some("m3"));
    }

    #[test]
    fn watch_after_a_known_message() {
        let mut t = Tracker::new(TrackerLimits::default());
        let chat = ChatId::new("c");
        assert!(t.watch(chat.clone(), Some(MessageId::new("m5"))));
        assert_eq!(t.last_seen(&chat).map(MessageId::as_str), Some("m5"));
        assert!(!t.live(&msg("c", "m5", 5)), "the caller has m5 already");
        assert!(!t.watch(chat.clone(), Some(MessageId::new("m9"))), "already watched: no change");
        assert_eq!(t.last_seen(&chat).map(MessageId::as_str), Some("m5"));
        // A listing after m5 of unknown time: everything in it is newer.
        let fresh = t.caught_up(&chat, vec![msg("c", "m6", 6)]);
        assert_eq!(ids(&fresh), ["m6"]);
        assert_eq!(t.last_seen(&chat).map(MessageId::as_str), Some("m6"));
    }

    #[test]
    fn watching_a_chat_already_seen_keeps_its_position() {
        let mut t = Tracker::new(TrackerLimits::default());
        t.live(&msg("c", "m1", 1));
        assert!(t.watch(ChatId::new("c"), Some(MessageId::new("m0"))));
        assert_eq!(t.last_seen(&ChatId::new("c")).map(MessageId::as_str), Some("m1"));
        assert!(t.unwatch(&ChatId::new("c")));
        assert!(!t.unwatch(&ChatId::new("c")));
        assert!(!t.is_watched(&ChatId::new("c")));
        assert_eq!(t.last_seen(&ChatId::new("c")).map(MessageId::as_str), Some("m1"), "kept while remembered");
    }

    #[test]
    fn the_id_memory_is_bounded_per_chat() {
        let mut t = Tracker::new(TrackerLimits { ids_per_chat: 3, max_chats: 10 });
        for i in 0..5 {
            assert!(t.live(&msg("c", &format!("m{i}"), i)));
        }
        assert!(!t.live(&msg("c", "m4", 4)));
        assert!(!t.live(&msg("c", "m2", 2)));
        assert!(t.live(&msg("c", "m1", 1)), "m1 was forgotten: a duplicate that old passes");
    }

    #[test]
    fn unwatched_chats_are_forgotten_least_recent_first_watched_ones_never() {
        let mut t = Tracker::new(TrackerLimits { ids_per_chat: 8, max_chats: 2 });
        t.watch(ChatId::new("w"), None);
        t.live(&msg("a", "a1", 1));
        t.live(&msg("b", "b1", 1));
        t.live(&msg("a", "a2", 2));
        t.live(&msg("c", "c1", 1));
        assert_eq!(t.len(), 3, "w (watched) and the two most recent: a, c");
        assert_eq!(t.last_seen(&ChatId::new("b")), None, "b was the least recent");
        assert!(t.live(&msg("b", "b1", 1)), "forgotten, so passed again");
        assert_eq!(t.watched(), [ChatId::new("w")]);
        for i in 0..10 {
            t.live(&msg(&format!("x{i}"), "m", 1));
        }
        assert!(t.is_watched(&ChatId::new("w")));
        assert_eq!(t.len(), 3);
    }
}
