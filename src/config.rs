//! Every limit and setting, with its default, in one place.
//!
//! Priority: command-line flags, then environment variables (clap reads both), then the
//! optional TOML file given with `--config`, then the defaults below. TOML keys follow the
//! specs: core keys at the top level, per-app keys in a section named after the app
//! (`[pair] max_message_bytes = 65536`).

use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

/// The apps switchboard hosts, in the order of the protocol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppKind {
    Pester,
    Session,
    Rooms,
    Pair,
    Signal,
}

impl AppKind {
    pub const ALL: [AppKind; 5] = [
        AppKind::Pester,
        AppKind::Session,
        AppKind::Rooms,
        AppKind::Pair,
        AppKind::Signal,
    ];
    /// Apps that are built and started by default.
    pub const IMPLEMENTED: [AppKind; 2] = [AppKind::Pester, AppKind::Pair];

    pub fn name(self) -> &'static str {
        match self {
            AppKind::Pester => "pester",
            AppKind::Session => "session",
            AppKind::Rooms => "rooms",
            AppKind::Pair => "pair",
            AppKind::Signal => "signal",
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
    /// Time to wait for the peer's Close reply (or EOF) after the server closed.
    pub close_linger_ms: u64,
    /// Initial read buffer per WebSocket (tungstenite grows it for large frames).
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
    pub rooms: AppConfig,
    pub pair: AppConfig,
    pub signal: AppConfig,
}

impl Default for Config {
    fn default() -> Self {
        let app = |kind: AppKind, max_message_bytes| AppConfig {
            enabled: AppKind::IMPLEMENTED.contains(&kind),
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
            close_linger_ms: 2_000,
            read_buffer_bytes: 4096,
            pipe_high_water_bytes: 1 << 20,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            shutdown_grace_ms: 10_000,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            pester: app(AppKind::Pester, 1_000_000),
            pester_opts: PesterConfig::default(),
            session: app(AppKind::Session, 65_536),
            rooms: app(AppKind::Rooms, 1 << 20),
            pair: app(AppKind::Pair, 65_536),
            signal: app(AppKind::Signal, 1 << 20),
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
        }
    }

    pub fn app_mut(&mut self, kind: AppKind) -> &mut AppConfig {
        match kind {
            AppKind::Pester => &mut self.pester,
            AppKind::Session => &mut self.session,
            AppKind::Rooms => &mut self.rooms,
            AppKind::Pair => &mut self.pair,
            AppKind::Signal => &mut self.signal,
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
    pub close_linger_ms: Option<u64>,
    pub read_buffer_bytes: Option<usize>,
    pub pipe_high_water_bytes: Option<usize>,
    pub allowed_origins: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<IpAddr>>,
    pub shutdown_grace_ms: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub pester: Option<FilePesterConfig>,
    pub session: Option<FileAppConfig>,
    pub rooms: Option<FileAppConfig>,
    pub pair: Option<FileAppConfig>,
    pub signal: Option<FileAppConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAppConfig {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub max_message_bytes: Option<usize>,
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
            close_linger_ms,
            read_buffer_bytes,
            pipe_high_water_bytes,
            allowed_origins,
            trusted_proxies,
            shutdown_grace_ms,
            log_format,
            log_level
        );
        let sections = [
            (
                AppKind::Pester,
                self.pester.map(|p| p.split(&mut cfg.pester_opts)),
            ),
            (AppKind::Session, self.session),
            (AppKind::Rooms, self.rooms),
            (AppKind::Pair, self.pair),
            (AppKind::Signal, self.signal),
        ];
        for (kind, section) in sections {
            let Some(s) = section else { continue };
            let app = cfg.app_mut(kind);
            if let Some(v) = s.enabled {
                app.enabled = v;
            }
            if let Some(v) = s.port {
                app.port = v;
            }
            if let Some(v) = s.max_message_bytes {
                app.max_message_bytes = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_ports() {
        let c = Config::default();
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
    fn port_clash_is_refused() {
        let c = Config {
            admin_port: 3001,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("port 3001"));
    }
}
