//! Build script: for a static glibc build on x86_64 Linux (the shipped binary's: `crt-static`,
//! optimised) that links with rustc's own lld, hands the linker `src/text-order.txt`, the
//! functions the server runs as it starts and serves (made by `benches/text-order.sh`), so that
//! they sit together in the text. It decides nothing else and touches no source.
//!
//! Why: the kernel maps a binary in 64-128 KB windows around each page touched. Spread over
//! 9 MB of text, the 1.5 MB a server with static records runs kept 6.6 MB of the binary
//! resident (`benches/memory.sh`); together, 3.1 MB.
//!
//! When: GNU ld refuses `--symbol-ordering-file`, so the file is handed over only where the
//! link is surely lld: rustc 1.90 or later (lld by default on this target) with its own lld in
//! its sysroot (a distribution's rustc may have none), building for the host, and nothing in
//! the flags or the config choosing another linker. Anywhere else the binary links as it did,
//! and is the same but for where its functions sit. A name the binary does not have is passed
//! over (`--no-warn-symbol-ordering`); names change with the toolchain and the dependencies,
//! so a file made with another rustc is used with a warning that says how to remake it (a
//! dependency update goes unseen here: memory.sh's file pages show it).

use std::{env, path::Path, process::Command};

const ORDER: &str = "src/text-order.txt";
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let static_glibc = var("TARGET") == TARGET
        && var("HOST") == TARGET
        && var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
        && var("PROFILE") == "release";
    // Any choice of linker (`-C linker=`, `-C linker-flavor=`, `-C linker-features=-lld`,
    // `-C link-self-contained=-linker`, a configured `target.….linker`) is the user's.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let linker_chosen = [
        "linker=",
        "linker-flavor",
        "linker-features",
        "link-self-contained",
    ]
    .iter()
    .any(|flag| flags.contains(flag))
        || env::var_os("RUSTC_LINKER").is_some()
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some();
    if !static_glibc || linker_chosen {
        return;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let ask = |args: &[&str]| {
        Command::new(&rustc)
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let version = ask(&["-vV"]);
    let release = (version.lines())
        .find_map(|line| line.strip_prefix("release: "))
        .unwrap_or_default()
        .to_string();
    let minor: u32 = (release.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let sysroot = ask(&["--print", "sysroot"]);
    let own_lld = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("bin/gcc-ld/ld.lld");
    if minor < 90 || !own_lld.exists() {
        return;
    }
    let path = Path::new(&var("CARGO_MANIFEST_DIR")).join(ORDER);
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!(
            "cargo:warning={ORDER} is missing: the binary works, with about 3.5 MB more of it \
             resident; make it with `bash benches/text-order.sh`"
        );
        return;
    };
    // `-Wl,` splits its argument at commas.
    if path.to_string_lossy().contains(',') {
        println!("cargo:warning={ORDER} not used: its path has a comma, which -Wl would split");
        return;
    }
    let made_with = (text.lines())
        .find_map(|line| line.strip_prefix("# rustc "))
        .unwrap_or_default();
    if made_with.trim() != release {
        println!(
            "cargo:warning={ORDER} was made with rustc {made_with}, this is {release}: its \
             names will not match, and more of the binary stays resident; remake it with \
             `bash benches/text-order.sh`"
        );
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        path.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
