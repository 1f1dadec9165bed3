//! Command-line flags (each with an environment variable) and how they resolve into a
//! [`Config`]: defaults, then the `--config` TOML file, then the originals' `PORT`, then
//! environment variables, then flags.

use crate::config::{AppKind, Config, FileConfig, LogFormat};
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One server for the pester, session, rooms, pair and signal WebSocket protocols"
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Opts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, print it, and exit.
    CheckConfig,
}

macro_rules! app_flags {
    ($($app:ident: $port:ident, $port_env:literal, $max:ident, $max_env:literal;)*) => {
        /// Per-app ports and limits.
        #[derive(Debug, Args)]
        pub struct AppFlags {
            $(
                #[arg(long, env = $port_env, help = concat!("Port of the ", stringify!($app), " app"))]
                pub $port: Option<u16>,
                #[arg(long, env = $max_env, help = concat!("Largest message for ", stringify!($app), " (bytes; close 1009 over it)"))]
                pub $max: Option<usize>,
            )*
        }

        impl AppFlags {
            fn apply(&self, cfg: &mut Config) {
                $(
                    if let Some(v) = self.$port { cfg.$app.port = v; }
                    if let Some(v) = self.$max { cfg.$app.max_message_bytes = v; }
                )*
            }
        }
    };
}

app_flags! {
    pester: pester_port, "SWITCHBOARD_PESTER_PORT", pester_max_message_bytes, "SWITCHBOARD_PESTER_MAX_MESSAGE_BYTES";
    session: session_port, "SWITCHBOARD_SESSION_PORT", session_max_message_bytes, "SWITCHBOARD_SESSION_MAX_MESSAGE_BYTES";
    rooms: rooms_port, "SWITCHBOARD_ROOMS_PORT", rooms_max_message_bytes, "SWITCHBOARD_ROOMS_MAX_MESSAGE_BYTES";
    pair: pair_port, "SWITCHBOARD_PAIR_PORT", pair_max_message_bytes, "SWITCHBOARD_PAIR_MAX_MESSAGE_BYTES";
    signal: signal_port, "SWITCHBOARD_SIGNAL_PORT", signal_max_message_bytes, "SWITCHBOARD_SIGNAL_MAX_MESSAGE_BYTES";
}

macro_rules! pester_flags {
    ($($field:ident: $ty:ty, $flag:literal, $env:literal, $help:literal;)*) => {
        /// pester's own settings (`[pester]` in TOML).
        #[derive(Debug, Args)]
        pub struct PesterFlags {
            $(
                #[arg(long = $flag, env = $env, help = $help)]
                pub $field: Option<$ty>,
            )*
        }

        impl PesterFlags {
            fn apply(&self, cfg: &mut Config) {
                $( if let Some(v) = self.$field { cfg.pester_opts.$field = v; } )*
            }
        }
    };
}

pester_flags! {
    max_payload: usize, "pester-max-payload", "SWITCHBOARD_PESTER_MAX_PAYLOAD", "Engine.IO maxPayload (bytes) [default: 1000000]";
    ping_interval_ms: u64, "pester-ping-interval-ms", "SWITCHBOARD_PESTER_PING_INTERVAL_MS", "Engine.IO ping interval [default: 25000]";
    ping_timeout_ms: u64, "pester-ping-timeout-ms", "SWITCHBOARD_PESTER_PING_TIMEOUT_MS", "Engine.IO pong timeout [default: 20000]";
    upgrade_timeout_ms: u64, "pester-upgrade-timeout-ms", "SWITCHBOARD_PESTER_UPGRADE_TIMEOUT_MS", "Time for a probing WebSocket to upgrade [default: 10000]";
    connect_timeout_ms: u64, "pester-connect-timeout-ms", "SWITCHBOARD_PESTER_CONNECT_TIMEOUT_MS", "Time a session may stay without a namespace [default: 45000]";
    max_attachments: usize, "pester-max-attachments", "SWITCHBOARD_PESTER_MAX_ATTACHMENTS", "Binary attachments per Socket.IO packet [default: 10]";
    max_buffered_bytes: usize, "pester-max-buffered-bytes", "SWITCHBOARD_PESTER_MAX_BUFFERED_BYTES", "Packets queued per polling session [default: 1048576]";
    max_user_id_bytes: usize, "pester-max-user-id-bytes", "SWITCHBOARD_PESTER_MAX_USER_ID_BYTES", "Longest user id [default: 256]";
    max_channels_per_user: usize, "pester-max-channels-per-user", "SWITCHBOARD_PESTER_MAX_CHANNELS_PER_USER", "Channels per user [default: 1000]";
    max_pending_invites_per_user: usize, "pester-max-pending-invites-per-user", "SWITCHBOARD_PESTER_MAX_PENDING_INVITES_PER_USER", "Pending invites per invitee [default: 100]";
}

#[derive(Debug, Args)]
pub struct Opts {
    /// TOML file with settings (flags and environment variables win over it).
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Validate the configuration and exit (same as the check-config command).
    #[arg(long)]
    pub check_config: bool,
    /// Apps to run, comma-separated (default: every app built in).
    #[arg(long, env = "SWITCHBOARD_APPS", value_delimiter = ',')]
    pub apps: Option<Vec<String>>,
    /// Reactor threads (default: one per available core).
    #[arg(long, env = "SWITCHBOARD_THREADS")]
    pub threads: Option<usize>,
    /// Address every listener binds to [default: 0.0.0.0].
    #[arg(long, env = "SWITCHBOARD_BIND")]
    pub bind: Option<IpAddr>,
    /// Admin port for /healthz, /readyz and /metrics [default: 9000].
    #[arg(long, env = "SWITCHBOARD_ADMIN_PORT")]
    pub admin_port: Option<u16>,
    /// Do not serve the admin port.
    #[arg(long, env = "SWITCHBOARD_NO_ADMIN")]
    pub no_admin: bool,
    #[command(flatten)]
    pub app: AppFlags,
    #[command(flatten)]
    pub pester: PesterFlags,
    /// Connections per process; HTTP 503 over it [default: 100000].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections per client address; HTTP 429 over it; 0 is off [default: 0].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Largest request head; 431 over it [default: 16384].
    #[arg(long, env = "SWITCHBOARD_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Most request headers; 431 over it [default: 64].
    #[arg(long, env = "SWITCHBOARD_MAX_HEADERS")]
    pub max_headers: Option<usize>,
    /// Time for the whole request head [default: 10000].
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_TIMEOUT_MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Server Ping period [default: 25000].
    #[arg(long, env = "SWITCHBOARD_WS_PING_INTERVAL_MS")]
    pub ws_ping_interval_ms: Option<u64>,
    /// Silence after a ping period before a peer is dropped [default: 20000].
    #[arg(long, env = "SWITCHBOARD_WS_PONG_TIMEOUT_MS")]
    pub ws_pong_timeout_ms: Option<u64>,
    /// Queued output per connection before close 1008 [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_MAX_OUTBOUND_BYTES")]
    pub max_outbound_bytes: Option<usize>,
    /// Time queued output may make no progress; 0 is off [default: 30000].
    #[arg(long, env = "SWITCHBOARD_WRITE_STALL_TIMEOUT_MS")]
    pub write_stall_timeout_ms: Option<u64>,
    /// Wait for the peer after the server's Close or HTTP answer [default: 2000].
    #[arg(long, env = "SWITCHBOARD_CLOSE_LINGER_MS")]
    pub close_linger_ms: Option<u64>,
    /// Initial read buffer per WebSocket [default: 4096].
    #[arg(long, env = "SWITCHBOARD_READ_BUFFER_BYTES")]
    pub read_buffer_bytes: Option<usize>,
    /// Queued bytes on one side of a pipe above which the other side is not read [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_PIPE_HIGH_WATER_BYTES")]
    pub pipe_high_water_bytes: Option<usize>,
    /// Allowed Origin values, comma-separated (default: any origin).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Proxies whose X-Forwarded-For is believed, comma-separated.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// Drain time after SIGTERM before exit [default: 10000].
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Log format [default: text].
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or switchboard=debug [default: info].
    #[arg(long, env = "SWITCHBOARD_LOG")]
    pub log_level: Option<String>,
}

impl Opts {
    /// Resolves the configuration. `port_env` is the originals' `PORT` variable.
    pub fn resolve(&self, port_env: Option<&str>) -> Result<Config, String> {
        let mut cfg = Config::default();
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut cfg);
        }
        if let Some(list) = &self.apps {
            let mut chosen = Vec::new();
            for name in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
                chosen.push(AppKind::parse(name).ok_or_else(|| {
                    format!("unknown app {name:?} (known: pester, session, rooms, pair, signal)")
                })?);
            }
            for kind in AppKind::ALL {
                cfg.app_mut(kind).enabled = chosen.contains(&kind);
            }
        }
        if let Some(port) = port_env.filter(|p| !p.is_empty()) {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("PORT={port:?} is not a port number"))?;
            match cfg.enabled_apps()[..] {
                [only] => cfg.app_mut(only).port = port,
                _ => {
                    return Err("PORT is set but more than one app is enabled; use \
                        SWITCHBOARD_PESTER_PORT, SWITCHBOARD_SESSION_PORT, SWITCHBOARD_ROOMS_PORT, \
                        SWITCHBOARD_PAIR_PORT or SWITCHBOARD_SIGNAL_PORT, or enable one app with --apps"
                        .into());
                }
            }
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { cfg.$field = v; } )* };
        }
        set!(
            threads,
            bind,
            admin_port,
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
        if self.no_admin {
            cfg.admin_enabled = false;
        }
        self.app.apply(&mut cfg);
        self.pester.apply(&mut cfg);
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Opts {
        let mut all = vec!["switchboard"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().opts
    }

    #[test]
    fn port_applies_to_a_single_app_only() {
        let c = opts(&["--apps", "pair"]).resolve(Some("5555")).unwrap();
        assert_eq!(c.pair.port, 5555);
        let mut two = opts(&[]);
        two.apps = Some(vec!["pair".into(), "signal".into()]);
        let err = two.resolve(Some("5555")).unwrap_err();
        assert!(err.contains("SWITCHBOARD_PAIR_PORT"), "{err}");
    }

    #[test]
    fn flags_win_over_file() {
        let dir = std::env::temp_dir().join(format!("sb-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "threads = 3\nmax_outbound_bytes = 10\n[pair]\nport = 4444\n",
        )
        .unwrap();
        let c = opts(&["--config", file.to_str().unwrap(), "--threads", "2"])
            .resolve(None)
            .unwrap();
        assert_eq!(
            (c.threads, c.max_outbound_bytes, c.pair.port),
            (2, 10, 4444)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pester_flags_set_pester_options() {
        let c = opts(&["--apps", "pester", "--pester-ping-interval-ms", "500"])
            .resolve(None)
            .unwrap();
        assert_eq!(c.pester_opts.ping_interval_ms, 500);
        let f: FileConfig = toml::from_str("[pester]\nport = 1\nmax_attachments = 3\n").unwrap();
        let mut c = Config::default();
        f.apply(&mut c);
        assert_eq!((c.pester.port, c.pester_opts.max_attachments), (1, 3));
    }

    #[test]
    fn unknown_app_is_named() {
        let o = opts(&["--apps", "pair,chat"]);
        assert!(o.resolve(None).unwrap_err().contains("\"chat\""));
    }
}
