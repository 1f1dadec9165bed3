//! End-to-end tests of the rooms app over real sockets (rooms.md, RMS-nn e2e cases).

mod common;

use common::{DEADLINE, Proc, get};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use switchboard::config::{AppKind, Config, Secret};
use switchboard::server::Server;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, http::HeaderValue};

const KEY: &str = "e2e-key";

fn temp_store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-rooms-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("rooms.db")
}

fn config(threads: usize, store: &Path) -> Config {
    let mut c = common::config(threads, &[AppKind::Rooms]);
    c.rooms_opts.store_path = store.to_path_buf();
    c.rooms_opts.admin_signing_key = Some(Secret::from(KEY.to_string()));
    c
}

struct Ws {
    ws: WebSocket<TcpStream>,
    headers: Vec<(String, String)>,
}

impl Ws {
    fn connect(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Ws {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        if let Some(c) = cookie {
            req.headers_mut()
                .insert("Cookie", HeaderValue::from_str(c).unwrap());
        }
        let (ws, resp) = tungstenite::client::client(req, stream).expect("handshake");
        assert_eq!(resp.status(), 101);
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        Ws { ws, headers }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    fn recv(&mut self) -> String {
        loop {
            match self.ws.read().expect("recv") {
                Message::Text(t) => return t.to_string(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected text, got {other:?}"),
            }
        }
    }

    /// Reads the config and profile frames; returns the user id.
    fn hello(&mut self) -> (String, serde_json::Value) {
        let config = self.recv();
        assert!(
            config.starts_with(r#"{"type":"config","data":"#),
            "{config}"
        );
        let profile: serde_json::Value = serde_json::from_str(&self.recv()).unwrap();
        assert_eq!(profile["type"], "profile");
        (profile["data"]["id"].as_str().unwrap().to_string(), profile)
    }

    fn expect_silence(&mut self, ms: u64) {
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
            Err(e) => panic!("expected silence, got {e}"),
        }
        self.ws.get_mut().set_read_timeout(Some(DEADLINE)).unwrap();
    }

    fn close(mut self) {
        let _ = self.ws.close(None);
        let start = Instant::now();
        while start.elapsed() < DEADLINE && self.ws.read().is_ok() {}
    }
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn details(addr: SocketAddr, room: &str) -> serde_json::Value {
    let a = get(addr, &format!("/details?room={room}"));
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    assert!(a.contains("Content-Type: text/plain;charset=UTF-8"), "{a}");
    serde_json::from_str(body(&a)).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn sign(room: &str, ts: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(format!("{room}{ts}{KEY}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn room_id(name: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn stop(s: Server) {
    s.stop(DEADLINE).expect("server stops");
}

fn session_flow(threads: usize) {
    let store = temp_store(&format!("flow{threads}"));
    let server = common::start(config(threads, &store));
    let addr = server.addr(AppKind::Rooms).unwrap();
    // RMS-01
    let mut a = Ws::connect(addr, "/websocket?room=r", None);
    let (ua, profile) = a.hello();
    assert_eq!(
        a.header("set-cookie"),
        format!("{}_session={ua}; SameSite=None; Secure", room_id("r"))
    );
    assert_eq!(a.header("x-session-id"), ua);
    assert_eq!(
        a.header("x-socket-server"),
        "Pact Studio <workwithpact.com>"
    );
    assert_eq!(
        profile.to_string(),
        format!(
            r#"{{"data":{{"connectionDetails":{{"ip":"127.0.0.1"}},"id":"{ua}","properties":{{}},"role":"user","suffix":1}},"type":"profile"}}"#
        )
    );
    // RMS-02
    let mut b = Ws::connect(addr, "/websocket?room=r", None);
    let (_, pb) = b.hello();
    assert_eq!(pb["data"]["suffix"], 2);
    let d = details(addr, "r");
    assert_eq!(
        (
            d["count"].as_u64(),
            d["uniqueCount"].as_u64(),
            d["increment"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    // RMS-05 over the wire.
    a.send(r#"{"type":"subscribe","data":"chat"}"#);
    b.send(r#"{"type":"login","data":{"name":"Bob"}}"#);
    b.recv();
    b.send(r#"{"type":"chat","data":"Chat message goes here :)"}"#);
    assert_eq!(
        a.recv(),
        r#"{"type":"chat","data":{"message":"Chat message goes here :)","user":{"suffix":2,"properties":{"name":"Bob"}}}}"#
    );
    // RMS-26: exact key order of /details and the /users shape.
    b.send(r#"{"type":"poll","data":{"id":"p","answer":"x"}}"#);
    b.send(r#"{"type":"ephemeralPoll","data":{"id":"e","answer":"x"}}"#);
    // The profile answer arrives after both votes took effect (one message at a time).
    b.send(r#"{"type":"profile"}"#);
    assert!(b.recv().contains(r#""type":"profile""#));
    let ts = now_ms().to_string();
    a.send(&format!(
        r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{}"}}}}"#,
        sign("r", &ts)
    ));
    assert!(a.recv().contains(r#""role":"admin""#));
    a.send(r#"{"type":"config","data":"x"}"#);
    assert_eq!(a.recv(), r#"{"type":"config","data":"x"}"#);
    assert_eq!(b.recv(), r#"{"type":"config","data":"x"}"#);
    let raw = body(&get(addr, "/details?room=r")).to_string();
    let keys = [
        "id",
        "name",
        "count",
        "uniqueCount",
        "increment",
        "incrementSinceRestart",
        "pollCount",
        "config",
        "ephemeralPollCount",
        "bootupTime",
        "uptime",
    ];
    let mut at = 0;
    for k in keys {
        let pos = raw[at..]
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("{k} in {raw}"))
            + at;
        at = pos;
    }
    assert!(
        raw.contains(r#""pollCount":1,"config":"x","ephemeralPollCount":1,"#),
        "{raw}"
    );
    let users: serde_json::Value = serde_json::from_str(body(&get(addr, "/users?room=r"))).unwrap();
    let list = users["users"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["properties"], serde_json::json!({"name":"Bob"}));
    assert!(users["ts"].as_u64().unwrap() >= list[0]["lastCommunication"].as_u64().unwrap());
    a.close();
    b.close();
    stop(server);
}

#[test]
fn rms_01_02_05_26_session_flow_1_reactor() {
    session_flow(1);
}

#[test]
fn rms_01_02_05_26_session_flow_4_reactors() {
    session_flow(4);
}

#[test]
fn rms_25_rooms_are_isolated() {
    let store = temp_store("iso");
    let server = common::start(config(4, &store));
    let addr = server.addr(AppKind::Rooms).unwrap();
    let mut a = Ws::connect(addr, "/websocket?room=a&session=same", None);
    let mut b = Ws::connect(addr, "/websocket?room=b&session=same", None);
    let (_, pa) = a.hello();
    let (_, pb) = b.hello();
    assert_eq!(
        (pa["data"]["suffix"].as_u64(), pb["data"]["suffix"].as_u64()),
        (Some(1), Some(1))
    );
    a.send(r#"{"type":"subscribe","data":"chat"}"#);
    b.send(r#"{"type":"subscribe","data":"chat"}"#);
    a.send(r#"{"type":"login","data":{"room":"a"}}"#);
    a.recv();
    b.send(r#"{"type":"profile"}"#);
    assert!(
        b.recv().contains(r#""properties":{}"#),
        "own properties per room"
    );
    let mut a2 = Ws::connect(addr, "/websocket?room=a", None);
    a2.hello();
    a2.send(r#"{"type":"chat","data":"in a"}"#);
    assert!(a.recv().contains("in a"));
    b.expect_silence(300);
    for _ in 0..3 {
        let mut x = Ws::connect(addr, "/websocket?room=b", None);
        x.hello();
        x.close();
    }
    assert_ne!(
        details(addr, "a")["increment"],
        details(addr, "b")["increment"]
    );
    assert_eq!(details(addr, "a")["name"], "a");
    stop(server);
}

#[test]
fn rms_23_24_resume_by_session_and_cookie() {
    let store = temp_store("resume");
    let server = common::start(config(2, &store));
    let addr = server.addr(AppKind::Rooms).unwrap();
    let mut a = Ws::connect(addr, "/websocket?room=r", None);
    let (ua, _) = a.hello();
    let cookie = a
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    a.send(r#"{"type":"login","data":{"name":"Alice"}}"#);
    a.recv();
    a.close();
    let mut again = Ws::connect(addr, &format!("/websocket?room=r&session={ua}"), None);
    let (u, p) = again.hello();
    assert_eq!(u, ua);
    assert_eq!(
        (
            p["data"]["suffix"].as_u64(),
            p["data"]["properties"]["name"].as_str()
        ),
        (Some(1), Some("Alice"))
    );
    assert_eq!(
        again.header("set-cookie").split(';').next().unwrap(),
        cookie
    );
    let mut by_cookie = Ws::connect(addr, "/websocket?room=r", Some(&cookie));
    assert_eq!(by_cookie.hello().0, ua);
    let mut both = Ws::connect(addr, "/websocket?room=r&session=mine", Some(&cookie));
    assert_eq!(both.hello().0, "mine");
    let mut spaced = Ws::connect(addr, "/websocket?room=r&session=a%20b", None);
    assert_ne!(spaced.hello().0, "a b");
    assert_eq!(details(addr, "r")["increment"], 5);
    stop(server);
}

#[test]
fn rms_27_plain_http_routes() {
    let store = temp_store("routes");
    let server = common::start(config(2, &store));
    let addr = server.addr(AppKind::Rooms).unwrap();
    let a = get(addr, "/websocket");
    assert!(a.starts_with("HTTP/1.1 400"), "{a}");
    assert_eq!(body(&a), "expected websocket");
    assert!(!a.contains("Set-Cookie"));
    let a = get(addr, "/nope");
    assert!(a.starts_with("HTTP/1.1 404"), "{a}");
    assert!(a.contains("Content-Type: text/plain;charset=UTF-8"));
    assert_eq!(body(&a), "Oh, the sadness! This route does not exist.");
    let a = get(addr, "/");
    assert!(
        a.starts_with("HTTP/1.1 200") && a.contains("Content-Type: text/html; charset=utf-8"),
        "{a}"
    );
    assert_eq!(details(addr, "")["name"], "default");
    assert_eq!(details(addr, "a%20b")["name"], "a b");
    assert_eq!(details(addr, "a+b")["name"], "a b");
    let long = "n".repeat(257);
    for path in ["/details", "/users", "/websocket"] {
        let a = get(addr, &format!("{path}?room={long}"));
        assert!(
            a.starts_with("HTTP/1.1 400") && body(&a) == "room name too long",
            "{a}"
        );
    }
    stop(server);
}

#[test]
fn rms_28_30_bad_input_and_oversize() {
    let store = temp_store("bad");
    let server = common::start(config(2, &store));
    let addr = server.addr(AppKind::Rooms).unwrap();
    let mut a = Ws::connect(addr, "/websocket?room=r", None);
    let mut b = Ws::connect(addr, "/websocket?room=r", None);
    a.hello();
    b.hello();
    b.send(r#"{"type":"subscribe","data":"chat"}"#);
    for bad in [
        "not json",
        "null",
        "5",
        "[]",
        r#"{"type":5}"#,
        r#"{"data":1}"#,
        r#"{"type":"poll","data":null}"#,
        r#"{"type":"poll","data":{"id":{},"answer":"a"}}"#,
        r#"{"type":"subscribe","data":5}"#,
        r#"{"type":"authenticate","data":null}"#,
        r#"{"type":"counter","data":"x"}"#,
        r#"{"type":"broadcast","data":{"type":"x"}}"#,
        r#"{"type":"config","data":"hacked"}"#,
    ] {
        a.send(bad);
    }
    a.ws.send(Message::binary(vec![0xff, 0xfe])).unwrap();
    a.send(r#"{"type":"chat","data":"ok"}"#);
    assert!(b.recv().contains(r#""message":"ok""#));
    a.expect_silence(200);
    // RMS-30: one byte over 1 MiB closes 1009; B is unaffected.
    let big = "x".repeat(1_048_577);
    let _ = a.ws.send(Message::text(big));
    let code = loop {
        match a.ws.read() {
            Ok(Message::Close(f)) => break f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("expected close, got {e}"),
        }
    };
    assert_eq!(code, Some(1009));
    b.send(r#"{"type":"chat","data":"still"}"#);
    assert!(b.recv().contains("still"));
    stop(server);
}

#[test]
fn rms_33_room_cap_answers_503() {
    let store = temp_store("cap");
    let mut c = config(4, &store);
    c.rooms_opts.max_connections_per_room = 1;
    let server = common::start(c);
    let addr = server.addr(AppKind::Rooms).unwrap();
    let mut a = Ws::connect(addr, "/websocket?room=r", None);
    a.hello();
    let answer = common::http(
        addr,
        &format!(
            "GET /websocket?room=r HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let mut other = Ws::connect(addr, "/websocket?room=other", None);
    other.hello();
    stop(server);
}

fn spawn(store: &Path) -> Proc {
    Proc::spawn_rooms(store, KEY, &[])
}

fn wait_exit(p: &mut Proc) -> std::process::ExitStatus {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Some(s) = p.child.try_wait().unwrap() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server did not exit");
}

#[test]
fn rms_31_state_survives_a_graceful_restart() {
    let store = temp_store("restart");
    let mut p = spawn(&store);
    let addr = p.addr("rooms");
    let mut a = Ws::connect(addr, "/websocket?room=r", None);
    let (ua, _) = a.hello();
    a.send(r#"{"type":"login","data":{"name":"Alice","_x":1}}"#);
    a.recv();
    a.send(r#"{"type":"poll","data":{"id":"p","answer":"yes"}}"#);
    a.send(r#"{"type":"poll","data":{"id":"q","answer":2}}"#);
    a.send(r#"{"type":"ephemeralPoll","data":{"id":"e","answer":"x"}}"#);
    a.send(r#"{"type":"counter","data":{"id":"c","value":0.1}}"#);
    a.send(r#"{"type":"counter","data":{"id":"c","value":0.2}}"#);
    a.send(r#"{"type":"counter"}"#);
    let ts = now_ms().to_string();
    a.send(&format!(
        r#"{{"type":"authenticate","data":{{"ts":"{ts}","key":"{}"}}}}"#,
        sign("r", &ts)
    ));
    a.recv();
    a.send(r#"{"type":"config","data":"{\"theme\":\"dark\"}"}"#);
    a.recv();
    let before = details(addr, "r");
    p.signal(libc::SIGTERM);
    assert!(wait_exit(&mut p).success());
    let p2 = spawn(&store);
    let addr = p2.addr("rooms");
    let after = details(addr, "r");
    for k in ["pollCount", "config", "increment"] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["ephemeralPollCount"], 0);
    let mut b = Ws::connect(addr, &format!("/websocket?room=r&session={ua}"), None);
    let first = b.recv();
    assert_eq!(first, r#"{"type":"config","data":"{\"theme\":\"dark\"}"}"#);
    let profile: serde_json::Value = serde_json::from_str(&b.recv()).unwrap();
    assert_eq!(profile["data"]["suffix"], 1);
    assert_eq!(
        profile["data"]["properties"],
        serde_json::json!({"name":"Alice","_x":1})
    );
    b.send(r#"{"type":"subscribe","data":"poll"}"#);
    assert_eq!(
        b.recv(),
        r#"{"type":"poll","data":{"id":"p","stats":{"yes":1}}}"#
    );
    assert_eq!(
        b.recv(),
        r#"{"type":"poll","data":{"id":"q","stats":{"2":1}}}"#
    );
    b.send(r#"{"type":"subscribe","data":"counter"}"#);
    assert_eq!(
        b.recv(),
        r#"{"type":"counter","data":{"id":"c","value":0.3}}"#
    );
    assert_eq!(
        b.recv(),
        r#"{"type":"counter","data":{"id":"default","value":1}}"#
    );
    // The same user votes again: its stored vote moves, not doubles.
    b.send(r#"{"type":"poll","data":{"id":"p","answer":"no"}}"#);
    assert_eq!(
        b.recv(),
        r#"{"type":"poll","data":{"id":"p","stats":{"no":1}}}"#
    );
}

#[test]
fn rms_32_kill_9_loses_at_most_about_a_second() {
    let store = temp_store("kill");
    let mut p = spawn(&store);
    let addr = p.addr("rooms");
    let mut a = Ws::connect(addr, "/websocket?room=k", None);
    a.hello();
    a.send(r#"{"type":"subscribe","data":"counter:c"}"#);
    let mut seen: Vec<(u64, Instant)> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        a.send(r#"{"type":"counter","data":{"id":"c","value":1}}"#);
        let v: serde_json::Value = serde_json::from_str(&a.recv()).unwrap();
        seen.push((v["data"]["value"].as_u64().unwrap(), Instant::now()));
    }
    p.signal(libc::SIGKILL);
    let killed = Instant::now();
    wait_exit(&mut p);
    let p2 = spawn(&store);
    let mut b = Ws::connect(p2.addr("rooms"), "/websocket?room=k", None);
    b.hello();
    b.send(r#"{"type":"subscribe","data":"counter:c"}"#);
    let v: serde_json::Value = serde_json::from_str(&b.recv()).unwrap();
    let got = v["data"]["value"].as_u64().unwrap();
    let at = seen
        .iter()
        .find(|(n, _)| *n == got)
        .unwrap_or_else(|| panic!("{got} was never broadcast (last {:?})", seen.last()))
        .1;
    let behind = killed.duration_since(at);
    assert!(
        behind <= Duration::from_millis(1600),
        "stored value is {behind:?} old"
    );
    assert!(seen.len() > 10, "the stream ran");
}

/// Closing-note measurements (`cargo test --release --test rooms -- --ignored --nocapture`):
/// chat fan-out to 1,000 subscribers, and the time to load 10,000 stored rooms.
#[test]
#[ignore = "measurement, not a check"]
fn measure_fan_out_and_load() {
    use switchboard::apps::rooms::store::{self, Op, Sink};
    let path = temp_store("measure");
    let (s, _) = store::open(&path, 1000, 0, now_ms()).unwrap();
    let mut sink = s.sink();
    for i in 0..10_000 {
        let room: std::sync::Arc<str> = format!("room-{i}").into();
        sink.push(Op::Increment {
            room: room.clone(),
            value: 3,
        });
        sink.push(Op::Counter {
            room: room.clone(),
            id: "c".into(),
            seq: 0,
            value: "1.5".into(),
        });
        sink.push(Op::Poll {
            room: room.clone(),
            poll: "p".into(),
            seq: 0,
        });
        sink.push(Op::Answer {
            room: room.clone(),
            poll: "p".into(),
            answer: "a".into(),
            pos: Some(0),
        });
        sink.push(Op::Vote {
            room: room.clone(),
            poll: "p".into(),
            user: "u".into(),
            answer: Some("a".into()),
        });
        sink.push(Op::User {
            room,
            id: "u".into(),
            suffix: 1,
            props: r#"{"name":"x"}"#.into(),
            last_seen: now_ms(),
        });
    }
    drop(sink);
    s.join();
    let t = Instant::now();
    let (s, rooms) = store::open(&path, 1000, 30, now_ms()).unwrap();
    println!("loaded {} rooms in {:?}", rooms.len(), t.elapsed());
    s.join();

    let server = common::start(config(2, &temp_store("measure-fan")));
    let addr = server.addr(AppKind::Rooms).unwrap();
    let mut subs: Vec<Ws> = (0..1000)
        .map(|_| {
            let mut w = Ws::connect(addr, "/websocket?room=fan", None);
            w.hello();
            w.send(r#"{"type":"subscribe","data":"chat"}"#);
            w
        })
        .collect();
    let mut sender = Ws::connect(addr, "/websocket?room=fan", None);
    sender.hello();
    let n = 200;
    let readers: Vec<_> = subs
        .drain(..)
        .map(|mut w| {
            std::thread::spawn(move || {
                for _ in 0..n {
                    w.recv();
                }
            })
        })
        .collect();
    let t = Instant::now();
    for i in 0..n {
        sender.send(&format!(r#"{{"type":"chat","data":{i}}}"#));
    }
    for r in readers {
        r.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "fan-out: {} deliveries in {secs:.2}s = {:.0}/s",
        n * 1000,
        (n * 1000) as f64 / secs
    );
    stop(server);
}
