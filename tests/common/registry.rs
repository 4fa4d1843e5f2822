//! A registry on loopback for the engine to pull from: the read side of the Docker Registry
//! HTTP API v2 (`/v2/`, manifests and blobs, GET and HEAD), serving images made here from
//! busybox-static, so the image checks of provisioning meet real pulls and real digests
//! with no internet. The engine trusts 127.0.0.0/8 over plain HTTP (`docker info`:
//! "Insecure Registries"), after its TLS attempt fails. Images carry `netalias.test=1`.
//! Test code: it serves what it was given and checks nothing it is sent.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::Command,
    sync::{Arc, Mutex},
};

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[derive(Default)]
struct Content {
    /// `REPO:TAG` and `REPO@DIGEST` → (digest, manifest bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    /// Digest → bytes (configs and layers).
    blobs: HashMap<String, Vec<u8>>,
}

pub struct Registry {
    addr: SocketAddr,
    content: Arc<Mutex<Content>>,
}

impl Registry {
    /// Listens on a free loopback port, serving nothing yet.
    pub fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind registry");
        let addr = listener.local_addr().expect("registry address");
        let content = Arc::new(Mutex::new(Content::default()));
        let shared = Arc::clone(&content);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let content = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &content));
            }
        });
        Registry { addr, content }
    }

    /// `127.0.0.1:PORT`: the host part of an image name pulled from here.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Serves `REPO:TAG` as a busybox image whose `/version` says `version` (replacing what
    /// the tag named), and returns its manifest's digest.
    pub fn publish(&self, repo: &str, tag: &str, version: &str) -> String {
        let dir = tempfile::tempdir().expect("image dir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("copy /bin/busybox (Debian's busybox-static)");
        for applet in ["sh", "sleep", "cat"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("link");
        }
        std::fs::write(root.join("version"), version).expect("write version");
        let tar = dir.path().join("layer.tar");
        run(Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        let layer_tar = std::fs::read(&tar).expect("read layer");
        let gz = run(Command::new("gzip").args(["-n", "-c"]).arg(&tar));
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["/bin/sh"],"Labels":{{"netalias.test":"1"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            sha256(&layer_tar)
        );
        let config = config.into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}]}}"#,
            config.len(),
            sha256(&config),
            gz.len(),
            sha256(&gz)
        )
        .into_bytes();
        let digest = sha256(&manifest);
        let mut content = self.content.lock().expect("registry lock");
        content.blobs.insert(sha256(&config), config);
        content.blobs.insert(sha256(&gz), gz);
        content.manifests.insert(
            format!("{repo}@{digest}"),
            (digest.clone(), manifest.clone()),
        );
        content
            .manifests
            .insert(format!("{repo}:{tag}"), (digest.clone(), manifest));
        digest
    }
}

/// `sha256:HEX` of `bytes`, by coreutils' sha256sum.
fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("blob");
    std::fs::write(&path, bytes).expect("write blob");
    let out = run(Command::new("sha256sum").arg(&path));
    let hex = String::from_utf8_lossy(&out);
    format!(
        "sha256:{}",
        hex.split_whitespace().next().unwrap_or_default()
    )
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Answers one connection's requests in turn (the engine keeps connections alive).
fn serve(stream: TcpStream, content: &Mutex<Content>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        // A TLS hello (the engine tries HTTPS first) is no request line: closing makes the
        // engine fall back to HTTP.
        if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.is_ascii() {
            return;
        }
        let mut body_len = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                body_len = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; body_len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let (status, kind, digest, bytes) = answer(path, content);
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nDocker-Distribution-API-Version: registry/2.0\r\n",
            bytes.len()
        );
        if let Some(digest) = digest {
            head.push_str(&format!("Docker-Content-Digest: {digest}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(&bytes);
        }
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

fn answer(
    path: &str,
    content: &Mutex<Content>,
) -> (&'static str, &'static str, Option<String>, Vec<u8>) {
    let content = content.lock().expect("registry lock");
    let unknown = |code: &str| {
        (
            "404 Not Found",
            "application/json",
            None,
            format!(
                r#"{{"errors":[{{"code":"{code}","message":"{} unknown"}}]}}"#,
                code.to_lowercase()
            )
            .into_bytes(),
        )
    };
    if path == "/v2/" || path == "/v2" {
        return ("200 OK", "application/json", None, b"{}".to_vec());
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return unknown("NAME_UNKNOWN");
    };
    if let Some((repo, reference)) = rest.split_once("/manifests/") {
        let key = if reference.starts_with("sha256:") {
            format!("{repo}@{reference}")
        } else {
            format!("{repo}:{reference}")
        };
        return match content.manifests.get(&key) {
            Some((digest, bytes)) => ("200 OK", MANIFEST_TYPE, Some(digest.clone()), bytes.clone()),
            None => unknown("MANIFEST_UNKNOWN"),
        };
    }
    if let Some((_, digest)) = rest.split_once("/blobs/") {
        return match content.blobs.get(digest) {
            Some(bytes) => (
                "200 OK",
                "application/octet-stream",
                Some(digest.to_string()),
                bytes.clone(),
            ),
            None => unknown("BLOB_UNKNOWN"),
        };
    }
    unknown("NAME_UNKNOWN")
}

/// Removes, when dropped (pass or fail), every image pulled from the repositories named
/// (`HOST/REPO`), tagged or not: a moved tag leaves the image it named as `<none>`.
pub struct RemoveImages(pub Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        // The registry's images carry the test label (`publish`'s config).
        super::docker::remove_labelled_images(|repo| self.0.iter().any(|r| r == repo));
    }
}
