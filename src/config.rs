//! Every limit and setting, with its default, in one place.
//!
//! Priority: command-line flags, then environment variables (clap reads both), then the
//! optional TOML file given with `--config`, then the defaults below. TOML keys follow the
//! specs: core keys at the top level, per-app keys in a section named after the app
//! (`[pair] max_message_bytes = 65536`).

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The apps switchboard hosts, in the order of the protocol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppKind {
    Pester,
    Session,
    Rooms,
    Pair,
    Signal,
    /// The comparison peers' generic room protocol (`shared/peers/README.md`), for
    /// like-for-like benchmarks; off unless asked for.
    Bench,
    /// Echoes every message to its sender, for the Autobahn conformance run; off unless
    /// asked for.
    Echo,
}

impl AppKind {
    pub const ALL: [AppKind; 7] = [
        AppKind::Pester,
        AppKind::Session,
        AppKind::Rooms,
        AppKind::Pair,
        AppKind::Signal,
        AppKind::Bench,
        AppKind::Echo,
    ];
    /// Apps that are built in this binary.
    pub const IMPLEMENTED: [AppKind; 7] = [
        AppKind::Pester,
        AppKind::Session,
        AppKind::Rooms,
        AppKind::Pair,
        AppKind::Signal,
        AppKind::Bench,
        AppKind::Echo,
    ];
    /// Built apps that run only when asked for (`--apps`).
    pub const OPT_IN: [AppKind; 2] = [AppKind::Bench, AppKind::Echo];

    pub fn name(self) -> &'static str {
        match self {
            AppKind::Pester => "pester",
            AppKind::Session => "session",
            AppKind::Rooms => "rooms",
            AppKind::Pair => "pair",
            AppKind::Signal => "signal",
            AppKind::Bench => "bench",
            AppKind::Echo => "echo",
        }
    }

    pub fn parse(s: &str) -> Option<AppKind> {
        AppKind::ALL.into_iter().find(|a| a.name() == s)
    }

    pub fn default_port(self) -> u16 {
        match self {
            AppKind::Pester => 4000,
            AppKind::Session => 8000,
            AppKind::Rooms => 8787,
            AppKind::Pair => 3001,
            AppKind::Signal => 8080,
            AppKind::Bench => 29100,
            AppKind::Echo => 29200,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings of one app.
#[derive(Clone, Debug, PartialEq)]
pub struct AppConfig {
    pub enabled: bool,
    pub port: u16,
    /// Largest message accepted from a client; over it the connection is closed 1009.
    pub max_message_bytes: usize,
}

/// The signal app's own limits (signal.md "Limits"). Its introduction message limit is
/// `signal.max_message_bytes` (TOML also accepts the spec's `max_introduction_message_bytes`),
/// and `signal.pipe_high_water_bytes` sets the core's `pipe_high_water_bytes` (only signal
/// pipes).
#[derive(Clone, Debug, PartialEq)]
pub struct SignalConfig {
    /// Largest message on a held or piped connection; over it both sides are closed.
    pub max_pipe_message_bytes: usize,
    /// Payload a held connection may buffer before close 1009 `Hold buffer full`.
    pub hold_buffer_bytes: usize,
    /// Seconds a connection may be held before close 1000 `Hold timeout`; 0 waits forever.
    pub hold_timeout_secs: u64,
    /// Longest decoded id or key in a path (400 before the upgrade over it).
    pub max_id_bytes: usize,
    /// Longest document key in a Join or Leave; longer keys are skipped.
    pub max_key_bytes: usize,
    /// Most keys one introduction peer may hold; over it close 1008 `Too many keys`.
    pub max_keys_per_peer: usize,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig {
            max_pipe_message_bytes: 16 << 20,
            hold_buffer_bytes: 1 << 20,
            hold_timeout_secs: 0,
            max_id_bytes: 256,
            max_key_bytes: 256,
            max_keys_per_peer: 1024,
        }
    }
}

/// A secret key. Its `Debug` form never shows the bytes, so configuration dumps and logs
/// cannot leak it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s.into_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0.len())
    }
}

/// The session app's own settings (`session.md`, Limits); keys `session.<field>`.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSettings {
    /// HMAC key (`JWT_SECRET`); unset or empty: the session app cannot start.
    pub jwt_secret: Option<Secret>,
    /// `alg` values accepted, byte for byte; only `HS256`, `HS384`, `HS512` are allowed.
    pub jwt_algorithms: Vec<String>,
    pub jwt_leeway_secs: u64,
    /// The `host` claim must equal the `Host` header.
    pub check_host: bool,
    pub max_token_bytes: usize,
    /// Messages kept per room (rolling window).
    pub history_size: usize,
    pub max_users_per_room: usize,
    /// Longest chat message in UTF-16 code units; longer ones are dropped silently.
    pub max_message_units: usize,
    /// One snapshot per room per reactor turn instead of one per change.
    pub coalesce_snapshots: bool,
    pub empty_room_ttl_secs: u64,
    pub max_rooms: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            jwt_secret: None,
            jwt_algorithms: vec!["HS256".into()],
            jwt_leeway_secs: 0,
            check_host: true,
            max_token_bytes: 8192,
            history_size: 100,
            max_users_per_room: 100,
            max_message_units: 1000,
            coalesce_snapshots: true,
            empty_room_ttl_secs: 3600,
            max_rooms: 100_000,
        }
    }
}

/// The HMAC algorithms a session token may name; anything else (`none` above all) is
/// refused at startup.
pub const JWT_ALGORITHMS: [&str; 3] = ["HS256", "HS384", "HS512"];

impl SessionSettings {
    fn validate(&self) -> Result<(), String> {
        if self.jwt_secret.is_none() {
            return Err(
                "the session app needs a secret: set JWT_SECRET (or session.jwt_secret)".into(),
            );
        }
        if self.jwt_algorithms.is_empty() {
            return Err("session.jwt_algorithms is empty".into());
        }
        if let Some(a) = self
            .jwt_algorithms
            .iter()
            .find(|a| !JWT_ALGORITHMS.contains(&a.as_str()))
        {
            return Err(format!(
                "session.jwt_algorithms: {a:?} is not allowed (only HS256, HS384, HS512)"
            ));
        }
        let positive = [
            ("max_token_bytes", self.max_token_bytes),
            ("max_users_per_room", self.max_users_per_room),
            ("max_rooms", self.max_rooms),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("session.{name} must be greater than 0"));
            }
        }
        Ok(())
    }
}

/// The rooms app's own settings (`[rooms]`; rooms.md, Limits).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    pub max_room_name_bytes: usize,
    pub max_connections_per_room: usize,
    pub max_id_bytes: usize,
    pub max_polls: usize,
    pub max_ephemeral_polls: usize,
    pub max_answers_per_poll: usize,
    pub max_counters: usize,
    pub max_subscriptions_per_connection: usize,
    pub max_relays_per_connection: usize,
    pub max_properties_bytes: usize,
    pub max_config_bytes: usize,
    pub ping_interval_ms: u64,
    pub admin_ts_window_ms: u64,
    /// `ADMIN_SIGNING_KEY`; unset or empty disables the admin role.
    pub admin_signing_key: Option<Secret>,
    pub store_path: PathBuf,
    pub flush_interval_ms: u64,
    pub room_idle_unload_secs: u64,
    /// 0 keeps user records forever.
    pub user_record_ttl_days: u64,
    /// `X-Socket-Server` on the 101; empty sends none.
    pub server_header: String,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            max_room_name_bytes: 256,
            max_connections_per_room: 10_000,
            max_id_bytes: 256,
            max_polls: 1000,
            max_ephemeral_polls: 1000,
            max_answers_per_poll: 100,
            max_counters: 1000,
            max_subscriptions_per_connection: 256,
            max_relays_per_connection: 64,
            max_properties_bytes: 16_384,
            max_config_bytes: 65_536,
            ping_interval_ms: 25_000,
            admin_ts_window_ms: 300_000,
            admin_signing_key: None,
            store_path: PathBuf::from("./switchboard-data/rooms.db"),
            flush_interval_ms: 1000,
            room_idle_unload_secs: 60,
            user_record_ttl_days: 30,
            server_header: "Pact Studio <workwithpact.com>".into(),
        }
    }
}

/// pester's own settings (`[pester]` in TOML, next to `port` and `max_message_bytes`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PesterConfig {
    /// Engine.IO `maxPayload`: WebSocket messages (1009) and polling POST bodies (413).
    pub max_payload: usize,
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    /// Time a probing WebSocket has to send `5`.
    pub upgrade_timeout_ms: u64,
    /// Time a session may go without a connected namespace.
    pub connect_timeout_ms: u64,
    pub max_attachments: usize,
    /// Packets queued for one polling session before it is closed.
    pub max_buffered_bytes: usize,
    pub max_user_id_bytes: usize,
    pub max_channels_per_user: usize,
    pub max_pending_invites_per_user: usize,
}

impl Default for PesterConfig {
    fn default() -> Self {
        PesterConfig {
            max_payload: 1_000_000,
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            upgrade_timeout_ms: 10_000,
            connect_timeout_ms: 45_000,
            max_attachments: 10,
            max_buffered_bytes: 1 << 20,
            max_user_id_bytes: 256,
            max_channels_per_user: 1000,
            max_pending_invites_per_user: 100,
        }
    }
}

impl PesterConfig {
    pub fn limits(&self) -> crate::apps::pester::channel::Limits {
        crate::apps::pester::channel::Limits {
            max_user_id_bytes: self.max_user_id_bytes,
            max_channels_per_user: self.max_channels_per_user,
            max_pending_invites_per_user: self.max_pending_invites_per_user,
        }
    }

    pub fn settings(&self) -> crate::apps::pester::session::Settings {
        crate::apps::pester::session::Settings {
            ping_interval_ms: self.ping_interval_ms,
            ping_timeout_ms: self.ping_timeout_ms,
            upgrade_timeout_ms: self.upgrade_timeout_ms,
            connect_timeout_ms: self.connect_timeout_ms,
            max_attachments: self.max_attachments,
            max_buffered_bytes: self.max_buffered_bytes,
            max_payload: self.max_payload,
        }
    }
}

/// The whole resolved configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Reactor threads; 0 means one per available core.
    pub threads: usize,
    /// Address every listener binds to.
    pub bind: IpAddr,
    /// Admin port (`/healthz`, `/readyz`, `/metrics`); 0 picks a free port.
    pub admin_port: u16,
    pub admin_enabled: bool,
    /// Connections per process (HTTP 503 over it).
    pub max_connections: usize,
    /// Connections per client address (HTTP 429 over it); 0 is off.
    pub max_connections_per_ip: usize,
    /// Largest HTTP request head before the upgrade (431 over it).
    pub max_header_bytes: usize,
    /// Largest number of request headers (431 over it).
    pub max_headers: usize,
    /// Time allowed for the whole HTTP request head.
    pub handshake_timeout_ms: u64,
    /// Server Ping period.
    pub ws_ping_interval_ms: u64,
    /// Silence allowed after a Ping period before the peer is presumed gone.
    pub ws_pong_timeout_ms: u64,
    /// Outbound bytes queued for one connection before it is closed 1008 `Slow consumer`.
    pub max_outbound_bytes: usize,
    /// Time a connection may have queued output without the socket taking a byte.
    pub write_stall_timeout_ms: u64,
    /// Data messages one connection may send per second (fixed one-second windows); over
    /// it → close 1008 `Too many messages`. 0 is off.
    pub max_messages_per_sec: u32,
    /// Time to wait for the peer's Close reply (or EOF) after the server closed.
    pub close_linger_ms: u64,
    /// How long a plain HTTP connection stays open for its next request after an app's
    /// answer (HTTP/1.1 keep-alive, for long-polling clients); 0 closes after every answer.
    pub http_keep_alive_ms: u64,
    /// Read buffer kept per WebSocket (tungstenite grows it for large frames); socket
    /// reads are staged through one shared 64 KiB buffer per reactor.
    pub read_buffer_bytes: usize,
    /// Queued bytes on one side of a pipe above which the other side is not read.
    pub pipe_high_water_bytes: usize,
    /// Allowed `Origin` values; empty means any origin.
    pub allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Time the server drains after SIGTERM before it exits.
    pub shutdown_grace_ms: u64,
    pub log_format: LogFormat,
    /// tracing-subscriber filter, e.g. `info` or `switchboard=debug`.
    pub log_level: String,
    pub pester: AppConfig,
    pub pester_opts: PesterConfig,
    pub session: AppConfig,
    pub session_settings: SessionSettings,
    pub rooms: AppConfig,
    pub pair: AppConfig,
    pub signal: AppConfig,
    pub bench: AppConfig,
    pub echo: AppConfig,
    pub signal_limits: SignalConfig,
    /// Settings of the rooms app beyond port and message size.
    pub rooms_opts: RoomsConfig,
}

impl Default for Config {
    fn default() -> Self {
        let app = |kind: AppKind, max_message_bytes| AppConfig {
            enabled: AppKind::IMPLEMENTED.contains(&kind) && !AppKind::OPT_IN.contains(&kind),
            port: kind.default_port(),
            max_message_bytes,
        };
        Config {
            threads: 0,
            bind: IpAddr::from([0, 0, 0, 0]),
            admin_port: 9000,
            admin_enabled: true,
            max_connections: 100_000,
            max_connections_per_ip: 0,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            handshake_timeout_ms: 10_000,
            ws_ping_interval_ms: 25_000,
            ws_pong_timeout_ms: 20_000,
            max_outbound_bytes: 1 << 20,
            write_stall_timeout_ms: 30_000,
            max_messages_per_sec: 0,
            close_linger_ms: 2_000,
            http_keep_alive_ms: 5_000,
            read_buffer_bytes: 256,
            pipe_high_water_bytes: 1 << 20,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            shutdown_grace_ms: 10_000,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            pester: app(AppKind::Pester, 1_000_000),
            pester_opts: PesterConfig::default(),
            session: app(AppKind::Session, 65_536),
            session_settings: SessionSettings::default(),
            rooms: app(AppKind::Rooms, 1 << 20),
            pair: app(AppKind::Pair, 65_536),
            signal: app(AppKind::Signal, 65_536),
            bench: app(AppKind::Bench, 1 << 20),
            echo: app(AppKind::Echo, 1 << 20),
            signal_limits: SignalConfig::default(),
            rooms_opts: RoomsConfig::default(),
        }
    }
}

impl Config {
    pub fn app(&self, kind: AppKind) -> &AppConfig {
        match kind {
            AppKind::Pester => &self.pester,
            AppKind::Session => &self.session,
            AppKind::Rooms => &self.rooms,
            AppKind::Pair => &self.pair,
            AppKind::Signal => &self.signal,
            AppKind::Bench => &self.bench,
            AppKind::Echo => &self.echo,
        }
    }

    pub fn app_mut(&mut self, kind: AppKind) -> &mut AppConfig {
        match kind {
            AppKind::Pester => &mut self.pester,
            AppKind::Session => &mut self.session,
            AppKind::Rooms => &mut self.rooms,
            AppKind::Pair => &mut self.pair,
            AppKind::Signal => &mut self.signal,
            AppKind::Bench => &mut self.bench,
            AppKind::Echo => &mut self.echo,
        }
    }

    pub fn enabled_apps(&self) -> Vec<AppKind> {
        AppKind::ALL
            .into_iter()
            .filter(|&a| self.app(a).enabled)
            .collect()
    }

    /// The number of reactor threads to start.
    pub fn reactor_count(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Checks the settings that cannot be expressed in types.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads > 256 {
            return Err(format!(
                "threads = {} is over the limit of 256",
                self.threads
            ));
        }
        let enabled = self.enabled_apps();
        if enabled.is_empty() {
            return Err("no app is enabled".into());
        }
        for &a in &enabled {
            if !AppKind::IMPLEMENTED.contains(&a) {
                return Err(format!(
                    "the {} app is not implemented in this build",
                    a.name()
                ));
            }
        }
        let mut ports: Vec<(u16, &str)> = enabled
            .iter()
            .map(|&a| (self.app(a).port, a.name()))
            .collect();
        if self.admin_enabled {
            ports.push((self.admin_port, "admin"));
        }
        for (i, &(p, name)) in ports.iter().enumerate() {
            if p == 0 {
                continue;
            }
            if let Some(&(_, other)) = ports[..i].iter().find(|(q, _)| *q == p) {
                return Err(format!("{name} and {other} are both set to port {p}"));
            }
        }
        let positive = [
            ("max_header_bytes", self.max_header_bytes as u64),
            ("max_headers", self.max_headers as u64),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("ws_ping_interval_ms", self.ws_ping_interval_ms),
            ("max_outbound_bytes", self.max_outbound_bytes as u64),
            ("read_buffer_bytes", self.read_buffer_bytes as u64),
            ("pipe_high_water_bytes", self.pipe_high_water_bytes as u64),
            ("max_connections", self.max_connections as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        for &a in &enabled {
            if self.app(a).max_message_bytes == 0 {
                return Err(format!(
                    "{}.max_message_bytes must be greater than 0",
                    a.name()
                ));
            }
        }
        let s = &self.signal_limits;
        let signal_positive = [
            ("max_pipe_message_bytes", s.max_pipe_message_bytes),
            ("hold_buffer_bytes", s.hold_buffer_bytes),
            ("max_id_bytes", s.max_id_bytes),
            ("max_key_bytes", s.max_key_bytes),
            ("max_keys_per_peer", s.max_keys_per_peer),
        ];
        for (name, v) in signal_positive {
            if v == 0 {
                return Err(format!("signal.{name} must be greater than 0"));
            }
        }
        if self.session.enabled {
            self.session_settings.validate()?;
        }
        Ok(())
    }
}

/// The TOML file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub threads: Option<usize>,
    pub bind: Option<IpAddr>,
    pub admin_port: Option<u16>,
    pub admin_enabled: Option<bool>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub handshake_timeout_ms: Option<u64>,
    pub ws_ping_interval_ms: Option<u64>,
    pub ws_pong_timeout_ms: Option<u64>,
    pub max_outbound_bytes: Option<usize>,
    pub write_stall_timeout_ms: Option<u64>,
    pub max_messages_per_sec: Option<u32>,
    pub close_linger_ms: Option<u64>,
    pub http_keep_alive_ms: Option<u64>,
    pub read_buffer_bytes: Option<usize>,
    pub pipe_high_water_bytes: Option<usize>,
    pub allowed_origins: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<IpAddr>>,
    pub shutdown_grace_ms: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub pester: Option<FilePesterConfig>,
    pub session: Option<FileSessionConfig>,
    pub rooms: Option<FileRoomsSection>,
    pub pair: Option<FileAppConfig>,
    pub signal: Option<FileSignalConfig>,
    pub bench: Option<FileAppConfig>,
    pub echo: Option<FileAppConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAppConfig {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub max_message_bytes: Option<usize>,
}

/// The `[signal]` section: the common keys plus signal.md's limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSignalConfig {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub max_message_bytes: Option<usize>,
    pub max_introduction_message_bytes: Option<usize>,
    pub max_pipe_message_bytes: Option<usize>,
    pub hold_buffer_bytes: Option<usize>,
    pub hold_timeout_secs: Option<u64>,
    pub pipe_high_water_bytes: Option<usize>,
    pub max_id_bytes: Option<usize>,
    pub max_key_bytes: Option<usize>,
    pub max_keys_per_peer: Option<usize>,
}

impl FileSignalConfig {
    /// Lays the signal-only keys over `cfg`; returns the common part.
    fn apply(self, cfg: &mut Config) -> FileAppConfig {
        let l = &mut cfg.signal_limits;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { l.$field = v; } )* };
        }
        set!(
            max_pipe_message_bytes,
            hold_buffer_bytes,
            hold_timeout_secs,
            max_id_bytes,
            max_key_bytes,
            max_keys_per_peer
        );
        if let Some(v) = self.pipe_high_water_bytes {
            cfg.pipe_high_water_bytes = v;
        }
        FileAppConfig {
            enabled: self.enabled,
            port: self.port,
            max_message_bytes: self
                .max_message_bytes
                .or(self.max_introduction_message_bytes),
        }
    }
}

/// The `[session]` section: the common app keys plus the session settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSessionConfig {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub max_message_bytes: Option<usize>,
    pub jwt_secret: Option<Secret>,
    pub jwt_algorithms: Option<Vec<String>>,
    pub jwt_leeway_secs: Option<u64>,
    pub check_host: Option<bool>,
    pub max_token_bytes: Option<usize>,
    pub history_size: Option<usize>,
    pub max_users_per_room: Option<usize>,
    pub max_message_units: Option<usize>,
    pub coalesce_snapshots: Option<bool>,
    pub empty_room_ttl_secs: Option<u64>,
    pub max_rooms: Option<usize>,
}

impl FileSessionConfig {
    fn apply(self, app: &mut AppConfig, s: &mut SessionSettings) {
        FileAppConfig {
            enabled: self.enabled,
            port: self.port,
            max_message_bytes: self.max_message_bytes,
        }
        .apply(app);
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { s.$field = v; } )* };
        }
        set!(
            jwt_algorithms,
            jwt_leeway_secs,
            check_host,
            max_token_bytes,
            history_size,
            max_users_per_room,
            max_message_units,
            coalesce_snapshots,
            empty_room_ttl_secs,
            max_rooms
        );
        if let Some(secret) = self.jwt_secret {
            s.jwt_secret = Some(secret).filter(|k| !k.0.is_empty());
        }
    }
}

impl FileAppConfig {
    fn apply(self, app: &mut AppConfig) {
        if let Some(v) = self.enabled {
            app.enabled = v;
        }
        if let Some(v) = self.port {
            app.port = v;
        }
        if let Some(v) = self.max_message_bytes {
            app.max_message_bytes = v;
        }
    }
}

/// `[rooms]`: the common app keys plus [`RoomsConfig`]'s (serde's `flatten` cannot be
/// combined with `deny_unknown_fields`, so the common keys are split off by hand).
#[derive(Debug, Default)]
pub struct FileRoomsSection {
    pub app: FileAppConfig,
    /// Every rooms key, defaults filled in.
    pub rooms: RoomsConfig,
}

impl<'de> Deserialize<'de> for FileRoomsSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let mut common = toml::Table::new();
        for key in ["enabled", "port", "max_message_bytes"] {
            if let Some(v) = table.remove(key) {
                common.insert(key.into(), v);
            }
        }
        let app: FileAppConfig = toml::Value::Table(common)
            .try_into()
            .map_err(serde::de::Error::custom)?;
        let rooms: RoomsConfig = toml::Value::Table(table)
            .try_into()
            .map_err(serde::de::Error::custom)?;
        Ok(FileRoomsSection { app, rooms })
    }
}

/// `[pester]`: the common app keys plus pester's own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePesterConfig {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub max_message_bytes: Option<usize>,
    pub max_payload: Option<usize>,
    pub ping_interval_ms: Option<u64>,
    pub ping_timeout_ms: Option<u64>,
    pub upgrade_timeout_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub max_attachments: Option<usize>,
    pub max_buffered_bytes: Option<usize>,
    pub max_user_id_bytes: Option<usize>,
    pub max_channels_per_user: Option<usize>,
    pub max_pending_invites_per_user: Option<usize>,
}

impl FilePesterConfig {
    /// Splits into the common section and lays pester's own keys over `opts`.
    fn split(self, opts: &mut PesterConfig) -> FileAppConfig {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { opts.$f = v; } )* };
        }
        set!(
            max_payload,
            ping_interval_ms,
            ping_timeout_ms,
            upgrade_timeout_ms,
            connect_timeout_ms,
            max_attachments,
            max_buffered_bytes,
            max_user_id_bytes,
            max_channels_per_user,
            max_pending_invites_per_user
        );
        FileAppConfig {
            enabled: self.enabled,
            port: self.port,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Lays this file's values over `cfg`.
    pub fn apply(self, cfg: &mut Config) {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { cfg.$field = v; } )* };
        }
        set!(
            threads,
            bind,
            admin_port,
            admin_enabled,
            max_connections,
            max_connections_per_ip,
            max_header_bytes,
            max_headers,
            handshake_timeout_ms,
            ws_ping_interval_ms,
            ws_pong_timeout_ms,
            max_outbound_bytes,
            write_stall_timeout_ms,
            max_messages_per_sec,
            close_linger_ms,
            http_keep_alive_ms,
            read_buffer_bytes,
            pipe_high_water_bytes,
            allowed_origins,
            trusted_proxies,
            shutdown_grace_ms,
            log_format,
            log_level
        );
        let rooms = self.rooms.map(|r| {
            cfg.rooms_opts = r.rooms;
            r.app
        });
        let sections = [
            (
                AppKind::Pester,
                self.pester.map(|p| p.split(&mut cfg.pester_opts)),
            ),
            (AppKind::Rooms, rooms),
            (AppKind::Pair, self.pair),
            (AppKind::Signal, self.signal.map(|s| s.apply(cfg))),
            (AppKind::Bench, self.bench),
            (AppKind::Echo, self.echo),
        ];
        for (kind, section) in sections {
            if let Some(s) = section {
                s.apply(cfg.app_mut(kind));
            }
        }
        if let Some(s) = self.session {
            s.apply(&mut cfg.session, &mut cfg.session_settings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_ports() {
        let mut c = Config::default();
        // The session app cannot start without its secret (session.md, Secret).
        assert!(c.validate().unwrap_err().contains("JWT_SECRET"));
        c.session_settings.jwt_secret = Some(Secret::from("k".repeat(32)));
        c.validate().unwrap();
        assert_eq!(c.pair.port, 3001);
        assert_eq!(c.admin_port, 9000);
        assert_eq!(c.max_outbound_bytes, 1 << 20);
    }

    #[test]
    fn file_overrides_defaults_and_refuses_unknown_keys() {
        let f: FileConfig = toml::from_str("threads = 3\n[pair]\nport = 4444\n").unwrap();
        let mut c = Config::default();
        f.apply(&mut c);
        assert_eq!(c.threads, 3);
        assert_eq!(c.pair.port, 4444);
        assert!(toml::from_str::<FileConfig>("nope = 1").is_err());
    }

    #[test]
    fn signal_section_sets_its_limits_and_the_pipe_high_water_mark() {
        let f: FileConfig = toml::from_str(
            "[signal]\nport = 8081\nmax_introduction_message_bytes = 100\nhold_timeout_secs = 30\n\
             pipe_high_water_bytes = 4096\nmax_keys_per_peer = 7\n",
        )
        .unwrap();
        let mut c = Config::default();
        f.apply(&mut c);
        assert_eq!((c.signal.port, c.signal.max_message_bytes), (8081, 100));
        assert_eq!(c.signal_limits.hold_timeout_secs, 30);
        assert_eq!(c.signal_limits.max_keys_per_peer, 7);
        assert_eq!(c.pipe_high_water_bytes, 4096);
        assert!(toml::from_str::<FileConfig>("[signal]\nnope = 1").is_err());
        c.signal_limits.hold_buffer_bytes = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .contains("signal.hold_buffer_bytes")
        );
    }

    #[test]
    fn session_section_secret_is_redacted_and_none_is_refused() {
        let f: FileConfig = toml::from_str(
            "[session]\nport = 8001\njwt_secret = \"s3cr3t-value\"\njwt_algorithms = [\"HS256\", \"none\"]\n",
        )
        .unwrap();
        let mut c = Config::default();
        f.apply(&mut c);
        assert_eq!(c.session.port, 8001);
        let dump = format!("{c:?}");
        assert!(!dump.contains("s3cr3t"), "{dump}");
        assert!(dump.contains("<redacted, 12 bytes>"), "{dump}");
        assert!(c.validate().unwrap_err().contains("\"none\""));
        c.session_settings.jwt_algorithms = vec!["RS256".into()];
        assert!(c.validate().is_err());
        c.session_settings.jwt_algorithms = vec!["HS256".into(), "HS512".into()];
        c.validate().unwrap();
    }

    #[test]
    fn rooms_section_takes_common_and_rooms_keys() {
        let f: FileConfig =
            toml::from_str("[rooms]\nport = 1234\nmax_polls = 3\nadmin_signing_key = \"s\"\n")
                .unwrap();
        let mut c = Config::default();
        f.apply(&mut c);
        assert_eq!((c.rooms.port, c.rooms_opts.max_polls), (1234, 3));
        assert_eq!(c.rooms_opts.max_counters, 1000);
        assert_eq!(
            format!("{:?}", c.rooms_opts.admin_signing_key),
            "Some(<redacted, 1 bytes>)"
        );
        assert!(toml::from_str::<FileConfig>("[rooms]\nmax_pols = 3\n").is_err());
    }

    #[test]
    fn port_clash_is_refused() {
        let c = Config {
            admin_port: 3001,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("port 3001"));
    }
}
