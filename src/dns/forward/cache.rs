//! A small answer cache for forwarded queries that honours upstream TTLs.
//!
//! Keyed by (name, type, class); bounded in entries and in bytes (least recently used goes
//! first, counted). The lock is a plain mutex held only to get or put an `Arc`, never across
//! `.await`. Only NOERROR and NXDOMAIN answers with a positive TTL are kept (RFC 2308: a
//! negative answer for its SOA's TTL and MINIMUM), for at most `max_ttl`. Nothing is served
//! past its TTL, except, when `serve_stale` is set, an answer that expired less than that long
//! ago while every upstream fails (RFC 8767; TTL 30, counted).
//!
//! An entry is kept in one form, encoded as the full path encodes it after the header
//! ([`Encoded`]), and both paths relay from it through [`Encoded::write_sections`], which
//! ages the TTLs: the UDP fast path writes it behind its own header (ID, flags and OPT written
//! in) without decoding anything, and the full path decodes it ([`Cache::get`]). Two indexes
//! share it: the LRU, under the lock, for order and bounds, and a lock-free map keyed by the
//! lowercase question for the fast path; an entry enters and leaves both together.

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
use metrics::counter;

use crate::{
    dns::wire::{self, HEADER_LEN},
    telemetry::names::{FORWARD_CACHE_EVICTIONS_TOTAL, FORWARD_CACHE_TOTAL},
};

/// RFC 8767 4: the TTL of an answer served stale.
pub const STALE_TTL: u32 = 30;

/// How much the cache may hold, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Answers kept at once; 0 turns the cache off.
    pub entries: usize,
    /// Bytes kept at once (an estimate per answer: its encoded size, the places of its TTLs,
    /// its key, and the entry's fixed cost).
    pub max_bytes: usize,
    /// The longest an answer is kept, whatever its TTL says.
    pub max_ttl: u32,
    /// How long past its TTL an answer may still be served when every upstream fails (RFC
    /// 8767); 0 never.
    pub serve_stale: u32,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            entries: 10_000,
            max_bytes: 16 << 20,
            max_ttl: 3600,
            serve_stale: 0,
        }
    }
}

/// The fixed cost of an entry beyond its bytes: keys, `Arc`s, the LRU's node, the index's slot.
const ENTRY_OVERHEAD: usize = 400;

type Key = (LowerName, RecordType, DNSClass);

struct Entry {
    encoded: Arc<Encoded>,
    /// Its key in `encoded`.
    question: Box<[u8]>,
    /// What it counts against `max_bytes`.
    cost: usize,
}

/// How a cached answer is served: its TTLs lowered by the whole seconds it has spent here, or,
/// past its TTL when every upstream fails, each [`STALE_TTL`] (RFC 8767 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Fresh { age: u32 },
    Stale,
}

/// The LRU and the bytes it holds, under one lock.
struct Entries {
    lru: LruCache<Key, Entry>,
    bytes: usize,
}

/// A cached answer encoded as the full path encodes it after the header.
#[derive(Debug)]
pub struct Encoded {
    /// The question as first asked (its case as sent), then the answer, authority and
    /// additional sections as the upstream ordered them. Compression pointers count from the
    /// message's start, so they hold behind any 12-octet header.
    pub body: Box<[u8]>,
    /// ANCOUNT, NSCOUNT and ARCOUNT of `body` (QDCOUNT is 1; the OPT is not counted here).
    counts: [u16; 3],
    /// The upstream's rcode (NOERROR or NXDOMAIN).
    pub rcode: u8,
    /// Where each record's TTL sits in `body`, and its value when stored.
    ttls: Box<[(usize, u32)]>,
    stored: Instant,
    /// The entry's life: the smallest TTL (see `cacheable_ttl`).
    ttl: u32,
    question_len: usize,
}

impl Encoded {
    /// The question section as first asked.
    pub fn question(&self) -> &[u8] {
        &self.body[..self.question_len]
    }

    /// Seconds since stored, as both paths age TTLs; `None` once it has expired.
    pub fn age(&self) -> Option<u32> {
        let age = self.stored.elapsed();
        (age < Duration::from_secs(u64::from(self.ttl))).then_some(age.as_secs() as u32)
    }

    /// The message after its first four octets (ID and flags, the caller's): the four counts
    /// (ARCOUNT one more when the caller appends an OPT, `opt`), then the question and the
    /// upstream's sections with every TTL as `served` says. What both paths relay.
    pub fn write_sections(&self, out: &mut Vec<u8>, served: Served, opt: bool) {
        let [answers, authorities, additionals] = self.counts;
        debug_assert!(out.len() >= 4, "the caller writes the ID and flags first");
        let start = out.len().saturating_sub(4);
        let [an0, an1] = answers.to_be_bytes();
        let [ns0, ns1] = authorities.to_be_bytes();
        let [ar0, ar1] = (additionals + u16::from(opt)).to_be_bytes();
        // One `extend_from_slice` for the four counts: one per count cost the fast path's
        // cached answers about 10 instructions (`benches/instructions.sh`).
        out.extend_from_slice(&[0, 1, an0, an1, ns0, ns1, ar0, ar1]);
        out.extend_from_slice(&self.body);
        for &(at, ttl) in self.ttls.iter() {
            let ttl = match served {
                Served::Fresh { age } => ttl.saturating_sub(age),
                Served::Stale => STALE_TTL,
            };
            let at = start + HEADER_LEN + at;
            out[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
        }
    }

    /// The upstream's answer as a message (its rcode and sections; ID 0), served as `served`
    /// says: what the full path relays. `None` if hickory cannot read back what it wrote.
    pub fn message(&self, served: Served) -> Option<Message> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.body.len());
        bytes.extend_from_slice(&[0, 0, 0x80, self.rcode]);
        self.write_sections(&mut bytes, served, false);
        Message::from_vec(&bytes).ok()
    }

    /// What it counts against the cache's `max_bytes`, keyed by `key`.
    fn cost(&self, key: &[u8]) -> usize {
        HEADER_LEN
            + self.body.len()
            + self.ttls.len() * std::mem::size_of::<(usize, u32)>()
            + 2 * key.len() // in the LRU's entry and as the map's key
            + ENTRY_OVERHEAD
    }
}

pub struct Cache {
    entries: Option<Mutex<Entries>>,
    limits: CacheLimits,
    /// Lowercase question (QNAME, QTYPE, QCLASS on the wire) → the entry encoded.
    encoded: DashMap<Box<[u8]>, Arc<Encoded>, foldhash::quality::RandomState>,
}

/// The question's bytes with its name lowercased: the key of the encoded map.
pub fn lowercase_question(question: &[u8]) -> Option<Box<[u8]>> {
    let mut key: Box<[u8]> = question.into();
    wire::lowercase_question(&mut key).then_some(key)
}

/// `answer` to `question` encoded after a header, with where its TTLs are.
fn encode(question: &Query, answer: &Message, ttl: u32) -> Option<Encoded> {
    let mut response = Message::response(0, OpCode::Query);
    response.metadata.message_type = MessageType::Response;
    response.queries = vec![question.clone()];
    super::relay_into(&mut response, answer.clone());
    let bytes = response.to_vec().ok()?;
    let count = |at: usize| wire::u16_at(&bytes, at);
    let counts = [count(6)?, count(8)?, count(10)?];
    let records = counts.iter().map(|c| usize::from(*c)).sum::<usize>();
    // The question's name, then its type and class.
    let mut at = wire::skip_name(&bytes, HEADER_LEN)? + 4;
    let question_len = at - HEADER_LEN;
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
        question_len,
    })
}

/// The TTL a whole answer may be cached for: the smallest record TTL, and for a negative answer
/// the SOA's (RFC 2308: min of its TTL and MINIMUM).
fn cacheable_ttl(answer: &Message, max_ttl: u32) -> Option<u32> {
    if !matches!(
        answer.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) || answer.metadata.truncation
    {
        return None;
    }
    // RFC 2308 §5: a negative answer without an SOA SHOULD NOT be cached (it says nothing of
    // how long the name stays absent; unbound re-asks after seconds, dnsmasq does not keep it).
    if answer.answers.is_empty()
        && !answer
            .authorities
            .iter()
            .any(|r| matches!(r.data, RData::SOA(_)))
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
    (ttl > 0).then_some(ttl.min(max_ttl))
}

impl Cache {
    pub fn new(limits: CacheLimits) -> Cache {
        let entries = NonZeroUsize::new(limits.entries).map(|c| {
            Mutex::new(Entries {
                lru: LruCache::new(c),
                bytes: 0,
            })
        });
        Cache {
            entries,
            limits,
            encoded: DashMap::default(),
        }
    }

    /// Drops every answer (the upstreams changed: what the old ones said, NXDOMAIN for a
    /// VPN-only name before the VPN came up, say, must not outlive them).
    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            let mut entries = entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.lru.clear();
            entries.bytes = 0;
        }
        self.encoded.clear();
    }

    /// Drops `entry`'s encoded form and its bytes (it has left the LRU).
    fn forget(&self, entries: &mut Entries, entry: &Entry) {
        entries.bytes = entries.bytes.saturating_sub(entry.cost);
        self.encoded.remove(&entry.question);
    }

    /// The encoded entry for a lowercase question (see [`lowercase_question`]), if cached.
    pub fn encoded(&self, question: &[u8]) -> Option<Arc<Encoded>> {
        self.encoded.get(question).map(|e| Arc::clone(e.value()))
    }

    /// A cached answer and the whole seconds it has spent here, while its TTL lasts; `None`
    /// once it has expired (it is kept for `serve_stale` more, then dropped).
    pub fn fresh(&self, key: &Key) -> Option<(Arc<Encoded>, u32)> {
        self.lookup(key, false)
    }

    /// [`Cache::fresh`] as a message, its TTLs lowered by its age (tests read it so).
    #[cfg(test)]
    fn get(&self, key: &Key) -> Option<Message> {
        let (encoded, age) = self.fresh(key)?;
        encoded.message(Served::Fresh { age })
    }

    /// An answer that expired less than `serve_stale` ago, to be served with TTL
    /// [`STALE_TTL`] ([`Served::Stale`]): for when every upstream has failed (RFC 8767).
    /// Counted.
    pub fn stale(&self, key: &Key) -> Option<Arc<Encoded>> {
        let (encoded, _) = self.lookup(key, true)?;
        counter!(FORWARD_CACHE_TOTAL, "result" => "stale").increment(1);
        Some(encoded)
    }

    /// The entry for `key` and its age in seconds: fresh only, or (`stale`) expired within
    /// the serve-stale window only. An entry past both is dropped.
    fn lookup(&self, key: &Key, stale: bool) -> Option<(Arc<Encoded>, u32)> {
        let mut entries = self
            .entries
            .as_ref()?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let entry = entries.lru.get(key)?;
        let age = entry.encoded.stored.elapsed();
        let ttl = entry.encoded.ttl;
        let fresh = age < Duration::from_secs(u64::from(ttl));
        let keep = Duration::from_secs(u64::from(ttl) + u64::from(self.limits.serve_stale));
        let found = (Arc::clone(&entry.encoded), age.as_secs() as u32);
        if age >= keep {
            if let Some(gone) = entries.lru.pop(key) {
                self.forget(&mut entries, &gone);
            }
            return None;
        }
        (fresh != stale).then_some(found)
    }

    /// Caps `answer`'s TTLs at `max_ttl`, keeps it for `question` (keyed by `key`, the
    /// question lowercased) if it may be cached, and returns it capped: what a miss relays, so
    /// that no client keeps an answer longer than the cache would.
    pub fn put(&self, key: Key, question: &Query, mut answer: Message) -> Message {
        set_ttls(&mut answer, |ttl| sane_ttl(ttl).min(self.limits.max_ttl));
        self.keep(key, question, &answer);
        answer
    }

    /// [`Cache::put`]'s keeping, of an answer already capped. An answer that does not encode
    /// (or whose question does not read back) is not kept: there is one form or none.
    fn keep(&self, key: Key, question: &Query, answer: &Message) {
        let (Some(entries), Some(ttl)) = (
            self.entries.as_ref(),
            cacheable_ttl(answer, self.limits.max_ttl),
        ) else {
            return;
        };
        // Both paths must be able to serve it: the fast path writes the bytes, the full path
        // decodes them where it cannot relay them whole. hickory writes some records it will
        // not read back (an empty TXT or NULL outside an UPDATE): those are not kept.
        let Some(encoded) =
            encode(question, answer, ttl).filter(|e| e.message(Served::Fresh { age: 0 }).is_some())
        else {
            return;
        };
        let Some(question_key) = lowercase_question(encoded.question()) else {
            return;
        };
        let cost = encoded.cost(&question_key);
        if cost > self.limits.max_bytes {
            return;
        }
        let encoded = Arc::new(encoded);
        let entry = Entry {
            encoded: Arc::clone(&encoded),
            question: question_key.clone(),
            cost,
        };
        let mut entries = entries.lock().unwrap_or_else(|p| p.into_inner());
        // Under the lock, so that the LRU, its bytes and the map change together.
        if let Some(old) = entries.lru.pop(&key) {
            self.forget(&mut entries, &old);
        }
        while entries.bytes + cost > self.limits.max_bytes {
            let Some((_, evicted)) = entries.lru.pop_lru() else {
                break;
            };
            self.forget(&mut entries, &evicted);
            counter!(FORWARD_CACHE_EVICTIONS_TOTAL, "reason" => "bytes").increment(1);
        }
        entries.bytes += cost;
        if let Some((_, evicted)) = entries.lru.push(key, entry) {
            self.forget(&mut entries, &evicted);
            counter!(FORWARD_CACHE_EVICTIONS_TOTAL, "reason" => "entries").increment(1);
        }
        self.encoded.insert(question_key, encoded);
    }
}

#[cfg(test)]
impl Cache {
    fn lru_ttl(&self, key: &Key) -> Option<u32> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        entries.lru.get(key).map(|e| e.encoded.ttl)
    }
    fn bytes(&self) -> usize {
        self.entries
            .as_ref()
            .and_then(|e| e.lock().ok().map(|e| e.bytes))
            .unwrap_or(0)
    }
}

/// RFC 2181 §8: a TTL with its top bit set (above 2^31 − 1) is taken as 0, relayed as 0 and
/// never cached.
fn sane_ttl(ttl: u32) -> u32 {
    if ttl > i32::MAX as u32 { 0 } else { ttl }
}

/// Maps every record's TTL in `message` by `ttl`.
fn set_ttls(message: &mut Message, ttl: impl Fn(u32) -> u32) {
    for record in message
        .answers
        .iter_mut()
        .chain(message.authorities.iter_mut())
        .chain(message.additionals.iter_mut())
    {
        record.ttl = ttl(record.ttl);
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

    fn limits(entries: usize) -> CacheLimits {
        CacheLimits {
            entries,
            ..CacheLimits::default()
        }
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
    fn a_cleared_cache_holds_nothing_in_either_form() {
        let cache = Cache::new(limits(8));
        cache.put(key(), &question(), answer(60));
        assert!(cache.get(&key()).is_some());
        use hickory_server::proto::serialize::binary::BinEncodable;
        let wire = lowercase_question(&question().to_bytes().expect("encode")).expect("question");
        assert!(cache.encoded(&wire).is_some());
        cache.clear();
        assert!(cache.get(&key()).is_none());
        assert!(cache.encoded(&wire).is_none());
        cache.put(key(), &question(), answer(60));
        assert!(cache.get(&key()).is_some(), "usable after");
    }

    #[test]
    fn keeps_positive_ttl_answers_and_skips_zero_ttl_and_servfail() {
        let cache = Cache::new(limits(8));
        cache.put(key(), &question(), answer(0));
        assert!(cache.get(&key()).is_none());
        let mut failed = answer(60);
        failed.metadata.response_code = ResponseCode::ServFail;
        cache.put(key(), &question(), failed);
        assert!(cache.get(&key()).is_none());
        cache.put(key(), &question(), answer(60));
        let hit = cache.get(&key()).expect("cached");
        assert!(hit.answers[0].ttl <= 60 && hit.answers[0].ttl >= 59);
    }

    #[test]
    fn negative_answers_without_an_soa_and_ttls_past_two_to_the_31_are_not_kept() {
        let cache = Cache::new(limits(8));
        // NXDOMAIN with an NS in authority and no SOA: RFC 2308 §5, not cached.
        let mut nx = Message::query();
        nx.metadata.message_type = hickory_server::proto::op::MessageType::Response;
        nx.metadata.response_code = ResponseCode::NXDomain;
        nx.authorities.push(Record::from_rdata(
            Name::from_str("example.").expect("name"),
            3600,
            RData::NS(hickory_server::proto::rr::rdata::NS(
                Name::from_str("ns.example.").expect("name"),
            )),
        ));
        cache.put(key(), &question(), nx);
        assert!(cache.get(&key()).is_none(), "no SOA, not kept");
        // A TTL with its top bit set is 0: relayed as 0, not kept (RFC 2181 §8).
        let relayed = cache.put(key(), &question(), answer(0x8000_0000));
        assert_eq!(relayed.answers[0].ttl, 0);
        assert!(cache.get(&key()).is_none());
        let relayed = cache.put(key(), &question(), answer(i32::MAX as u32));
        assert_eq!(relayed.answers[0].ttl, 3600, "2^31 - 1 is a TTL, capped");
    }

    #[test]
    fn an_entry_is_kept_encoded_with_its_ttls_and_goes_with_it() {
        let cache = Cache::new(limits(1));
        cache.put(key(), &question(), answer(60));
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
        cache.put(other, &other_question, answer(60));
        assert!(cache.encoded(&lower).is_none());
    }

    #[test]
    fn ttls_are_capped_bytes_bounded_and_stale_answers_served_only_in_their_window() {
        // The cap: an answer of TTL 86400 is kept for max_ttl.
        let capped = Cache::new(CacheLimits {
            max_ttl: 120,
            ..limits(8)
        });
        let relayed = capped.put(key(), &question(), answer(86400));
        assert_eq!(relayed.answers[0].ttl, 120, "relayed as kept");
        assert!(capped.lookup(&key(), false).is_some());
        assert_eq!(capped.lru_ttl(&key()), Some(120));

        // The byte bound: room for two answers of this size, so a third evicts the oldest.
        // Encoded: the question (16) and one A record (16); one TTL's place; the key (16).
        let one = HEADER_LEN + 16 + 16 + std::mem::size_of::<(usize, u32)>() + 16 + ENTRY_OVERHEAD;
        let small = Cache::new(CacheLimits {
            max_bytes: 2 * one + 10,
            ..limits(100)
        });
        let named = |n: &str| {
            (
                (
                    LowerName::from_str(n).expect("name"),
                    RecordType::A,
                    DNSClass::IN,
                ),
                Query::query(Name::from_ascii(n).expect("name"), RecordType::A),
            )
        };
        for n in ["a.example.", "b.example.", "c.example."] {
            let (k, q) = named(n);
            small.put(k, &q, answer(60));
        }
        assert!(small.get(&named("a.example.").0).is_none(), "evicted");
        assert!(small.get(&named("c.example.").0).is_some());
        assert!(small.bytes() <= 2 * one + 10, "{}", small.bytes());

        // Stale: only when asked for it, and only within the window.
        let stale = Cache::new(CacheLimits {
            serve_stale: 60,
            ..limits(8)
        });
        stale.put(key(), &question(), answer(1));
        assert!(stale.stale(&key()).is_none(), "still fresh");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(stale.get(&key()).is_none(), "expired: not served fresh");
        let served = stale
            .stale(&key())
            .and_then(|e| e.message(Served::Stale))
            .expect("served stale");
        assert_eq!(served.answers[0].ttl, STALE_TTL);
        let off = Cache::new(limits(8));
        off.put(key(), &question(), answer(1));
        std::thread::sleep(Duration::from_millis(1100));
        assert!(off.stale(&key()).is_none(), "off by default");
    }

    #[test]
    fn capacity_zero_disables() {
        let cache = Cache::new(limits(0));
        cache.put(key(), &question(), answer(60));
        assert!(cache.get(&key()).is_none());
    }
}
