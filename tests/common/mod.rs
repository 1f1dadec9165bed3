//! Helpers for end-to-end tests: an in-process server on 127.0.0.1 port 0, a blocking
//! WebSocket client with deadlines, raw HTTP and raw frames.
#![allow(dead_code)] // each test binary uses a different subset

pub mod tokens;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchboard::config::{AppKind, Config};
use switchboard::server::Server;
use tungstenite::protocol::{CloseFrame, WebSocket};
use tungstenite::{Message, client::IntoClientRequest};

pub const DEADLINE: Duration = Duration::from_secs(10);

/// A config with every enabled app and the admin port on 127.0.0.1 port 0.
pub fn config(threads: usize, apps: &[AppKind]) -> Config {
    let mut c = Config {
        bind: "127.0.0.1".parse().unwrap(),
        threads,
        admin_port: 0,
        ..Config::default()
    };
    for kind in AppKind::ALL {
        let a = c.app_mut(kind);
        a.enabled = apps.contains(&kind);
        a.port = 0;
    }
    c
}

pub fn start(config: Config) -> Server {
    Server::start(config).expect("server starts")
}

pub struct Client {
    pub ws: WebSocket<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        Client::upgrade(stream, addr, path)
    }

    /// Upgrades an open connection (new, or kept alive after plain HTTP answers).
    pub fn upgrade(stream: TcpStream, addr: SocketAddr, path: &str) -> Client {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let req = format!("ws://{addr}{path}").into_client_request().unwrap();
        let (ws, resp) = tungstenite::client::client(req, stream).expect("websocket handshake");
        assert_eq!(resp.status(), 101);
        Client { ws }
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send text");
    }

    pub fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::binary(data.to_vec()))
            .expect("send binary");
    }

    /// The next data message or close (Pings and Pongs are skipped), within the deadline.
    pub fn recv(&mut self) -> Message {
        loop {
            match self.ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(m) => return m,
                Err(e) => panic!("recv failed: {e}"),
            }
        }
    }

    pub fn expect_text(&mut self, want: &str) {
        match self.recv() {
            Message::Text(t) => assert_eq!(t.as_str(), want),
            other => panic!("expected text {want:?}, got {other:?}"),
        }
    }

    /// Reads until a Close frame arrives and returns its code (1005 when it has none).
    pub fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(CloseFrame { code, reason }))) => {
                    return (code.into(), reason.to_string());
                }
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => continue,
                Err(e) => panic!("expected a close frame, got {e}"),
            }
        }
    }

    /// Asserts that no data message arrives within `ms`.
    pub fn expect_silence(&mut self, ms: u64) {
        self.ws
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        match self.ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => panic!("expected silence, got {m:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("expected silence, got error {e}"),
        }
        self.ws.get_mut().set_read_timeout(Some(DEADLINE)).unwrap();
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            match self.ws.read() {
                Ok(_) => continue,
                Err(_) => return,
            }
        }
    }
}

/// Sends a raw HTTP request and returns its answer (see [`read_response`]).
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_response(&mut s)
}

/// Reads one HTTP answer: the head, then `Content-Length` bytes of body, or up to EOF
/// without one (a kept-alive connection stays open after the answer, so EOF cannot mark
/// its end). It never reads past the answer, so pipelined answers can be read one by one.
/// Whatever arrived on EOF or error (an empty string for none).
pub fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            _ => return String::from_utf8_lossy(&out).into_owned(),
        }
    }
    let head = String::from_utf8_lossy(&out).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => {
            let mut body = vec![0; n];
            let got = read_up_to(s, &mut body);
            out.extend_from_slice(&body[..got]);
        }
        None => {
            let _ = s.read_to_end(&mut out);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Fills `buf` from `s` until it is full, EOF or an error; how much was read.
fn read_up_to(s: &mut TcpStream, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

pub fn get(addr: SocketAddr, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
}

/// A masked client frame (FIN set) with `opcode` and `payload`.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Replaces every `"timestamp":<digits>` (pester's ms timestamps) with `"timestamp":0`,
/// checking that the digits are a plausible time.
pub fn norm_timestamps(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(r#""timestamp":"#) {
        let (head, tail) = rest.split_at(i + 12);
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let ts: u64 = tail[..digits].parse().expect("timestamp digits");
        assert!(ts > 1_600_000_000_000, "plausible timestamp {ts}");
        out.push('0');
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Polls `cond` until it holds or the deadline passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Resident set size of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// A spawned `switchboard` binary, stopped (by its PID) when dropped.
pub struct Proc {
    pub child: std::process::Child,
    pub addrs: Vec<(String, SocketAddr)>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Self::spawn_env(args, &[])
    }

    /// The rooms app alone on 2 reactors, its store at `store`, admin signing key `key`,
    /// with `extra` arguments.
    pub fn spawn_rooms(store: &std::path::Path, key: &str, extra: &[&str]) -> Proc {
        let store = store.to_str().unwrap();
        let mut args = vec![
            "--apps",
            "rooms",
            "--bind",
            "127.0.0.1",
            "--rooms-port",
            "0",
            "--admin-port",
            "0",
            "--threads",
            "2",
            "--rooms-store-path",
            store,
            "--rooms-admin-signing-key",
            key,
        ];
        args.extend_from_slice(extra);
        Self::spawn(&args)
    }

    /// Spawns with these environment variables (`PORT` and `JWT_SECRET` are never inherited).
    pub fn spawn_env(args: &[&str], envs: &[(&str, &str)]) -> Proc {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .env_remove("PORT")
            .env_remove("JWT_SECRET")
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(Self::log_path()).expect("log file"))
            .spawn()
            .expect("spawn switchboard");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let addrs = line
            .trim()
            .strip_prefix("switchboard listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .split(' ')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect();
        Proc { child, addrs }
    }

    /// Where the server's stderr goes (one file per test process).
    pub fn log_path() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("switchboard-test-{}.log", std::process::id()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(Self::log_path()).unwrap_or_default()
    }

    pub fn addr(&self, service: &str) -> SocketAddr {
        self.addrs.iter().find(|(k, _)| k == service).unwrap().1
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of the child this test spawned and still owns.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
