//! Downloading CIFAR archives, against a tiny HTTP/1.1 server on 127.0.0.1 (never the internet): full
//! download, resume after a cut connection or an earlier partial file, a server that ignores `Range`,
//! checksum mismatches and HTTP errors leaving nothing behind.

mod data_support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use sweep::data::fetch::{self, CIFAR100_ARCHIVE, fetch_from};
use sweep::data::{self, DataConfig, DatasetKind};

/// What the server does.
#[derive(Clone, Default)]
struct Behaviour {
    /// Answer `Range` requests with the whole file (200) instead of 206.
    ignore_range: bool,
    /// Cut this many responses after `cut_after` body bytes (then behave).
    cuts: usize,
    cut_after: usize,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    range: Option<String>,
}

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves `body` at `/<name>` (404 elsewhere) until the test process ends.
    fn start(name: &str, body: Vec<u8>, behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (seen2, path) = (seen.clone(), format!("/{name}"));
        std::thread::spawn(move || {
            let mut behaviour = behaviour;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &path, &body, &mut behaviour, &seen2);
            }
        });
        Server { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    path: &str,
    body: &[u8],
    behaviour: &mut Behaviour,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let target = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    seen.lock().unwrap().push(Seen { path: target.clone(), range: range.clone() });
    let mut out = stream;
    if target != path {
        let msg = b"not here";
        write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", msg.len())?;
        out.write_all(msg)?;
        return out.flush();
    }
    let start = range
        .as_deref()
        .filter(|_| !behaviour.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    let (status, part) = match start {
        Some(s) if s >= body.len() => {
            write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            return out.flush();
        }
        Some(s) => {
            (format!("206 Partial Content\r\nContent-Range: bytes {s}-{}/{}", body.len() - 1, body.len()), &body[s..])
        }
        None => ("200 OK".to_string(), body),
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/x-gzip\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        part.len()
    )?;
    if behaviour.cuts > 0 {
        behaviour.cuts -= 1;
        out.write_all(&part[..behaviour.cut_after.min(part.len())])?;
        out.flush()?;
        return out.shutdown(std::net::Shutdown::Both);
    }
    out.write_all(part)?;
    out.flush()
}

/// A small CIFAR-100 archive with the real folder layout (random pixels, so it does not compress away).
fn archive() -> Vec<u8> {
    let mut rng = sweep::rng::Rng::new(5);
    let mut record_file = |n: usize| {
        let mut out = Vec::new();
        for i in 0..n {
            out.push((i % 20) as u8);
            out.push((i % 100) as u8);
            out.extend((0..3072).map(|_| rng.below(256) as u8));
        }
        out
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("train.bin", record_file(60)),
        ("test.bin", record_file(10)),
        ("fine_label_names.txt", data_support::fine_names().into_bytes()),
        ("coarse_label_names.txt", (0..20).map(|i| format!("c{i}\n")).collect::<String>().into_bytes()),
    ];
    tar_gz("cifar-100-binary", &files)
}

fn tar_gz(folder: &str, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    tar.append_data(&mut dir, format!("{folder}/"), std::io::empty()).unwrap();
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("{folder}/{name}"), bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

const NAME: &str = "cifar-100-binary.tar.gz";

fn check_data_set(dir: &Path) {
    let cfg = DataConfig {
        kind: DatasetKind::Cifar100,
        dir: dir.to_path_buf(),
        image_size: 32,
        train_images: 0,
        val_images: 0,
        data_seed: 0,
    };
    let ds = data::open(&cfg).unwrap();
    assert_eq!((ds.train.len(), ds.val.len()), (60, 10));
    assert_eq!(ds.train.label(57), 57);
}

#[test]
fn full_download_then_nothing_to_do() {
    let body = archive();
    let server = Server::start(NAME, body.clone(), Behaviour::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let url = format!("{}/{NAME}", server.base);
    let folder = fetch_from(DatasetKind::Cifar100, &dir, &url, &md5_hex(&body)).unwrap();
    assert_eq!(folder, dir.join("cifar-100-binary"));
    assert_eq!(entries(&dir), ["cifar-100-binary"], "archive, .part and temporary folders are gone");
    check_data_set(&dir);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].path.as_str(), seen[0].range.as_deref()), ("/cifar-100-binary.tar.gz", None));
    // Already there: no request at all.
    fetch_from(DatasetKind::Cifar100, &dir, &url, &md5_hex(&body)).unwrap();
    fetch::fetch(DatasetKind::Cifar100, &dir, Some(&server.base)).unwrap();
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn a_cut_connection_is_resumed_with_range() {
    let body = archive();
    let cut = body.len() * 2 / 5;
    let server = Server::start(NAME, body.clone(), Behaviour { cuts: 2, cut_after: cut, ..Default::default() });
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{}/{NAME}", server.base);
    fetch_from(DatasetKind::Cifar100, tmp.path(), &url, &md5_hex(&body)).unwrap();
    check_data_set(tmp.path());
    assert_eq!(entries(tmp.path()), ["cifar-100-binary"]);
    // First request whole, cut after `cut` bytes; the second asks for the rest, is cut again after `cut`
    // more; the third completes it.
    let ranges: Vec<Option<String>> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [None, Some(format!("bytes={cut}-")), Some(format!("bytes={}-", 2 * cut))]);
}

#[test]
fn a_partial_file_from_an_earlier_run_is_resumed() {
    let body = archive();
    let server = Server::start(NAME, body.clone(), Behaviour::default());
    let tmp = tempfile::tempdir().unwrap();
    let k = body.len() / 3;
    fs::write(tmp.path().join(format!("{NAME}.part")), &body[..k]).unwrap();
    fetch_from(DatasetKind::Cifar100, tmp.path(), &format!("{}/{NAME}", server.base), &md5_hex(&body)).unwrap();
    check_data_set(tmp.path());
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].range.as_deref(), Some(format!("bytes={k}-").as_str()));
}

#[test]
fn a_server_that_ignores_range_restarts_the_download() {
    let body = archive();
    let cut = body.len() / 2;
    let server = Server::start(NAME, body.clone(), Behaviour { ignore_range: true, cuts: 1, cut_after: cut });
    let tmp = tempfile::tempdir().unwrap();
    // A stale partial file with wrong bytes: appending to it would break the checksum.
    fs::write(tmp.path().join(format!("{NAME}.part")), vec![0xAB; 1000]).unwrap();
    fetch_from(DatasetKind::Cifar100, tmp.path(), &format!("{}/{NAME}", server.base), &md5_hex(&body)).unwrap();
    check_data_set(tmp.path());
    assert_eq!(entries(tmp.path()), ["cifar-100-binary"]);
    let ranges: Vec<Option<String>> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [Some("bytes=1000-".to_string()), Some(format!("bytes={cut}-"))]);
}

#[test]
fn a_complete_partial_file_is_accepted_after_416() {
    let body = archive();
    let server = Server::start(NAME, body.clone(), Behaviour::default());
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(format!("{NAME}.part")), &body).unwrap();
    fetch_from(DatasetKind::Cifar100, tmp.path(), &format!("{}/{NAME}", server.base), &md5_hex(&body)).unwrap();
    check_data_set(tmp.path());
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn checksum_mismatch_leaves_nothing_behind() {
    let body = archive();
    let server = Server::start(NAME, body.clone(), Behaviour::default());
    let url = format!("{}/{NAME}", server.base);
    // Into an existing folder: it is left as it was (empty).
    let tmp = tempfile::tempdir().unwrap();
    let msg = format!("{:#}", fetch_from(DatasetKind::Cifar100, tmp.path(), &url, &"0".repeat(32)).unwrap_err());
    assert!(msg.contains("checksum mismatch") && msg.contains(&md5_hex(&body)), "{msg}");
    assert!(entries(tmp.path()).is_empty(), "left behind: {:?}", entries(tmp.path()));
    // Into a folder that did not exist: not even the folder remains.
    let dir = tmp.path().join("new");
    fetch_from(DatasetKind::Cifar100, &dir, &url, &"0".repeat(32)).unwrap_err();
    assert!(!dir.exists());
    // The production entry point checks the published checksum, which our small archive cannot match.
    let msg = format!("{:#}", fetch::fetch(DatasetKind::Cifar100, &dir, Some(&server.base)).unwrap_err());
    assert!(msg.contains(CIFAR100_ARCHIVE.md5), "{msg}");
    assert!(!dir.exists());
}

#[test]
fn http_errors_and_bad_archives_leave_nothing_behind() {
    let body = archive();
    let server = Server::start(NAME, body.clone(), Behaviour::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let msg = format!(
        "{:#}",
        fetch_from(DatasetKind::Cifar100, &dir, &format!("{}/missing.tar.gz", server.base), &md5_hex(&body))
            .unwrap_err()
    );
    assert!(msg.contains("404"), "{msg}");
    assert!(!dir.exists());
    // An archive with the right checksum but the wrong layout (CIFAR-10 asked for).
    let msg = format!(
        "{:#}",
        fetch_from(DatasetKind::Cifar10, &dir, &format!("{}/{NAME}", server.base), &md5_hex(&body)).unwrap_err()
    );
    assert!(msg.contains("cifar-10-batches-bin"), "{msg}");
    assert!(!dir.exists(), "left behind: {:?}", entries(&dir));
    // A folder kind cannot be fetched.
    assert!(fetch::fetch(DatasetKind::Folder, &dir, None).is_err());
}

#[test]
fn an_incomplete_data_set_is_replaced() {
    let body = archive();
    let server = Server::start(NAME, body.clone(), Behaviour::default());
    let tmp = tempfile::tempdir().unwrap();
    let stale = tmp.path().join("cifar-100-binary");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("train.bin"), b"half").unwrap();
    fetch_from(DatasetKind::Cifar100, tmp.path(), &format!("{}/{NAME}", server.base), &md5_hex(&body)).unwrap();
    check_data_set(tmp.path());
    assert_eq!(entries(tmp.path()), ["cifar-100-binary"]);
    assert_eq!(server.seen().len(), 1);
}
