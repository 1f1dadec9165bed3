//! One connection's state in the reactor's slab.

use super::outbound::Outbound;
use crate::apps::Millis;
use crate::config::AppKind;
use crate::router::ConnId;
use bytes::Bytes;
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use tungstenite::protocol::WebSocketContext;

/// Where a connection is in its life.
///
/// Every variant that holds more than a word keeps it behind a `Box`, so `Phase` is two
/// words in every slab entry and an open WebSocket pays nothing for the HTTP-phase state.
pub enum Phase {
    /// Reading the HTTP request head (bounded by the handshake deadline and header cap),
    /// or waiting for the next request on a kept-alive connection.
    Http(Box<HttpHead>),
    /// Reading the body of a request the app will answer (it got `Event::HttpReading`).
    HttpBody(Box<HttpBody>),
    /// The app holds the request (`Event::Http`, or `HttpReading` while the body is being
    /// decided on) and answers it with `Effect::Respond`.
    HttpApp(Box<HttpHeld>),
    /// An open WebSocket.
    Ws(Box<WsState>),
    /// A last frame or response is queued: write it, then (when `linger`) half-close and
    /// discard input until EOF or the deadline, so the peer reads the answer before the
    /// socket goes; without `linger`, drop as soon as the queue is empty.
    Closing { linger: bool, half_closed: bool },
    /// Dropped at the end of the turn without writing anything more.
    Dead,
}

impl Phase {
    /// Reading a request head from `peer`.
    pub fn http(peer: SocketAddr) -> Phase {
        Phase::Http(Box::new(HttpHead {
            head: Vec::new(),
            peer,
            idle: false,
        }))
    }

    /// The app holds a request; its answer closes the connection.
    pub fn held_then_close() -> Phase {
        Phase::HttpApp(Box::new(HttpHeld {
            keep_alive: false,
            next: Vec::new(),
        }))
    }
}

/// A request head being read, and who sends it (the peer address only matters until the
/// request is routed: it feeds `client_ip`).
pub struct HttpHead {
    pub head: Vec<u8>,
    pub peer: SocketAddr,
    /// Kept alive after an answer, with nothing of a next request read yet: the deadline
    /// is the keep-alive idle time, and reaching it closes without an answer.
    pub idle: bool,
}

/// A request the app holds, and what follows its answer.
pub struct HttpHeld {
    /// The connection stays open for another request after the answer.
    pub keep_alive: bool,
    /// Bytes that came after the request (the start of the next one), up to the header cap.
    pub next: Vec<u8>,
}

/// The body of a request the app will answer, being read.
pub struct HttpBody {
    pub req: crate::http::Request,
    pub body: Vec<u8>,
    pub need: usize,
    /// A chunked body (kept raw until complete); `Some(true)` when the app answers an
    /// oversize body itself.
    pub chunked: Option<bool>,
    /// The connection may stay open after the answer.
    pub keep_alive: bool,
}

/// An open WebSocket: tungstenite's context, and what only an open WebSocket needs in
/// the 8 bytes its allocation has spare (the 256 B context fills a 272 B malloc chunk, and
/// so does this).
pub struct WsState {
    pub ctx: WebSocketContext,
    /// Start of the current one-second rate window (see [`Conn::over_rate`]).
    pub rate_window: Millis,
}

impl std::ops::Deref for WsState {
    type Target = WebSocketContext;
    fn deref(&self) -> &WebSocketContext {
        &self.ctx
    }
}

impl std::ops::DerefMut for WsState {
    fn deref_mut(&mut self) -> &mut WebSocketContext {
        &mut self.ctx
    }
}

/// One connection: a slab entry, so every byte here is paid by every idle connection.
/// Fields only one phase needs live in that phase's box; the address counted against the
/// per-IP cap lives in the reactor's `ip_counted` table, filled only when the cap is on.
pub struct Conn {
    pub sock: TcpStream,
    pub id: ConnId,
    /// Metrics index (see `metrics::SERVICES`; a byte is enough, `insert` checks).
    pub service: u8,
    pub app: Option<AppKind>,
    pub phase: Phase,
    pub out: Outbound,
    /// Edge-triggered readiness not yet drained to `WouldBlock`.
    pub readable: bool,
    /// Reading stopped because the pipe partner's queue is over its high-water mark.
    pub paused: bool,
    /// The connection this one is piped to (every data frame is relayed to it).
    pub pipe: Option<ConnId>,
    /// Queued in the reactor's flush list this turn.
    pub dirty: bool,
    /// The app saw Opened and is owed exactly one Closed.
    pub opened: bool,
    /// Counted in `connections_active` of `service`.
    pub active: bool,
    /// Counted against the global cap.
    pub counted: bool,
    /// Handshake deadline while in `Http` or `HttpBody`, the next server Ping while `Ws`,
    /// linger deadline while `Closing`.
    pub deadline: Millis,
    pub last_recv: Millis,
    /// When the queue last made progress (or went from empty to non-empty).
    pub last_write: Millis,
    /// Data messages read in the current one-second rate window.
    pub rate_count: u32,
}

impl Conn {
    pub fn is_open_ws(&self) -> bool {
        matches!(self.phase, Phase::Ws(_))
    }

    /// Counts one data message read at `now`: true once more than `limit` came in the
    /// current one-second window. The first window starts at the upgrade, each later one
    /// with the first message a second or more after the start of the one before.
    pub fn over_rate(&mut self, now: Millis, limit: u32) -> bool {
        let Phase::Ws(ws) = &mut self.phase else {
            return false;
        };
        if now.saturating_sub(ws.rate_window) >= 1000 {
            ws.rate_window = now;
            self.rate_count = 0;
        }
        self.rate_count += 1;
        self.rate_count > limit
    }
}

/// The stream tungstenite is lent: reads come from the socket, writes (pongs, close
/// replies) go into the connection's queue, so the reactor stays the socket's only writer
/// and frame order holds.
///
/// Reads are staged: one `read` syscall fills the reactor's shared 64 KiB buffer, and
/// tungstenite's small reads are served from it. Each connection then needs only a small
/// read buffer of its own (idle memory), while a large frame still costs one syscall per
/// 64 KiB instead of one per connection buffer.
pub struct WsIo<'a> {
    pub sock: &'a mut TcpStream,
    pub out: &'a mut Outbound,
    pub bytes_in: u64,
    pub bytes_queued: usize,
    pub staged: &'a mut Staged,
}

/// Bytes read from one socket and not yet handed to tungstenite.
pub struct Staged {
    pub buf: Box<[u8]>,
    pub start: usize,
    pub end: usize,
    /// Set by a short read: the socket is empty for now. Edge-triggered epoll reports any
    /// data that arrives later as a new event, so no `EAGAIN` read is needed.
    pub drained: bool,
    /// The socket may not be read (a paused pipe side): only staged bytes are served.
    pub hold: bool,
    /// A read was refused because of `hold`: the socket may still have input.
    pub held: bool,
}

impl Staged {
    pub fn new(size: usize) -> Staged {
        Staged {
            buf: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
            drained: false,
            hold: false,
            held: false,
        }
    }

    /// Forgets what is staged: the next connection starts fresh.
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.drained = false;
        self.hold = false;
        self.held = false;
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl Read for WsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let st = &mut *self.staged;
        if st.start == st.end {
            if st.drained {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if st.hold {
                st.held = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.sock.read(&mut st.buf)?;
            if n == 0 {
                return Ok(0);
            }
            if n < st.buf.len() {
                st.drained = true;
            }
            self.bytes_in += n as u64;
            st.start = 0;
            st.end = n;
        }
        let n = buf.len().min(st.end - st.start);
        buf[..n].copy_from_slice(&st.buf[st.start..st.start + n]);
        st.start += n;
        Ok(n)
    }
}

impl Write for WsIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.push(Bytes::copy_from_slice(buf));
        self.bytes_queued += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// Every idle connection pays for a slab entry and the boxed WebSocket state (besides
    /// tungstenite's read buffer and the outbound queue), so their sizes are pinned here.
    #[test]
    fn idle_connection_state_stays_small() {
        // mio's `TcpStream` carries a selector id in debug builds only.
        let debug_extra = size_of::<TcpStream>() - size_of::<std::net::TcpStream>();
        assert!(
            size_of::<Conn>() <= 160 + debug_extra,
            "Conn is {} bytes",
            size_of::<Conn>()
        );
        assert_eq!(size_of::<Phase>(), 16);
        // 264 bytes and 8 of malloc's header fill a 272 B chunk, as the bare context does.
        assert!(size_of::<WsState>() <= 264);
    }
}
