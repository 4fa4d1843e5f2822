//! One lookup, one turn: copies of one question that reach several of netalias's addresses
//! at once take one turn of the rotation between them, and get the same order.
//!
//! musl sends each question to every nameserver in resolv.conf at once, from one socket (so
//! one source port and one ID); a container on two networks whose resolv.conf names
//! netalias's address on each sends it from two source addresses too. Taking a turn per copy,
//! two replicas behind an alias gave such a client the same first member 12 lookups of 12.
//!
//! A fixed table of [`SLOTS`] words, lock-free and allocation-free (the UDP fast path uses it):
//! a question's key (who asks, as [`crate::registry::AskerId`], the same for every address of a container; its
//! source port; the query's ID; the lowercase name and type; the record set) hashes to a slot
//! and a 32-bit check, and the slot holds the check, when, and the offset the first copy took.
//! A copy within [`WINDOW_TICKS`] reads the offset back instead of taking a turn. The first
//! copy claims the slot (pending) before it takes the turn, so two copies on two receive
//! loops at the same instant do not both take one.
//!
//! It decides only the order, never what is answered: an offset is taken modulo the set's
//! size. What it can get wrong is bounded: a slot overwritten by another question before the
//! copy arrives costs that copy a turn of its own (as before this memo), and a check that
//! matches by chance (1 in 2^32) repeats an order. TCP does not use it (see `exchange`).
//!
//! A peek ([`Turn::peek`], for `netalias explain`) neither takes a turn nor touches the memo:
//! it reads the offset the next fresh question will take, so a prediction made with the answer
//! rules themselves is that question's answer.

use std::{
    hash::{BuildHasher, Hasher},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use crate::registry::{AskerId, RecordSet, Registry, Rotated, SrvProto, SrvTarget};

/// Slots in the table: 32 KB. A copy arrives within a millisecond of the first (the kernel
/// delivers both from one `sendmmsg`/two `sendto`s); 4,096 slots are overwritten no sooner than
/// that at up to 4 million questions a second.
const SLOTS: usize = 4096;
/// A tick of the memo's clock: 2^6 ms.
const TICK_SHIFT: u32 = 6;
/// How long a turn is remembered: 16 ticks, about one second. Copies arrive within
/// milliseconds; musl's own retry of an unanswered question (same ID, after 2.5 s by default)
/// is a new lookup.
const WINDOW_TICKS: u16 = 16;
/// The offset field's value while the first copy is taking its turn.
const PENDING: u16 = u16::MAX;
/// How long a copy waits for a first copy that is taking its turn: spins (the turn takes
/// nanoseconds), then yields to it, in case its thread was descheduled mid-turn on a busy
/// machine; then it takes a turn of its own rather than wait longer.
const SPINS: u32 = 1024;
const YIELDS: u32 = 16;
/// Tries at a slot that other threads keep changing before taking a turn without the memo.
const TRIES: u32 = 16;

/// A UDP question's sender, as far as copies go: its source port, and the query's ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sender {
    pub port: u16,
    pub id: u16,
}

/// The memo of turns taken (one per responder, shared by every listener and path).
pub struct Turns {
    slots: Box<[AtomicU64]>,
    /// foldhash's fast variant: the key's 32-bit check and slot need no more mixing than that.
    hasher: foldhash::fast::RandomState,
    born: Instant,
}

impl Default for Turns {
    fn default() -> Self {
        Turns {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: Default::default(),
            born: Instant::now(),
        }
    }
}

impl std::fmt::Debug for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Turns")
    }
}

/// How one question takes its turns: as a copy `sender` may have sent to several of our
/// addresses (UDP), or afresh (no sender: TCP, whose client picks one server at a time); or
/// not at all (a peek: the order the next question would get, which `netalias explain`
/// predicts with the answer rules themselves and must leave for that question to take).
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    turns: &'a Turns,
    sender: Option<Sender>,
    peek: bool,
}

impl<'a> Turn<'a> {
    pub fn new(turns: &'a Turns, sender: Option<Sender>) -> Turn<'a> {
        Turn {
            turns,
            sender,
            peek: false,
        }
    }

    /// The turn the next question would take, taking none and remembering none.
    pub fn peek(turns: &'a Turns) -> Turn<'a> {
        Turn {
            turns,
            sender: None,
            peek: true,
        }
    }

    /// The A answer of `set` for `name` (its [`crate::registry::NameKey`] bytes) asked by `asker`.
    #[inline]
    pub fn v4<'s>(
        self,
        registry: &Registry,
        asker: IpAddr,
        name: &[u8],
        set: &'s RecordSet,
    ) -> Rotated<'s, Ipv4Addr> {
        let members = set.v4_members().len();
        let offset = self.offset(
            registry,
            asker,
            (name, 1),
            set,
            members,
            (|| set.take_turn_v4(), || set.peek_turn_v4()),
        );
        set.v4_from(offset)
    }

    /// The AAAA answer of `set` for `name` asked by `asker`.
    #[inline]
    pub fn v6<'s>(
        self,
        registry: &Registry,
        asker: IpAddr,
        name: &[u8],
        set: &'s RecordSet,
    ) -> Rotated<'s, Ipv6Addr> {
        let members = set.v6_members().len();
        let offset = self.offset(
            registry,
            asker,
            (name, 28),
            set,
            members,
            (|| set.take_turn_v6(), || set.peek_turn_v6()),
        );
        set.v6_from(offset)
    }

    /// The SRV answer of `set` for `service` over `proto`, asked as `name` by `asker`.
    pub fn srv<'s>(
        self,
        registry: &Registry,
        asker: IpAddr,
        name: &[u8],
        set: &'s RecordSet,
        (service, proto): (&str, SrvProto),
    ) -> Rotated<'s, SrvTarget> {
        let members = set.srv_len(service, proto);
        let offset = self.offset(
            registry,
            asker,
            (name, 33),
            set,
            members,
            (|| set.take_turn_srv(service, proto), || set.peek_turn_srv()),
        );
        set.srv_from(service, proto, offset)
    }

    /// The offset of this question's turn: the one a copy of it took, or `take`'s; a peek's
    /// is `peek`'s, the offset `take` would return next.
    fn offset(
        self,
        registry: &Registry,
        asker: IpAddr,
        question: (&[u8], u16),
        set: &RecordSet,
        members: usize,
        (take, peek): (impl FnOnce() -> usize, impl FnOnce() -> usize),
    ) -> usize {
        if self.peek {
            return peek();
        }
        // What the memo costs (benches/instructions.sh, 3 members behind `app`, one question
        // in three): the fast path's mean went from 1,542 to 1,717 instructions per query,
        // about 525 per answer it rotates: the asker's client lookup, the hash, the clock.
        // One member (the commonest name) has one order: no turn to share, nothing to hash.
        // Past `PENDING` members an offset does not fit a slot (no UDP answer holds that many).
        let Some(sender) = self
            .sender
            .filter(|_| members > 1 && members < usize::from(PENDING))
        else {
            return take();
        };
        // The cursors are shared by every version of the set, so a copy that finds the set
        // changed (a member added) still shares the turn.
        // A set with two members of the family asked has cursors (a lone one may or may not:
        // it keeps those it had once it rotated), so this never takes the `else`.
        let Some(cursors) = set.cursors() else {
            debug_assert!(false, "{members} members and no cursors");
            return take();
        };
        let set_id = std::sync::Arc::as_ptr(cursors) as usize;
        // Written field by field, the small ones packed in one word: hashing the tuple as it
        // is wrote each field (and the enum's discriminant) separately.
        let mut hasher = self.turns.hasher.build_hasher();
        match registry.asker_id(asker) {
            AskerId::Container(container) => hasher.write_u64(container),
            AskerId::Address(IpAddr::V4(ip)) => hasher.write_u32(ip.to_bits()),
            AskerId::Address(IpAddr::V6(ip)) => hasher.write_u128(ip.to_bits()),
        }
        let (name, qtype) = question;
        hasher.write_u64(
            u64::from(sender.port) << 32 | u64::from(sender.id) << 16 | u64::from(qtype),
        );
        hasher.write_usize(set_id);
        hasher.write(name);
        self.turns.offset(hasher.finish(), take)
    }
}

/// A slot's word: the check (32 bits), the tick it was taken at (16), the offset (16).
fn pack(check: u32, tick: u16, offset: u16) -> u64 {
    (u64::from(check) << 32) | (u64::from(tick) << 16) | u64::from(offset)
}

impl Turns {
    /// The memo's clock, in ticks since it was made (wrapping every 70 minutes, which only the
    /// 32-bit check could confuse).
    fn now(&self) -> u16 {
        (self.born.elapsed().as_millis() >> TICK_SHIFT) as u16
    }

    /// The offset of the turn for `key`: a fresh copy's, else `take`'s (remembered).
    fn offset(&self, key: u64, take: impl FnOnce() -> usize) -> usize {
        self.offset_at(key, self.now(), take)
    }

    fn offset_at(&self, key: u64, now: u16, take: impl FnOnce() -> usize) -> usize {
        let slot = &self.slots[key as usize % SLOTS];
        // Never 0, so an empty slot (all zeros) never matches.
        let check = ((key >> 32) as u32).max(1);
        let mut seen = slot.load(Ordering::Acquire);
        let (mut spins, mut tries) = (0, 0);
        loop {
            let fresh = now.wrapping_sub((seen >> 16) as u16) <= WINDOW_TICKS;
            if (seen >> 32) as u32 == check && fresh {
                match seen as u16 {
                    PENDING if spins < SPINS + YIELDS => {
                        spins += 1;
                        if spins <= SPINS {
                            std::hint::spin_loop();
                        } else {
                            std::thread::yield_now();
                        }
                        seen = slot.load(Ordering::Acquire);
                        continue;
                    }
                    // Its first copy's thread stalled mid-turn: a turn of our own, not a wait.
                    PENDING => return take(),
                    offset => return usize::from(offset),
                }
            }
            if tries == TRIES {
                return take();
            }
            tries += 1;
            let claim = pack(check, now, PENDING);
            match slot.compare_exchange_weak(seen, claim, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let offset = take();
                    // The callers pass fewer than `PENDING` members; the offset is below that.
                    let taken = pack(check, now, offset as u16);
                    // Unless another question has taken the slot meanwhile: then it is theirs.
                    let _ =
                        slot.compare_exchange(claim, taken, Ordering::AcqRel, Ordering::Relaxed);
                    return offset;
                }
                Err(now_seen) => seen = now_seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Barrier,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    /// A cursor over `n` members, as a record set's.
    fn turn_of(cursor: &AtomicUsize, n: usize) -> usize {
        cursor.fetch_add(1, Ordering::Relaxed) % n
    }

    #[test]
    fn a_copy_within_the_window_reads_the_first_copys_turn() {
        let turns = Turns::default();
        let cursor = AtomicUsize::new(0);
        let first = turns.offset_at(42, 100, || turn_of(&cursor, 3));
        let copy = turns.offset_at(42, 100 + WINDOW_TICKS, || turn_of(&cursor, 3));
        assert_eq!((first, copy), (0, 0));
        assert_eq!(cursor.load(Ordering::Relaxed), 1, "one turn for both");
        // Another question (another key) takes the next turn.
        assert_eq!(turns.offset_at(43, 100, || turn_of(&cursor, 3)), 1);
    }

    #[test]
    fn past_the_window_the_same_question_takes_a_new_turn() {
        let turns = Turns::default();
        let cursor = AtomicUsize::new(0);
        turns.offset_at(42, 100, || turn_of(&cursor, 3));
        let later = turns.offset_at(42, 101 + WINDOW_TICKS, || turn_of(&cursor, 3));
        assert_eq!(later, 1);
        // The clock wraps: a slot from just before the wrap is still fresh just after it.
        turns.offset_at(7, u16::MAX, || turn_of(&cursor, 3));
        assert_eq!(turns.offset_at(7, 2, || turn_of(&cursor, 3)), 2);
        assert_eq!(cursor.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_key_sharing_the_slot_but_not_the_check_takes_its_own_turn() {
        let turns = Turns::default();
        let cursor = AtomicUsize::new(0);
        turns.offset_at(5, 100, || turn_of(&cursor, 4));
        let other = 5 | (9 << 32); // same slot, another check
        assert_eq!(turns.offset_at(other, 100, || turn_of(&cursor, 4)), 1);
        // It took the slot over: the first key, asked again, is a new question.
        assert_eq!(turns.offset_at(5, 100, || turn_of(&cursor, 4)), 2);
    }

    #[test]
    fn a_stalled_first_copy_does_not_block_the_next() {
        let turns = Turns::default();
        let cursor = AtomicUsize::new(0);
        // A claim left pending (its thread descheduled) makes a copy wait briefly, then take
        // its own turn.
        turns.slots[42].store(pack(1, 100, PENDING), Ordering::Relaxed);
        assert_eq!(
            turns.offset_at(42 | (1 << 32), 100, || turn_of(&cursor, 3)),
            0
        );
        assert_eq!(cursor.load(Ordering::Relaxed), 1);
    }

    /// A server over the embedded default's records (`app`: three members).
    fn responder() -> crate::dns::Responder {
        let config = crate::config::Config::embedded_default().expect("embedded default");
        let registry = Arc::new(Registry::new(config.server.domain()).expect("domain"));
        crate::source::static_file::StaticSource::default().sync(&config, &registry);
        crate::dns::Responder::new(registry, Arc::new(crate::dns::Settings::new(0, 1232)))
    }

    /// `app.` A with `id`, as a client sends it (RD).
    fn app_query(id: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[
            1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'p', b'p', 0, 0, 1, 0, 1,
        ]);
        q
    }

    /// The first address of an answer to `app_query`.
    fn first(answer: &[u8]) -> u8 {
        // Header, question (`app` in 5 octets, type, class), then the first record: pointer,
        // type, class, TTL and length (12), and the address's last octet.
        answer[12 + 9 + 12 + 3]
    }

    /// A copy answered by either path gets the order the other path gave the first copy, and
    /// takes no turn; another ID, another port or TCP takes a new turn.
    #[test]
    fn the_fast_and_full_paths_share_a_copys_turn() {
        use hickory_server::net::xfer::Protocol;
        let responder = responder();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let asker = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let over = |protocol, packet: &[u8], port| {
            let src = std::net::SocketAddr::new(asker, port);
            let answer = crate::dns::exchange::answer_bytes(&responder, packet, src, protocol);
            runtime.block_on(answer).expect("an answer")
        };
        let full = |packet: &[u8], port| over(Protocol::Udp, packet, port);
        let fast = |packet: &[u8], port| {
            let mut out = Vec::new();
            assert!(super::super::fast::try_answer(
                &responder, packet, asker, port, &mut out
            ));
            out
        };
        // Fast first, then a copy on the full path; then the other way round.
        let a = fast(&app_query(0x1234), 5300);
        assert_eq!(full(&app_query(0x1234), 5300), a, "the same bytes");
        let b = full(&app_query(0x1235), 5300);
        assert_eq!(fast(&app_query(0x1235), 5300), b, "the same bytes");
        // Three members: each new question takes the next; copies took none.
        let c = fast(&app_query(0x1234), 5301); // another port: another question
        let d = full(&app_query(0x1236), 5300);
        let firsts = [first(&a), first(&b), first(&c), first(&d)];
        assert_eq!(
            firsts[3], firsts[0],
            "four turns over three members: {firsts:?}"
        );
        let mut three = firsts[..3].to_vec();
        three.sort_unstable();
        three.dedup();
        assert_eq!(
            three.len(),
            3,
            "three turns, three first members: {firsts:?}"
        );
        // TCP takes a turn of its own, even for a copy of a UDP question.
        let udp = fast(&app_query(0x2000), 5400);
        let tcp = over(Protocol::Tcp, &app_query(0x2000), 5400);
        assert_ne!(first(&udp), first(&tcp), "TCP took a turn of its own");
    }

    /// Two copies released at the same instant on two threads, many times over: each pair
    /// takes exactly one turn and both copies get its offset.
    #[test]
    fn two_copies_racing_on_two_threads_take_one_turn() {
        const ROUNDS: u64 = 2000;
        let turns = Arc::new(Turns::default());
        let cursor = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(2));
        let copy = |_| {
            let (turns, cursor, barrier) = (turns.clone(), cursor.clone(), barrier.clone());
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .map(|round| {
                        barrier.wait();
                        // A key per round, spread over slots and checks.
                        let key = round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        turns.offset_at(key, 100, || turn_of(&cursor, 1000))
                    })
                    .collect::<Vec<_>>()
            })
        };
        let threads: Vec<_> = (0..2).map(copy).collect();
        let results: Vec<Vec<usize>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results[0], results[1], "both copies of each round agree");
        assert_eq!(
            cursor.load(Ordering::Relaxed) as u64,
            ROUNDS,
            "one turn per round"
        );
    }
}
