//! A pool of client WebSockets on one mio loop: connect, upgrade, send pre-masked frames,
//! parse server frames, answer Pings (and Engine.IO pings), flush once per turn.

use crate::wire::{parse_frame, put_frame, put_sio_message, sio_message_arg, upgrade_request};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    /// Plain WebSocket frames carry the payload.
    Raw,
    /// Engine.IO 4 / Socket.IO framing: `42["message","<payload>"]`.
    Sio,
    /// The same, with the payload as the event's JSON argument: `42["message",<payload>]`
    /// (pester's objects).
    SioJson,
}

impl Proto {
    fn is_sio(self) -> bool {
        matches!(self, Proto::Sio | Proto::SioJson)
    }
}

#[derive(PartialEq, Eq, Debug)]
enum State {
    Connecting,
    Upgrading,
    /// Socket.IO: waiting for the open packet (then we send `40`) and the connect ack.
    SioJoining,
    Open,
    Closed,
}

struct Conn {
    sock: TcpStream,
    state: State,
    path: String,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    dirty: bool,
}

pub enum Kind {
    Opened,
    Message(Range<usize>),
    Closed,
}

pub struct Ev {
    pub key: usize,
    pub kind: Kind,
}

pub struct Pool {
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    addr: SocketAddr,
    host: String,
    proto: Proto,
    scratch: Vec<u8>,
    dirty: Vec<usize>,
    /// Payload bytes of this turn's messages (`Kind::Message` ranges point here).
    pub arena: Vec<u8>,
    /// The most bytes of each message's payload kept in `arena` (the rest is not copied):
    /// a scenario that reads only the stamp sets it to `wire::STAMP_LEN`.
    pub keep: usize,
    pub inbox: Vec<Ev>,
    pub open: usize,
    pub failed: usize,
}

impl Pool {
    pub fn new(addr: SocketAddr, proto: Proto) -> io::Result<Pool> {
        Ok(Pool {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Slab::new(),
            addr,
            host: addr.to_string(),
            proto,
            scratch: vec![0; 256 * 1024],
            dirty: Vec::new(),
            arena: Vec::new(),
            keep: usize::MAX,
            inbox: Vec::new(),
            open: 0,
            failed: 0,
        })
    }

    pub fn connect(&mut self, path: &str) -> io::Result<usize> {
        let mut sock = TcpStream::connect(self.addr)?;
        let key = self.conns.vacant_key();
        self.poll.registry().register(
            &mut sock,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.conns.insert(Conn {
            sock,
            state: State::Connecting,
            path: path.to_string(),
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::new(),
            wpos: 0,
            dirty: false,
        });
        Ok(key)
    }

    /// Queues one message; it leaves at the next flush.
    pub fn send(&mut self, key: usize, payload: &[u8]) {
        let proto = self.proto;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.state != State::Open {
            return;
        }
        match proto {
            Proto::Raw => put_frame(&mut c.wbuf, 0x1, payload),
            Proto::Sio | Proto::SioJson => {
                put_sio_message(&mut c.wbuf, payload, proto == Proto::Sio)
            }
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    pub fn close_all(&mut self) {
        self.conns.clear();
        self.open = 0;
    }

    /// One loop turn: poll, read everything, parse into `inbox`. Call `flush` after
    /// handling the inbox.
    pub fn turn(&mut self, timeout: Duration) -> io::Result<()> {
        self.inbox.clear();
        self.arena.clear();
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token().0,
                    e.is_readable() || e.is_read_closed(),
                    e.is_writable(),
                )
            })
            .collect();
        for (key, readable, writable) in ready {
            if writable {
                self.on_writable(key);
            }
            if readable {
                self.on_readable(key);
            }
        }
        Ok(())
    }

    fn on_writable(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.state == State::Connecting {
            if c.sock.peer_addr().is_err() {
                return self.fail(key);
            }
            let _ = c.sock.set_nodelay(true);
            c.state = State::Upgrading;
            let req = upgrade_request(&self.host, &c.path);
            c.wbuf.extend_from_slice(&req);
        }
        self.write(key);
    }

    fn fail(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            if c.state == State::Open {
                self.open -= 1;
            } else if c.state != State::Closed {
                self.failed += 1;
            }
            c.state = State::Closed;
            self.inbox.push(Ev {
                key,
                kind: Kind::Closed,
            });
        }
    }

    /// Reads to `WouldBlock`. Frames are parsed straight from the read buffer while the
    /// connection holds no partial frame, so a payload is copied once (into `arena`, and
    /// only its first `keep` bytes), not also through the connection's buffer.
    fn on_readable(&mut self, key: usize) {
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.state == State::Closed {
                return;
            }
            match c.sock.read(&mut self.scratch) {
                Ok(0) => return self.fail(key),
                Ok(n) if c.rbuf.is_empty() && c.state != State::Upgrading => {
                    let mut to = Sinks {
                        proto: self.proto,
                        keep: self.keep,
                        arena: &mut self.arena,
                        inbox: &mut self.inbox,
                        open: &mut self.open,
                    };
                    let (used, step) = on_frames(key, &self.scratch[..n], c, &mut to);
                    c.rbuf.extend_from_slice(&self.scratch[used..n]);
                    if step == Step::Wrote && !c.dirty {
                        c.dirty = true;
                        self.dirty.push(key);
                    }
                    if step == Step::Closed {
                        return;
                    }
                }
                Ok(n) => c.rbuf.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(key),
            }
        }
        self.parse(key);
    }

    /// Parses what the connection has buffered: the upgrade answer, then frames.
    fn parse(&mut self, key: usize) {
        let proto = self.proto;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let mut pos = 0;
        if c.state == State::Upgrading {
            let Some(end) = c.rbuf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            if !c.rbuf.starts_with(b"HTTP/1.1 101") {
                return self.fail(key);
            }
            pos = end + 4;
            if proto.is_sio() {
                c.state = State::SioJoining;
            } else {
                c.state = State::Open;
                self.open += 1;
                self.inbox.push(Ev {
                    key,
                    kind: Kind::Opened,
                });
            }
        }
        let rbuf = std::mem::take(&mut c.rbuf);
        let mut to = Sinks {
            proto,
            keep: self.keep,
            arena: &mut self.arena,
            inbox: &mut self.inbox,
            open: &mut self.open,
        };
        let (used, step) = on_frames(key, &rbuf[pos..], c, &mut to);
        c.rbuf = rbuf;
        c.rbuf.drain(..pos + used);
        if step == Step::Wrote && !c.dirty {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    fn write(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        while c.wpos < c.wbuf.len() {
            match c.sock.write(&c.wbuf[c.wpos..]) {
                Ok(0) => return self.fail(key),
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(key),
            }
        }
        c.wbuf.clear();
        c.wpos = 0;
    }

    /// Writes every connection with queued frames, once.
    pub fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &key in &dirty {
            if let Some(c) = self.conns.get_mut(key) {
                c.dirty = false;
                if c.state != State::Connecting {
                    self.write(key);
                }
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }
}

/// Where parsed frames go.
struct Sinks<'a> {
    proto: Proto,
    keep: usize,
    arena: &'a mut Vec<u8>,
    inbox: &'a mut Vec<Ev>,
    open: &'a mut usize,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Step {
    Read,
    /// Something was queued to send back (a Pong, an Engine.IO pong, `40`).
    Wrote,
    /// The server's Close: the connection is done.
    Closed,
}

/// Handles the whole frames at the front of `buf`; returns the bytes they took.
fn on_frames(key: usize, buf: &[u8], c: &mut Conn, to: &mut Sinks<'_>) -> (usize, Step) {
    let (mut pos, mut step) = (0, Step::Read);
    while let Some((op, range, len)) = parse_frame(&buf[pos..]) {
        let payload = &buf[pos + range.start..pos + range.end];
        pos += len;
        let message = |payload: &[u8], to: &mut Sinks<'_>| {
            let start = to.arena.len();
            to.arena
                .extend_from_slice(&payload[..payload.len().min(to.keep)]);
            to.inbox.push(Ev {
                key,
                kind: Kind::Message(start..to.arena.len()),
            });
        };
        match op {
            0x9 => {
                put_frame(&mut c.wbuf, 0xA, payload);
                step = Step::Wrote;
            }
            0x8 => {
                c.state = State::Closed;
                *to.open -= 1;
                to.inbox.push(Ev {
                    key,
                    kind: Kind::Closed,
                });
                return (pos, Step::Closed);
            }
            0x1 | 0x2 => match to.proto {
                Proto::Raw => message(payload, to),
                Proto::Sio | Proto::SioJson => {
                    if payload == b"2" {
                        put_frame(&mut c.wbuf, 0x1, b"3");
                        step = Step::Wrote;
                    } else if payload.starts_with(b"0{") && c.state == State::SioJoining {
                        put_frame(&mut c.wbuf, 0x1, b"40");
                        step = Step::Wrote;
                    } else if payload.starts_with(b"40") && c.state == State::SioJoining {
                        c.state = State::Open;
                        *to.open += 1;
                        to.inbox.push(Ev {
                            key,
                            kind: Kind::Opened,
                        });
                    } else if let Some(inner) = sio_message_arg(payload, to.proto == Proto::Sio) {
                        message(inner, to);
                    }
                }
            },
            _ => {}
        }
    }
    (pos, step)
}
