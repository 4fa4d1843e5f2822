//! Pipelined questions on one TCP connection are answered as each is ready (RFC 7766
//! 6.2.1.1), each answer carrying its question's ID: a local answer does not wait behind a
//! slow forwarded one, a connection answers no more than a bounded number at once, and every
//! question is answered in the end, also when the client has already closed its side.

mod common;

use std::{
    io::Write,
    net::{Shutdown, TcpStream},
    time::{Duration, Instant},
};

use common::{upstream::*, *};

/// The seed's records, forwarding the rest to `up`.
fn forwarding_to(up: &FakeUpstream) -> String {
    seed_config("")
        + &format!(
            "\n[forward]\nenabled = true\nupstreams = [\"{}\"]\ntimeout_ms = 3000\n",
            up.addr
        )
}

fn question(id: u16, name: &str) -> Message {
    let mut msg = query(name, RecordType::A);
    msg.metadata.id = id;
    msg
}

/// Every question in one write, back to back.
fn pipeline(stream: &mut TcpStream, questions: &[Message]) {
    let mut burst = Vec::new();
    for q in questions {
        let bytes = q.to_vec().expect("encode");
        burst.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        burst.extend_from_slice(&bytes);
    }
    stream.write_all(&burst).expect("write the pipeline");
}

#[test]
fn a_local_answer_is_not_held_behind_a_slow_forwarded_one() {
    let slow = FakeUpstream::start(Mode::Slow(Duration::from_secs(1)));
    let server = Server::start(&forwarding_to(&slow));
    let mut stream = tcp_connect(server.addr);
    let sent = Instant::now();
    pipeline(
        &mut stream,
        &[question(1, "far.example."), question(2, "app.")],
    );
    let first = tcp_read(&mut stream);
    let local_after = sent.elapsed();
    eprintln!("local answer after {local_after:?} (the forwarded one takes 1 s)");
    assert_eq!(first.metadata.id, 2, "the local answer comes first");
    assert_eq!(a_records(&first).len(), 3);
    assert!(
        local_after < Duration::from_millis(500),
        "the local answer waited {local_after:?}"
    );
    let second = tcp_read(&mut stream);
    let forwarded_after = sent.elapsed();
    eprintln!("forwarded answer after {forwarded_after:?}");
    assert_eq!(
        second.metadata.id, 1,
        "the forwarded answer, with its own ID"
    );
    assert_eq!(second.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        a_records(&second),
        vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]
    );
    assert!(forwarded_after >= Duration::from_millis(900));
}

/// 40 slow forwarded questions and 10 local ones in one burst, more than a connection answers
/// at once (16): the connection stops reading at its bound and reads on as answers go out;
/// every question is answered, each under its own ID. The slow ones take several turns of
/// the upstream's delay, which shows the bound holds.
#[test]
fn more_pipelined_questions_than_a_connection_answers_at_once_are_all_answered() {
    const DELAY: Duration = Duration::from_millis(300);
    let slow = FakeUpstream::start(Mode::Slow(DELAY));
    let server = Server::start(&forwarding_to(&slow));
    let mut stream = tcp_connect(server.addr);
    let questions: Vec<Message> = (0..50u16)
        .map(|i| {
            if i % 5 == 4 {
                question(1000 + i, "app.")
            } else {
                question(1000 + i, &format!("q{i}.far.example."))
            }
        })
        .collect();
    let sent = Instant::now();
    pipeline(&mut stream, &questions);
    let mut ids = Vec::new();
    for _ in 0..questions.len() {
        let answer = tcp_read(&mut stream);
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "answer to {}",
            answer.metadata.id
        );
        assert!(
            !answer.answers.is_empty(),
            "answer to {}",
            answer.metadata.id
        );
        ids.push(answer.metadata.id);
    }
    let took = sent.elapsed();
    eprintln!("50 pipelined questions (40 forwarded, {DELAY:?} each) answered in {took:?}");
    ids.sort_unstable();
    let expected: Vec<u16> = questions.iter().map(|q| q.metadata.id).collect();
    assert_eq!(ids, expected, "each question answered once");
    assert_eq!(
        slow.tcp(),
        40,
        "every forwarded question went upstream once"
    );
    // All 40 at once would take one delay; 16 at a time take three.
    assert!(took >= DELAY * 2, "not bounded: {took:?}");
}

/// A client that sends its questions and closes its side still gets every answer.
#[test]
fn questions_sent_before_the_client_closes_its_side_are_answered() {
    let slow = FakeUpstream::start(Mode::Slow(Duration::from_millis(300)));
    let server = Server::start(&forwarding_to(&slow));
    let mut stream = tcp_connect(server.addr);
    pipeline(
        &mut stream,
        &[question(7, "far.example."), question(8, "app.")],
    );
    stream.shutdown(Shutdown::Write).expect("half-close");
    let mut ids = vec![
        tcp_read(&mut stream).metadata.id,
        tcp_read(&mut stream).metadata.id,
    ];
    ids.sort_unstable();
    assert_eq!(ids, vec![7, 8]);
}
