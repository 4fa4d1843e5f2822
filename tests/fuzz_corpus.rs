//! Replays the fuzz targets' seed corpus (tests/fuzz/corpus) through the same entry points
//! the fuzzers drive, so every input kept there, crash regressions included, runs in the
//! ordinary test suite, with no nightly toolchain.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        // A panic names the input through the test's output.
        eprintln!("{target}: {}", path.display());
        run(&data);
        count += 1;
    }
    assert!(count > 0, "an empty corpus for {target}");
}

#[test]
fn udp_answer_corpus() {
    replay("udp_answer", netalias::fuzz::udp_answer);
}

#[test]
fn tcp_framing_corpus() {
    replay("tcp_framing", netalias::fuzz::tcp_stream);
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", netalias::fuzz::config);
}

#[test]
fn stack_parse_corpus() {
    replay("stack_parse", netalias::fuzz::stack);
}
