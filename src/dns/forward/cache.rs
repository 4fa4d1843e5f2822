//! A small answer cache for forwarded queries that honours upstream TTLs.
//!
//! Keyed by (name, type, class); bounded (least recently used goes first). The lock is a plain
//! mutex held only to get or put an `Arc`, never across `.await`. Only NOERROR and NXDOMAIN
//! answers with a positive TTL are kept.
//!
//! Each entry is also kept encoded, as the full path encodes it after the header, in a
//! lock-free map keyed by the lowercase question: the UDP fast path answers a hit from those
//! bytes (its ID, flags and OPT written in, TTLs aged in place) without decoding anything. The
//! two stay one cache: an entry and its encoded form come and go together.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use dashmap::DashMap;
use hickory_server::proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{DNSClass, LowerName, RData, RecordType},
};
use lru::LruCache;

use crate::dns::wire::{self, HEADER_LEN};

/// Longest we keep anything, whatever the upstream says.
const MAX_TTL: u32 = 3600;

type Key = (LowerName, RecordType, DNSClass);

struct Entry {
    answer: Arc<Message>,
    stored: Instant,
    ttl: u32,
    /// Its key in `encoded`.
    question: Box<[u8]>,
}

/// A cached answer encoded as the full path encodes it after the header.
#[derive(Debug)]
pub struct Encoded {
    /// The question as first asked (its case as sent), then the answer, authority and
    /// additional sections as the upstream ordered them. Compression pointers count from the
    /// message's start, so they hold behind any 12-octet header.
    pub body: Box<[u8]>,
    /// ANCOUNT, NSCOUNT and ARCOUNT of `body` (QDCOUNT is 1; the OPT is not counted here).
    pub counts: [u16; 3],
    /// The upstream's rcode (NOERROR or NXDOMAIN).
    pub rcode: u8,
    /// Where each record's TTL sits in `body`, and its value when stored.
    pub ttls: Box<[(usize, u32)]>,
    pub stored: Instant,
    /// The entry's life: the smallest TTL (see `cacheable_ttl`).
    pub ttl: u32,
}

impl Encoded {
    /// The question section as first asked.
    pub fn question(&self) -> &[u8] {
        let end = question_len(&self.body).unwrap_or(0);
        &self.body[..end]
    }

    /// Seconds since stored, as the full path ages TTLs; `None` once it has expired.
    pub fn age(&self) -> Option<u32> {
        let age = self.stored.elapsed();
        (age < Duration::from_secs(u64::from(self.ttl))).then_some(age.as_secs() as u32)
    }
}

pub struct Cache {
    entries: Option<Mutex<LruCache<Key, Entry>>>,
    /// Lowercase question (QNAME, QTYPE, QCLASS on the wire) → the entry encoded.
    encoded: DashMap<Box<[u8]>, Arc<Encoded>, foldhash::quality::RandomState>,
}

/// The length of the question at the start of `body` (an uncompressed name, type, class).
fn question_len(body: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let len = usize::from(*body.get(at)?);
        if len == 0 {
            return Some(at + 5);
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
}

/// The question's bytes with its name lowercased (length bytes are below `A`; the type and
/// class after the name are left as they are).
pub fn lowercase_question(question: &[u8]) -> Option<Box<[u8]>> {
    let name_end = question.len().checked_sub(4)?;
    let mut key: Box<[u8]> = question.into();
    key[..name_end].make_ascii_lowercase();
    Some(key)
}

/// `answer` to `question` encoded after a header, with where its TTLs are.
fn encode(question: &Query, answer: &Message, ttl: u32) -> Option<Encoded> {
    let mut response = Message::response(0, OpCode::Query);
    response.metadata.message_type = MessageType::Response;
    response.queries = vec![question.clone()];
    response.answers = answer.answers.clone();
    response.authorities = answer.authorities.clone();
    response.additionals = answer.additionals.clone();
    let bytes = response.to_vec().ok()?;
    let count = |at: usize| wire::u16_at(&bytes, at);
    let counts = [count(6)?, count(8)?, count(10)?];
    let records = counts.iter().map(|c| usize::from(*c)).sum::<usize>();
    let mut at = HEADER_LEN + question_len(&bytes[HEADER_LEN..])?;
    let mut ttls = Vec::with_capacity(records);
    for _ in 0..records {
        at = wire::skip_name(&bytes, at)?;
        let ttl_at = at + 4;
        let value = u32::from_be_bytes(bytes.get(ttl_at..ttl_at + 4)?.try_into().ok()?);
        ttls.push((ttl_at - HEADER_LEN, value));
        at = ttl_at + 6 + usize::from(wire::u16_at(&bytes, ttl_at + 4)?);
    }
    (at == bytes.len()).then(|| Encoded {
        body: bytes[HEADER_LEN..].into(),
        counts,
        rcode: answer.metadata.response_code.low(),
        ttls: ttls.into(),
        stored: Instant::now(),
        ttl,
    })
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
            encoded: DashMap::default(),
        }
    }

    /// The encoded entry for a lowercase question (see [`lowercase_question`]), if cached.
    pub fn encoded(&self, question: &[u8]) -> Option<Arc<Encoded>> {
        self.encoded.get(question).map(|e| Arc::clone(e.value()))
    }

    /// A cached answer with its TTLs lowered by the time it has spent here.
    pub fn get(&self, key: &Key) -> Option<Message> {
        let entries = self.entries.as_ref()?;
        let (answer, age) = {
            let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.get(key)?;
            let age = entry.stored.elapsed();
            if age >= Duration::from_secs(u64::from(entry.ttl)) {
                if let Some(gone) = map.pop(key) {
                    self.encoded.remove(&gone.question);
                }
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

    /// Keeps `answer` to `question` (keyed by `key`, the question lowercased).
    pub fn put(&self, key: Key, question: &Query, answer: &Message) {
        let (Some(entries), Some(ttl)) = (self.entries.as_ref(), cacheable_ttl(answer)) else {
            return;
        };
        let encoded = encode(question, answer, ttl);
        let question_key = encoded
            .as_ref()
            .and_then(|e| lowercase_question(e.question()))
            .unwrap_or_default();
        let entry = Entry {
            answer: Arc::new(answer.clone()),
            stored: encoded.as_ref().map_or_else(Instant::now, |e| e.stored),
            ttl,
            question: question_key.clone(),
        };
        let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
        // Under the lock, so that the map and the encoded forms change together.
        if let Some((_, evicted)) = map.push(key, entry) {
            self.encoded.remove(&evicted.question);
        }
        match encoded {
            Some(encoded) if !question_key.is_empty() => {
                self.encoded.insert(question_key, Arc::new(encoded));
            }
            _ => {
                self.encoded.remove(&question_key);
            }
        }
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

    fn question() -> Query {
        Query::query(Name::from_ascii("X.example.").expect("name"), RecordType::A)
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
        cache.put(key(), &question(), &answer(0));
        assert!(cache.get(&key()).is_none());
        let mut failed = answer(60);
        failed.metadata.response_code = ResponseCode::ServFail;
        cache.put(key(), &question(), &failed);
        assert!(cache.get(&key()).is_none());
        cache.put(key(), &question(), &answer(60));
        let hit = cache.get(&key()).expect("cached");
        assert!(hit.answers[0].ttl <= 60 && hit.answers[0].ttl >= 59);
    }

    #[test]
    fn an_entry_is_kept_encoded_with_its_ttls_and_goes_with_it() {
        let cache = Cache::new(1);
        cache.put(key(), &question(), &answer(60));
        let lower = lowercase_question(&[
            1, b'X', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1,
        ])
        .expect("question");
        let encoded = cache.encoded(&lower).expect("encoded");
        assert_eq!(encoded.question()[1], b'X', "the question as asked");
        assert_eq!(encoded.counts, [1, 0, 0]);
        assert_eq!(encoded.ttls.len(), 1);
        let (at, ttl) = encoded.ttls[0];
        assert_eq!(ttl, 60);
        assert_eq!(&encoded.body[at..at + 4], &60u32.to_be_bytes());
        assert!(encoded.age().is_some());
        // Another question evicts it (capacity 1): the encoded form goes with the entry.
        let other = (
            LowerName::from_str("y.example.").expect("name"),
            RecordType::A,
            DNSClass::IN,
        );
        let other_question =
            Query::query(Name::from_str("y.example.").expect("name"), RecordType::A);
        cache.put(other, &other_question, &answer(60));
        assert!(cache.encoded(&lower).is_none());
    }

    #[test]
    fn capacity_zero_disables() {
        let cache = Cache::new(0);
        cache.put(key(), &question(), &answer(60));
        assert!(cache.get(&key()).is_none());
    }
}
