//! The README against the binary it describes: every command and every flag that
//! `netalias --help` and `netalias COMMAND --help` list is named in its Usage section, the
//! README stays a five-minute read, and the reference pages it links to exist.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netalias"))
        .args(args)
        .arg("--help")
        .output()
        .expect("netalias --help");
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names under a help text's "Commands:" heading (`help` left out).
fn commands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// Every `--long` flag a help text lists (`--help` and `--version` left out).
fn flags(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .lines()
        .filter_map(|l| {
            // An option's own line is indented a little (clap: 2 to 6 spaces); a wrapped
            // description, which may start with a flag it mentions, much more.
            let indent = l.len() - l.trim_start().len();
            let l = l.trim_start();
            let at = l.find("--")?;
            // Only a flag that opens its line (after an optional `-c, `).
            (indent <= 6 && at <= 4).then(|| {
                l[at..]
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .filter(|f| f.len() > 2 && f != "--help" && f != "--version")
        .collect();
    found.sort();
    found.dedup();
    found
}

fn readme(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

#[test]
fn usage_names_every_command_and_flag_the_binary_has() {
    let text = readme("README.md");
    let usage = text
        .split("## Usage")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Usage section");
    let top = help(&[]);
    let mut missing = Vec::new();
    for flag in flags(&top) {
        if !usage.contains(&flag) {
            missing.push(format!("netalias {flag}"));
        }
    }
    let listed = commands(&top);
    assert!(listed.len() >= 7, "commands from --help: {listed:?}");
    for command in &listed {
        if !usage.contains(&format!("netalias {command}")) {
            missing.push(format!("command {command}"));
        }
        let own = help(&[command]);
        let subcommands = commands(&own);
        let mut texts = vec![(command.clone(), own)];
        for sub in &subcommands {
            if !usage.contains(sub.as_str()) {
                missing.push(format!("command {command} {sub}"));
            }
            texts.push((format!("{command} {sub}"), help(&[command, sub])));
        }
        for (which, text) in texts {
            for flag in flags(&text) {
                if !usage.contains(&flag) {
                    missing.push(format!("{which} {flag}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README.md's Usage does not name: {missing:?}"
    );
}

#[test]
fn the_readme_is_short_and_its_reference_pages_exist() {
    let text = readme("README.md");
    let lines = text.lines().count();
    assert!(
        lines < 200,
        "README.md has {lines} lines; reference goes to the linked pages"
    );
    for page in [
        "config/README.md",
        "config/PROVISIONING.md",
        "src/README.md",
        "benches/README.md",
        "tests/README.md",
    ] {
        assert!(text.contains(&format!("({page})")), "README links {page}");
        assert!(!readme(page).trim().is_empty(), "{page} exists");
    }
    // The quickstart is at most 15 lines of commands.
    let quick = text
        .split("## Quickstart")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("a quickstart block");
    assert!(quick.lines().count() <= 15, "{quick}");
    // One image name: what tests/build-image.sh tags by default is what the files run.
    let script = readme("tests/build-image.sh");
    assert!(script.contains("tag=\"${1:-netalias}\""), "{script}");
    for file in ["config/compose.yaml", "config/stack.toml"] {
        let text = readme(file);
        assert!(
            !text.contains("netalias:test"),
            "{file} runs the image by its one name"
        );
    }
}
