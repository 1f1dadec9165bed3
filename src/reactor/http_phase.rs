//! Before the upgrade: admission caps, the request head, routing, plain answers, the
//! upgrade itself, and the hand-off of a socket to the reactor that owns its key.

use super::conn::{self, Phase, WsState};
use super::inbox::{Envelope, Handoff, HandoffKind};
use super::{Reactor, dispatch::CoreEvent};
use crate::apps::{self, Route};
use crate::error::Reject;
use crate::http::{self, Intent, Parsed, Request, Response, Status};
use crate::metrics::{ADMIN, bump};
use crate::router::owner_of;
use bytes::Bytes;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

impl Reactor {
    /// A freshly accepted socket: count it against the global cap and start reading.
    pub(super) fn admit(&mut self, sock: mio::net::TcpStream, peer: SocketAddr, service: usize) {
        let _ = sock.set_nodelay(true);
        let Some(key) = self.insert(sock, service, Phase::http(peer)) else {
            return;
        };
        if service == ADMIN {
            return self.read_http(key);
        }
        let max = self.shared.config.max_connections;
        if self.shared.connections.fetch_add(1, Ordering::Relaxed) >= max {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            let r = Response::text(Status::SERVICE_UNAVAILABLE, "Too many connections");
            return self.respond(key, r, Some(Reject::GlobalCap));
        }
        if let Some(c) = self.conns.get_mut(key) {
            c.counted = true;
        }
        self.read_http(key);
    }

    pub(super) fn read_http(&mut self, key: usize) {
        let max_head = self.shared.config.max_header_bytes;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::Http(h) = &mut c.phase else {
            return;
        };
        let head = &mut h.head;
        let mut got = 0u64;
        loop {
            match c.sock.read(&mut self.scratch) {
                Ok(0) => {
                    // The client left before finishing its request.
                    return self.drop_now(key);
                }
                Ok(n) => {
                    head.extend_from_slice(&self.scratch[..n]);
                    got += n as u64;
                    if head.len() > max_head {
                        break;
                    }
                    if n < self.scratch.len() {
                        // Short read: the queue is empty (see `WsIo::read`).
                        c.readable = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_now(key),
            }
        }
        let service = usize::from(c.service);
        bump(&self.shared.stats[self.me].services[service].bytes_in, got);
        // Nothing new: unless bytes kept from before wait to be parsed (a request that came
        // right behind one the app answered with keep-alive).
        if got == 0 && head.is_empty() {
            return;
        }
        if h.idle && !head.is_empty() {
            // The next request has started: it gets the whole request deadline.
            h.idle = false;
            c.deadline = self.now + self.shared.config.handshake_timeout_ms;
        }
        match http::parse_request(head, self.shared.config.max_headers) {
            Parsed::Partial if head.len() < max_head => {}
            Parsed::Complete(req, head_len) if head_len <= max_head => {
                let leftover = head[head_len..].to_vec();
                self.route(key, req, leftover);
            }
            Parsed::Partial | Parsed::Complete(..) => self.respond(
                key,
                Response::status(Status::HEADERS_TOO_LARGE),
                Some(Reject::HeadersTooLarge),
            ),
            Parsed::Reject(status) => {
                let reason = if status == Status::HEADERS_TOO_LARGE {
                    Reject::HeadersTooLarge
                } else {
                    Reject::BadRequest
                };
                self.respond(key, Response::status(status), Some(reason))
            }
        }
    }

    fn route(&mut self, key: usize, mut req: Request, leftover: Vec<u8>) {
        let Some(c) = self.conns.get(key) else { return };
        let Phase::Http(h) = &c.phase else { return };
        let (service, app, peer) = (usize::from(c.service), c.app, h.peer);
        let cfg = &self.shared.config;
        let ip = http::client_ip(peer, req.header("x-forwarded-for"), &cfg.trusted_proxies);
        req.client_ip = Some(ip);
        let keep_alive =
            cfg.http_keep_alive_ms > 0 && http::wants_keep_alive(&req) && !http::has_body(&req);
        let Some(app) = app.filter(|_| service != ADMIN) else {
            let r = self.admin_answer(&req);
            if keep_alive {
                return self.respond_keep_alive(key, r, leftover);
            }
            return self.respond(key, r, None);
        };
        if self.shared.draining.load(Ordering::Relaxed) {
            let r = Response::text(Status::SERVICE_UNAVAILABLE, "Server shutting down");
            return self.respond(key, r, Some(Reject::Draining));
        }
        let ws_key = match http::intent(&req) {
            Intent::BadUpgrade(r) => return self.respond(key, r, Some(Reject::BadUpgrade)),
            Intent::Plain => {
                let r = match apps::route(app, &req, false, cfg) {
                    Route::Respond(r) => r,
                    Route::Http { owner, max_body } => {
                        let target = owner.map_or(self.me, |k| owner_of(&k, self.shared.reactors));
                        if target == self.me {
                            return self.app_request(key, req, leftover, max_body);
                        }
                        let kind = HandoffKind::Http { leftover, max_body };
                        return self.hand_off(key, target, req, kind);
                    }
                    Route::Upgrade { .. } => {
                        Response::text(Status::UPGRADE_REQUIRED, "Upgrade Required")
                    }
                };
                let reject = (r.status.0 >= 400).then_some(Reject::AppAnswer);
                if keep_alive {
                    if let Some(reason) = reject {
                        self.stats(service).reject(reason);
                    }
                    return self.respond_keep_alive(key, r, leftover);
                }
                return self.respond(key, r, reject);
            }
            Intent::WebSocket(k) => k,
        };
        if !http::origin_allowed(&cfg.allowed_origins, req.header("origin")) {
            let r = Response::text(Status::FORBIDDEN, "Origin not allowed");
            return self.respond(key, r, Some(Reject::Origin));
        }
        let (owner, headers, max_message) = match apps::route(app, &req, true, cfg) {
            Route::Respond(r) => return self.respond(key, r, Some(Reject::AppAnswer)),
            Route::Http { .. } => {
                let r = Response::text(Status::BAD_REQUEST, "Not a WebSocket endpoint");
                return self.respond(key, r, Some(Reject::AppAnswer));
            }
            Route::Upgrade {
                owner,
                headers,
                max_message_bytes,
            } => (owner, headers, max_message_bytes),
        };
        if cfg.max_connections_per_ip > 0 {
            if !self.shared.acquire_ip(ip, cfg.max_connections_per_ip) {
                let r = Response::text(
                    Status::TOO_MANY_REQUESTS,
                    "Too many connections from this address",
                );
                return self.respond(key, r, Some(Reject::PerIpCap));
            }
            self.set_ip(key, Some(ip));
        }
        let target = owner.map_or(self.me, |k| owner_of(&k, self.shared.reactors));
        if target == self.me {
            return self.upgrade(key, req, &ws_key, &headers, max_message, leftover);
        }
        self.hand_off(
            key,
            target,
            req,
            HandoffKind::Upgrade {
                ws_key,
                headers,
                max_message,
                leftover,
            },
        );
    }

    /// Moves a connection (not yet upgraded) to reactor `target`.
    pub(super) fn hand_off(&mut self, key: usize, target: usize, req: Request, kind: HandoffKind) {
        let mut c = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut c.sock);
        let ip_counted = self.take_ip(key);
        self.outgoing[target].push(Envelope::Handoff(Box::new(Handoff {
            sock: c.sock,
            service: c.service.into(),
            req,
            ip_counted,
            kind,
        })));
    }

    /// Takes over a socket handed here by another reactor, then upgrades it.
    pub(super) fn adopt(&mut self, h: Handoff) {
        // The request is parsed already (the peer address went into `req.client_ip`):
        // `upgrade` or `give_to_app` below sets the real phase.
        let Some(key) = self.insert(h.sock, h.service, Phase::held_then_close()) else {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            if let Some(ip) = h.ip_counted {
                self.shared.release_ip(ip);
            }
            return;
        };
        if let Some(c) = self.conns.get_mut(key) {
            c.counted = true;
        }
        self.set_ip(key, h.ip_counted);
        if self.draining {
            let r = Response::text(Status::SERVICE_UNAVAILABLE, "Server shutting down");
            return self.respond(key, r, Some(Reject::Draining));
        }
        match h.kind {
            HandoffKind::Upgrade {
                ws_key,
                headers,
                max_message,
                leftover,
            } => self.upgrade(key, h.req, &ws_key, &headers, max_message, leftover),
            HandoffKind::Http { leftover, max_body } => {
                self.app_request(key, h.req, leftover, max_body)
            }
        }
    }

    /// Answers 101, starts the WebSocket, and tells the app.
    fn upgrade(
        &mut self,
        key: usize,
        req: Request,
        ws_key: &str,
        headers: &[(String, String)],
        max_message: Option<usize>,
        leftover: Vec<u8>,
    ) {
        let Some((app, id)) = self.conns.get(key).and_then(|c| Some((c.app?, c.id))) else {
            return;
        };
        let mut headers = headers.to_vec();
        if let Err(r) = self.app_accept(app, id, &req, &mut headers) {
            return self.respond(key, r, Some(Reject::AppAnswer));
        }
        let cfg = &self.shared.config;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let max = max_message.unwrap_or(cfg.app(app).max_message_bytes);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(cfg.read_buffer_bytes)
            .write_buffer_size(0)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let answer = http::switching_protocols(ws_key, &headers);
        let written = c.out.write_or_push(&mut c.sock, answer);
        c.phase = Phase::Ws(Box::new(WsState {
            ctx: WebSocketContext::from_partially_read(leftover, Role::Server, Some(ws_config)),
            rate_window: self.now,
        }));
        c.opened = true;
        c.active = true;
        c.last_recv = self.now;
        c.last_write = self.now;
        // From here on the deadline is the next server Ping.
        c.deadline = self.now + cfg.ws_ping_interval_ms;
        c.readable = true;
        let (id, service) = (c.id, c.service);
        let stats = self.stats(service);
        bump(&stats.bytes_out, written as u64);
        bump(&stats.connections_total, 1);
        stats.active(1);
        self.mark_dirty(key);
        self.dispatch(
            app,
            CoreEvent::Opened {
                conn: id,
                req: &req,
            },
        );
        // Frames may have come with the head, or since.
        self.on_readable(key);
    }

    /// Queues a plain answer and closes after it. An app that held the request (a core
    /// answer such as 408 to a body the app heard of) is owed its Closed.
    pub(super) fn respond(&mut self, key: usize, r: Response, reject: Option<Reject>) {
        let linger = self.now + self.shared.config.close_linger_ms;
        self.owe_closed(key);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.out.push(Bytes::from(r.to_bytes()));
        c.last_write = self.now;
        c.phase = Phase::Closing {
            linger: true,
            half_closed: false,
        };
        c.deadline = linger;
        let service = c.service;
        if let Some(reason) = reject {
            self.stats(service).reject(reason);
        }
        self.mark_dirty(key);
    }

    /// Queues an answer and keeps the connection for the next request; `next` is what the
    /// client already sent of it. Closes after the answer instead while draining, or when
    /// answers the client has not read pass `max_outbound_bytes` (a client pipelining
    /// requests without reading the answers).
    pub(super) fn respond_keep_alive(&mut self, key: usize, r: Response, next: Vec<u8>) {
        let cfg = &self.shared.config;
        let (idle_ms, head_ms) = (cfg.http_keep_alive_ms, cfg.handshake_timeout_ms);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let reusable = c.out.queued() < cfg.max_outbound_bytes && !self.draining;
        let peer = match c.sock.peer_addr() {
            Ok(peer) if reusable => peer,
            _ => return self.respond(key, r, None),
        };
        c.out
            .push(Bytes::from(r.to_bytes_with(Some(idle_ms / 1000))));
        c.last_write = self.now;
        let idle = next.is_empty();
        c.deadline = self.now + if idle { idle_ms } else { head_ms };
        c.phase = Phase::Http(Box::new(conn::HttpHead {
            head: next,
            peer,
            idle,
        }));
        if !idle {
            c.readable = true;
            self.pending_reads.push(key);
        }
        self.mark_dirty(key);
    }

    pub(super) fn handshake_timeout_or_drop(&mut self, key: usize) {
        match self.conns.get(key).map(|c| &c.phase) {
            // A kept-alive connection nobody used again.
            Some(Phase::Http(h)) if h.idle => self.drop_now(key),
            Some(Phase::Http(_) | Phase::HttpBody(_)) => {
                let r = Response::status(Status::REQUEST_TIMEOUT);
                self.respond(key, r, Some(Reject::Timeout));
                // No second chance: the linger deadline is short and input is discarded.
            }
            _ => self.drop_now(key),
        }
    }

    fn admin_answer(&self, req: &Request) -> Response {
        if req.method != "GET" {
            return Response::status(Status::NOT_FOUND);
        }
        match req.path.as_str() {
            "/healthz" => Response::text(Status::OK, "ok"),
            "/readyz" if self.shared.draining.load(Ordering::Relaxed) => {
                Response::text(Status::SERVICE_UNAVAILABLE, "draining")
            }
            "/readyz"
                if self
                    .shared
                    .store_healthy
                    .as_ref()
                    .is_some_and(|h| !h.load(Ordering::Relaxed)) =>
            {
                Response::text(Status::SERVICE_UNAVAILABLE, "store unavailable")
            }
            "/readyz" => Response::text(Status::OK, "ready"),
            "/metrics" => Response {
                status: Status::OK,
                content_type: prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                extra_headers: Vec::new(),
                body: crate::metrics::render(&self.shared.stats).into_bytes(),
            },
            _ => Response::status(Status::NOT_FOUND),
        }
    }
}
