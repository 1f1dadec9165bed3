//! Starting the reactors: listeners, inboxes, shared counters; and stopping them.

use crate::apps::rooms::store::{self, Store};
use crate::config::{AppKind, Config};
use crate::metrics::{ADMIN, ReactorStats, service_of};
use crate::reactor::dispatch::RoomsBoot;
use crate::reactor::inbox::{Envelope, Inbox};
use crate::reactor::{Listener, Reactor};
use mio::{Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// State every reactor can see. Nothing here is touched per message except each
/// reactor's own stats.
pub struct Shared {
    pub config: Config,
    pub reactors: usize,
    pub inboxes: Vec<Inbox>,
    pub stats: Vec<ReactorStats>,
    pub draining: AtomicBool,
    /// App connections in the process, for `max_connections`.
    pub connections: AtomicUsize,
    /// Reactors that have not yet drained their own connections during shutdown; every
    /// reactor keeps serving the admin port until this reaches zero.
    pub undrained: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Each reactor's start-up state for the rooms app, taken once by that reactor.
    rooms_boot: Mutex<Vec<Option<RoomsBoot>>>,
    /// False while the rooms store fails to write (`/readyz` answers 503).
    pub store_healthy: Option<Arc<AtomicBool>>,
}

impl Shared {
    pub fn take_rooms_boot(&self, me: usize) -> Option<RoomsBoot> {
        let mut boots = self.rooms_boot.lock().unwrap_or_else(|p| p.into_inner());
        boots.get_mut(me).and_then(Option::take)
    }

    /// Counts one more connection from `ip`, unless it already has `limit`.
    pub fn acquire_ip(&self, ip: IpAddr, limit: usize) -> bool {
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    pub fn release_ip(&self, ip: IpAddr) {
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    addrs: Vec<(usize, SocketAddr)>,
    /// The rooms store thread; joined after the reactors, so its last batch is written.
    store: Option<Store>,
}

const WAKER_TOKEN: Token = Token(0);

/// Checks that nobody holds `addr` yet, by binding it once without `SO_REUSEPORT`.
/// Without this check a second switchboard (or an old one still running) would silently
/// share the port, and the kernel would split the clients between the two processes.
/// Returns the address with its port resolved (for port 0).
fn probe_free(addr: SocketAddr) -> io::Result<SocketAddr> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

fn listen(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(mio::net::TcpListener::from_std(sock.into()))
}

/// Opens the rooms store and splits its rooms by owner reactor. A store that cannot be
/// opened disables the rooms app (the log says why) and lets the others run.
fn open_rooms_store(config: &mut Config, n: usize) -> (Option<Store>, Vec<Option<RoomsBoot>>) {
    if !config.rooms.enabled {
        return (None, Vec::new());
    }
    let o = &config.rooms_opts;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let started = Instant::now();
    match store::open(
        &o.store_path,
        o.flush_interval_ms,
        o.user_record_ttl_days,
        now,
    ) {
        Ok((store, rooms)) => {
            let count = rooms.len();
            let mut per: Vec<HashMap<String, store::Loaded>> =
                (0..n).map(|_| HashMap::new()).collect();
            for (name, loaded) in rooms {
                let owner = crate::router::owner_of(&crate::apps::rooms::owner_key(&name), n);
                per[owner].insert(name, loaded);
            }
            tracing::info!(rooms = count, ms = started.elapsed().as_millis() as u64, path = %o.store_path.display(), "rooms store loaded");
            let boots = per
                .into_iter()
                .map(|loaded| {
                    Some(RoomsBoot {
                        loaded,
                        sink: store.sink(),
                    })
                })
                .collect();
            (Some(store), boots)
        }
        Err(e) => {
            tracing::error!(error = %e, "rooms store unavailable: the rooms app does not start");
            config.rooms.enabled = false;
            (None, Vec::new())
        }
    }
}

/// Raises the soft open-file limit to the hard limit, so the connection cap, not the
/// descriptor limit, is what bounds the server.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

impl Server {
    /// Binds every enabled service on every reactor and starts the reactor threads.
    pub fn start(mut config: Config) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let n = config.reactor_count();
        let (store, rooms_boot) = open_rooms_store(&mut config, n);
        let mut services: Vec<(usize, u16)> = config
            .enabled_apps()
            .into_iter()
            .map(|a| (service_of(a), config.app(a).port))
            .collect();
        if config.admin_enabled {
            services.push((ADMIN, config.admin_port));
        }
        // One listener per service per reactor; port 0 is resolved by the first bind.
        let mut per_reactor: Vec<Vec<Listener>> = (0..n).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        for (service, port) in services {
            let wanted = SocketAddr::new(config.bind, port);
            let mut addr = probe_free(wanted).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on {wanted} for {}: {e}",
                        crate::metrics::service_name(service)
                    ),
                )
            })?;
            for listeners in per_reactor.iter_mut() {
                let l = listen(addr).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot listen on {addr} for {}: {e}",
                            crate::metrics::service_name(service)
                        ),
                    )
                })?;
                addr = l.local_addr()?;
                listeners.push(Listener::new(service, l));
            }
            addrs.push((service, addr));
        }
        let mut polls = Vec::new();
        let mut inboxes = Vec::new();
        for _ in 0..n {
            let poll = Poll::new()?;
            inboxes.push(Inbox::new(Waker::new(poll.registry(), WAKER_TOKEN)?));
            polls.push(poll);
        }
        let shared = Arc::new(Shared {
            config,
            reactors: n,
            inboxes,
            stats: (0..n).map(|_| ReactorStats::default()).collect(),
            draining: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            undrained: AtomicUsize::new(n),
            per_ip: Mutex::new(HashMap::new()),
            store_healthy: store.as_ref().map(|s| s.healthy.clone()),
            rooms_boot: Mutex::new(rooms_boot),
        });
        let mut threads = Vec::new();
        for (i, (poll, listeners)) in polls.into_iter().zip(per_reactor).enumerate() {
            let reactor = Reactor::new(i, shared.clone(), poll, listeners);
            let t = std::thread::Builder::new()
                .name(format!("reactor-{i}"))
                .spawn(move || reactor.run())?;
            threads.push(t);
        }
        Ok(Server {
            shared,
            threads,
            addrs,
            store,
        })
    }

    /// The bound address of an app, if it is enabled.
    pub fn addr(&self, app: AppKind) -> Option<SocketAddr> {
        self.service_addr(service_of(app))
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.service_addr(ADMIN)
    }

    fn service_addr(&self, service: usize) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, a)| *a)
    }

    /// Every bound address, by service name.
    pub fn addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        self.addrs
            .iter()
            .map(|&(s, a)| (crate::metrics::service_name(s), a))
            .collect()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts the graceful shutdown: readiness 503, listeners closed, close 1001 to all.
    pub fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        for inbox in &self.shared.inboxes {
            inbox.push(Envelope::Shutdown);
        }
    }

    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Waits for every reactor to finish; returns the first error a reactor hit.
    pub fn join(mut self) -> io::Result<()> {
        let mut result = Ok(());
        for t in std::mem::take(&mut self.threads) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = result.and(Err(e)),
                Err(_) => result = result.and(Err(io::Error::other("a reactor thread panicked"))),
            }
        }
        // The reactors (and their sinks) are gone: the store writes its last batch.
        if let Some(store) = self.store.take() {
            store.join();
        }
        result
    }

    /// Shuts down and waits up to `timeout` (tests).
    pub fn stop(self, timeout: Duration) -> io::Result<()> {
        self.shutdown();
        let start = Instant::now();
        while !self.is_finished() && start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.join()
    }
}
