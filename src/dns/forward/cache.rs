//! A small answer cache for forwarded queries that honours upstream TTLs.
//!
//! Keyed by (name, type, class); bounded (least recently used goes first). The lock is a plain
//! mutex held only to get or put an `Arc`, never across `.await`. Only NOERROR and NXDOMAIN
//! answers with a positive TTL are kept.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_server::proto::{
    op::{Message, ResponseCode},
    rr::{DNSClass, LowerName, RData, RecordType},
};
use lru::LruCache;

/// Longest we keep anything, whatever the upstream says.
const MAX_TTL: u32 = 3600;

type Key = (LowerName, RecordType, DNSClass);

struct Entry {
    answer: Arc<Message>,
    stored: Instant,
    ttl: u32,
}

pub struct Cache {
    entries: Option<Mutex<LruCache<Key, Entry>>>,
}

/// The TTL a whole answer may be cached for: the smallest record TTL, and for a negative answer
/// the SOA's (RFC 2308: min of its TTL and MINIMUM).
fn cacheable_ttl(answer: &Message) -> Option<u32> {
    if !matches!(
        answer.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) || answer.metadata.truncation
    {
        return None;
    }
    let records = answer.answers.iter().chain(answer.authorities.iter());
    let ttl = records
        .map(|r| match &r.data {
            RData::SOA(soa) if answer.answers.is_empty() => r.ttl.min(soa.minimum),
            _ => r.ttl,
        })
        .min()?;
    (ttl > 0).then_some(ttl.min(MAX_TTL))
}

impl Cache {
    /// `capacity` 0 disables caching.
    pub fn new(capacity: usize) -> Cache {
        Cache {
            entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    /// A cached answer with its TTLs lowered by the time it has spent here.
    pub fn get(&self, key: &Key) -> Option<Message> {
        let entries = self.entries.as_ref()?;
        let (answer, age) = {
            let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.get(key)?;
            let age = entry.stored.elapsed();
            if age >= Duration::from_secs(u64::from(entry.ttl)) {
                map.pop(key);
                return None;
            }
            (Arc::clone(&entry.answer), age.as_secs() as u32)
        };
        let mut message = (*answer).clone();
        for record in message
            .answers
            .iter_mut()
            .chain(message.authorities.iter_mut())
            .chain(message.additionals.iter_mut())
        {
            record.ttl = record.ttl.saturating_sub(age);
        }
        Some(message)
    }

    pub fn put(&self, key: Key, answer: &Message) {
        let (Some(entries), Some(ttl)) = (self.entries.as_ref(), cacheable_ttl(answer)) else {
            return;
        };
        let entry = Entry {
            answer: Arc::new(answer.clone()),
            stored: Instant::now(),
            ttl,
        };
        entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_server::proto::rr::{Name, Record, rdata::A};

    use super::*;

    fn answer(ttl: u32) -> Message {
        let mut m = Message::query();
        m.metadata.message_type = hickory_server::proto::op::MessageType::Response;
        m.answers.push(Record::from_rdata(
            Name::from_str("x.example.").expect("name"),
            ttl,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        m
    }

    fn key() -> Key {
        (
            LowerName::from_str("x.example.").expect("name"),
            RecordType::A,
            DNSClass::IN,
        )
    }

    #[test]
    fn keeps_positive_ttl_answers_and_skips_zero_ttl_and_servfail() {
        let cache = Cache::new(8);
        cache.put(key(), &answer(0));
        assert!(cache.get(&key()).is_none());
        let mut failed = answer(60);
        failed.metadata.response_code = ResponseCode::ServFail;
        cache.put(key(), &failed);
        assert!(cache.get(&key()).is_none());
        cache.put(key(), &answer(60));
        let hit = cache.get(&key()).expect("cached");
        assert!(hit.answers[0].ttl <= 60 && hit.answers[0].ttl >= 59);
    }

    #[test]
    fn capacity_zero_disables() {
        let cache = Cache::new(0);
        cache.put(key(), &answer(60));
        assert!(cache.get(&key()).is_none());
    }
}
