//! `SWEEP_CIFAR_MIRROR` and the `base_url` argument choose where `fetch` downloads from. Alone in its own
//! test binary because it sets an environment variable (nothing else runs concurrently in this process).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use sweep::data::DatasetKind;
use sweep::data::fetch::{MIRROR_ENV, fetch};

/// A server that answers every request with 404 and reports the requested path.
fn not_found_server() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let _ = tx.send(line.split_whitespace().nth(1).unwrap_or("").to_string());
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (base, rx)
}

#[test]
fn mirror_from_env_and_argument() {
    let (base, seen) = not_found_server();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    // SAFETY: the only test in this binary; no other thread reads the environment concurrently.
    unsafe { std::env::set_var(MIRROR_ENV, format!("{base}/mirror/")) };
    let msg = format!("{:#}", fetch(DatasetKind::Cifar10, &dir, None).unwrap_err());
    assert!(msg.contains("404") && msg.contains("/mirror/cifar-10-binary.tar.gz"), "{msg}");
    assert_eq!(seen.recv().unwrap(), "/mirror/cifar-10-binary.tar.gz");
    // The argument wins over the environment.
    fetch(DatasetKind::Cifar100, &dir, Some(&format!("{base}/arg"))).unwrap_err();
    assert_eq!(seen.recv().unwrap(), "/arg/cifar-100-binary.tar.gz");
    unsafe { std::env::remove_var(MIRROR_ENV) };
    assert!(!dir.exists());
}
