//! Application health checks, configured per service: HTTP(S) GET with an
//! expected status and a latency bound, TCP connect, PostgreSQL connect plus
//! `SELECT 1`. Each run gives a [`CheckResult`] (outcome, latency, status
//! code and class, database status); a [`HealthWindow`] folds the runs of
//! the decision window into the [`umbra_policy_logic::HealthCheck`] records
//! the policies and the predictor see.
//!
//! A check never errors out: a refused connection, a timeout, a TLS
//! failure or garbage from the server is a failed run with the reason in
//! [`CheckResult::error`], which is exactly what the predictor must see.

#![forbid(unsafe_code)]

mod http_check;
mod window;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

pub use window::HealthWindow;

/// Errors of the health-check configuration (runs never error; see the
/// crate documentation).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A check's configuration is invalid; every problem is listed. The
    /// operator who wrote it is at fault.
    #[error("invalid health check configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
}

/// Result of the configuration functions of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a check probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `GET url`; passes when the status is `expect_status` (any 2xx when
    /// absent) and the response head arrives within `max_latency_ms`.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// Status code that passes; any 2xx when absent.
        expect_status: Option<u16>,
        /// Latency above which a run fails even with the right status.
        max_latency_ms: Option<u64>,
        /// PEM file of the CAs trusted for `https://` (default: the
        /// system's bundle, `/etc/ssl/certs/ca-certificates.crt`).
        ca_file: Option<PathBuf>,
    },
    /// A TCP connection to `addr` (`host:port`).
    Tcp {
        /// Address to connect to.
        addr: String,
    },
    /// A PostgreSQL connection (libpq-style `conninfo`, e.g. `host=127.0.0.1
    /// user=app dbname=app password=...`) and `SELECT 1`.
    Postgres {
        /// Connection string.
        conninfo: String,
    },
}

/// One configured check. In a configuration file it is one flat table:
/// `name`, `kind` (`http`, `tcp` or `postgres`), `timeout_ms` (default
/// 2000) and the fields of its kind (`url`, `expect_status`,
/// `max_latency_ms`, `ca_file`; `addr`; `conninfo`). Unknown fields and
/// fields of another kind are refused.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawCheck")]
pub struct CheckConfig {
    /// Name of the check, as the policies see it.
    pub name: String,
    /// What it probes.
    pub probe: Probe,
    /// Time a run may take before it fails, in milliseconds.
    pub timeout_ms: u64,
}

/// Default of [`CheckConfig::timeout_ms`].
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// The flat file form of a [`CheckConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: String,
    kind: String,
    timeout_ms: Option<u64>,
    url: Option<String>,
    expect_status: Option<u16>,
    max_latency_ms: Option<u64>,
    ca_file: Option<PathBuf>,
    addr: Option<String>,
    conninfo: Option<String>,
}

impl TryFrom<RawCheck> for CheckConfig {
    type Error = String;

    fn try_from(raw: RawCheck) -> std::result::Result<Self, String> {
        let name = raw.name;
        let foreign = |fields: &[(&str, bool)]| {
            let given: Vec<&str> = fields.iter().filter(|f| f.1).map(|f| f.0).collect();
            if given.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "check {name:?} of kind {:?} cannot have {}",
                    raw.kind,
                    given.join(", ")
                ))
            }
        };
        let required = |field: Option<String>, key: &str| {
            field.ok_or_else(|| format!("check {name:?} of kind {:?} needs `{key}`", raw.kind))
        };
        let http_fields = [
            ("url", raw.url.is_some()),
            ("expect_status", raw.expect_status.is_some()),
            ("max_latency_ms", raw.max_latency_ms.is_some()),
            ("ca_file", raw.ca_file.is_some()),
        ];
        let probe = match raw.kind.as_str() {
            "http" => {
                foreign(&[
                    ("addr", raw.addr.is_some()),
                    ("conninfo", raw.conninfo.is_some()),
                ])?;
                Probe::Http {
                    url: required(raw.url, "url")?,
                    expect_status: raw.expect_status,
                    max_latency_ms: raw.max_latency_ms,
                    ca_file: raw.ca_file,
                }
            }
            "tcp" => {
                foreign(&http_fields)?;
                foreign(&[("conninfo", raw.conninfo.is_some())])?;
                Probe::Tcp {
                    addr: required(raw.addr, "addr")?,
                }
            }
            "postgres" => {
                foreign(&http_fields)?;
                foreign(&[("addr", raw.addr.is_some())])?;
                Probe::Postgres {
                    conninfo: required(raw.conninfo, "conninfo")?,
                }
            }
            other => {
                return Err(format!(
                    "check {name:?}: unknown kind {other:?} (expected http, tcp or postgres)"
                ));
            }
        };
        Ok(Self {
            probe,
            timeout_ms: raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            name,
        })
    }
}

impl CheckConfig {
    /// Every problem with the configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name = &self.name;
        if name.is_empty() {
            problems.push("a check needs a name".to_owned());
        }
        if self.timeout_ms == 0 {
            problems.push(format!("check {name:?}: timeout_ms must be at least 1"));
        }
        match &self.probe {
            Probe::Http {
                url, expect_status, ..
            } => {
                if let Err(e) = http_check::Target::parse(url) {
                    problems.push(format!("check {name:?}: {e}"));
                }
                if let Some(code) = expect_status
                    && !(100..=599).contains(code)
                {
                    problems.push(format!(
                        "check {name:?}: expect_status {code} is not an HTTP status"
                    ));
                }
            }
            Probe::Tcp { addr } => {
                if addr
                    .rsplit_once(':')
                    .is_none_or(|(_, p)| p.parse::<u16>().is_err())
                {
                    problems.push(format!("check {name:?}: addr {addr:?} is not host:port"));
                }
            }
            Probe::Postgres { conninfo } => {
                if let Err(e) = conninfo.parse::<tokio_postgres::Config>() {
                    problems.push(format!("check {name:?}: bad conninfo: {e}"));
                }
            }
        }
        problems
    }

    /// Validates a set of checks: every problem of every check, and
    /// duplicate names.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn validate_all(checks: &[CheckConfig]) -> Result<()> {
        let mut problems: Vec<String> = checks.iter().flat_map(Self::problems).collect();
        for (i, c) in checks.iter().enumerate() {
            if checks[..i].iter().any(|d| d.name == c.name) {
                problems.push(format!("check name {:?} is used twice", c.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(problems))
        }
    }
}

/// The outcome of one run of a check.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// Name of the check.
    pub name: String,
    /// Whether the run passed.
    pub ok: bool,
    /// Time from the start of the run to its answer (or to the failure), ms.
    pub latency_ms: f64,
    /// HTTP status code, for HTTP checks that got a response.
    pub status: Option<u16>,
    /// Database connectivity, for PostgreSQL checks.
    pub db_connected: Option<bool>,
    /// Why the run failed.
    pub error: Option<String>,
}

/// Runs `check` once. Never fails: see the crate documentation.
pub async fn run_check(check: &CheckConfig) -> CheckResult {
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, probe(&check.probe)).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut result = CheckResult {
        name: check.name.clone(),
        ok: false,
        latency_ms,
        status: None,
        db_connected: matches!(check.probe, Probe::Postgres { .. }).then_some(false),
        error: None,
    };
    match outcome {
        Err(_) => result.error = Some(format!("no answer within {} ms", check.timeout_ms)),
        Ok(Err(error)) => result.error = Some(error),
        Ok(Ok(answer)) => {
            result.status = answer.status;
            if matches!(check.probe, Probe::Postgres { .. }) {
                result.db_connected = Some(true);
            }
            result.ok = true;
            if let Probe::Http {
                expect_status,
                max_latency_ms,
                ..
            } = &check.probe
            {
                let status = answer.status.unwrap_or(0);
                let status_ok = match expect_status {
                    Some(code) => status == *code,
                    None => (200..300).contains(&status),
                };
                if !status_ok {
                    result.ok = false;
                    result.error = Some(match expect_status {
                        Some(code) => format!("status {status}, expected {code}"),
                        None => format!("status {status}, expected 2xx"),
                    });
                } else if let Some(max) = max_latency_ms
                    && latency_ms > *max as f64
                {
                    result.ok = false;
                    result.error = Some(format!(
                        "answered in {latency_ms:.1} ms, over the {max} ms bound"
                    ));
                }
            }
        }
    }
    result
}

/// What a probe learned when it got an answer.
struct Answer {
    status: Option<u16>,
}

async fn probe(probe: &Probe) -> std::result::Result<Answer, String> {
    match probe {
        Probe::Http { url, ca_file, .. } => {
            let status = http_check::get(url, ca_file.as_deref()).await?;
            Ok(Answer {
                status: Some(status),
            })
        }
        Probe::Tcp { addr } => {
            tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            Ok(Answer { status: None })
        }
        Probe::Postgres { conninfo } => {
            let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("connect: {}", db_error(&e)))?;
            // The connection task ends when the client is dropped below.
            let driver = tokio::spawn(connection);
            let rows = client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| format!("SELECT 1: {}", db_error(&e)));
            drop(client);
            let _ = driver.await;
            rows.map(|_| Answer { status: None })
        }
    }
}

/// A PostgreSQL error with the server's message when there is one.
fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
