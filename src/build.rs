//! Build script: for the shipped binary only (x86_64 Linux, glibc, `crt-static`, optimised),
//! hands the linker `src/text-order.txt`, the functions the server runs as it starts and serves
//! (made by `benches/text-order.sh`), so that lld puts them together in the text. It decides
//! nothing else and touches no source.
//!
//! Why: the kernel maps a binary in 64-128 KB windows around each page touched. Spread over
//! 9 MB of text, the 1.5 MB a server runs kept 6.6 MB of the binary resident
//! (`benches/memory.sh`); together, 2.8 MB. Only lld takes the file, and Rust links with lld on
//! this target from 1.90: an older rustc links as before. A name the binary does not have is
//! skipped (`--no-warn-symbol-ordering`); the names change with the toolchain, so a file made
//! with another rustc is used with a warning that says how to remake it.

use std::{env, path::Path, process::Command};

const ORDER: &str = "src/text-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    println!("cargo:rerun-if-changed={ORDER}");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let shipped = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
        && var("PROFILE") == "release";
    if !shipped {
        return;
    }
    let rustc = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-vV")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let release = (rustc.lines())
        .find_map(|line| line.strip_prefix("release: "))
        .unwrap_or_default()
        .to_string();
    let minor: u32 = (release.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if minor < 90 {
        return; // links with the system's linker, which takes no ordering file
    }
    let path = Path::new(&var("CARGO_MANIFEST_DIR")).join(ORDER);
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!(
            "cargo:warning={ORDER} is missing: the binary works, with ~3.7 MB more of it resident; make it with `bash benches/text-order.sh`"
        );
        return;
    };
    let made_with = (text.lines())
        .find_map(|line| line.strip_prefix("# rustc "))
        .unwrap_or_default();
    if made_with.trim() != release {
        println!(
            "cargo:warning={ORDER} was made with rustc {made_with}, this is {release}: its names will not match, and more of the binary stays resident; remake it with `bash benches/text-order.sh`"
        );
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        path.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
