//! The management API's command-line clients: `umbra status`,
//! `umbra failover`, `umbra policy reload` and `umbra model reload` call
//! these functions, which return the text to print.
//!
//! Every function connects, makes one call and renders its answer. An
//! unreachable daemon is one line: "cannot reach the umbra daemon at ADDR:
//! why".

use std::{error::Error as StdError, fmt::Write as _, path::PathBuf, time::Duration};

use anyhow::{Context as _, anyhow, bail};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use umbra_proto::umbra::management::v1::{self as pb, management_client::ManagementClient};

use crate::{
    control::{HostStatus, PairStatus, ReloadOutcome},
    wire,
};

/// The default address of the management API.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50100";

/// How long to wait for the daemon to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one call may take. Reloads compile WebAssembly components or
/// load an ONNX model, which takes seconds, not minutes.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the daemon's management API is and how to authenticate to it.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// The management API's address.
    #[arg(long, env = "UMBRA_MANAGEMENT", default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// A file holding the management token (surrounding whitespace is
    /// ignored).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `umbra status`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StatusArgs {
    /// Only this pair.
    pub pair: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `umbra failover`.
#[derive(Clone, Debug, clap::Args)]
pub struct FailoverArgs {
    /// The pair to fail over.
    pub pair: String,
    /// Why, for the audit log.
    #[arg(long, default_value = "manual failover")]
    pub reason: String,
}

/// Prints the daemon's state: a table of the pairs and, under it, each
/// pair's last decision with its explanation and the devices' health; or
/// the whole state as JSON with `--json`.
///
/// # Errors
/// The daemon cannot be reached, refuses the token, has no such pair, or
/// answers something this client does not understand.
pub async fn status(args: &ClientArgs, status: &StatusArgs) -> anyhow::Result<String> {
    let mut client = connect(args).await?;
    let response = client
        .status(pb::StatusRequest {
            pair: status.pair.clone(),
        })
        .await
        .map_err(|s| rpc_error(&args.addr, s))?
        .into_inner();
    let host_status = wire::host_status(response)
        .map_err(|e| anyhow!("the umbra daemon at {} answered: {e}", args.addr))?;
    if status.json {
        let mut json = serde_json::to_string_pretty(&host_status)?;
        json.push('\n');
        Ok(json)
    } else {
        Ok(render_status(&host_status))
    }
}

/// Asks for a manual failover and returns the daemon's answer.
///
/// # Errors
/// The daemon cannot be reached, has no such pair, or refuses the failover
/// (the error then carries its reason, so the command exits non-zero).
pub async fn failover(args: &ClientArgs, failover: &FailoverArgs) -> anyhow::Result<String> {
    let mut client = connect(args).await?;
    let response = client
        .failover(pb::FailoverRequest {
            pair: failover.pair.clone(),
            reason: failover.reason.clone(),
        })
        .await
        .map_err(|s| rpc_error(&args.addr, s))?
        .into_inner();
    if response.accepted {
        Ok(format!(
            "failover of {} accepted: {}\n",
            failover.pair, response.message
        ))
    } else {
        bail!(
            "failover of {} refused: {}",
            failover.pair,
            response.message
        )
    }
}

/// Reloads the daemon's policies and lists what happened to each file. A
/// refused file is listed with its error (its previous version stays): it
/// is not an error of the command.
///
/// # Errors
/// The daemon cannot be reached or answers something this client does not
/// understand.
pub async fn reload_policies(args: &ClientArgs) -> anyhow::Result<String> {
    let mut client = connect(args).await?;
    let response = client
        .reload_policies(pb::ReloadPoliciesRequest {})
        .await
        .map_err(|s| rpc_error(&args.addr, s))?
        .into_inner();
    if response.reloads.is_empty() {
        return Ok("no policy files to reload\n".to_owned());
    }
    let mut rows = vec![[
        "KIND".to_owned(),
        "OUTCOME".to_owned(),
        "VERSION".to_owned(),
        "SOURCE".to_owned(),
    ]];
    let mut errors = String::new();
    for reload in response.reloads {
        let reload = wire::policy_reload(reload)
            .map_err(|e| anyhow!("the umbra daemon at {} answered: {e}", args.addr))?;
        if reload.outcome == ReloadOutcome::Refused {
            let _ = writeln!(
                errors,
                "{} refused: {}",
                reload.source,
                reload.error.as_deref().unwrap_or("no reason given")
            );
        }
        rows.push([
            reload.kind,
            reload.outcome.as_str().to_owned(),
            dash_if_empty(reload.version),
            reload.source,
        ]);
    }
    let mut text = table(&rows);
    text.push_str(&errors);
    Ok(text)
}

/// Reloads the failure predictor from `path` (the daemon's configured
/// path when `None`). A relative path is made absolute against the current
/// directory, since the daemon's is not the caller's.
///
/// # Errors
/// The daemon cannot be reached, or refuses the model (the error carries
/// why; the previous model keeps serving).
pub async fn reload_model(args: &ClientArgs, path: Option<PathBuf>) -> anyhow::Result<String> {
    let path = match path {
        None => None,
        Some(path) => {
            let absolute = std::path::absolute(&path)
                .with_context(|| format!("resolving {}", path.display()))?;
            let text = absolute
                .to_str()
                .ok_or_else(|| anyhow!("{} is not valid UTF-8", absolute.display()))?;
            Some(text.to_owned())
        }
    };
    let mut client = connect(args).await?;
    let response = client
        .reload_model(pb::ReloadModelRequest { path })
        .await
        .map_err(|s| rpc_error(&args.addr, s))?
        .into_inner();
    if response.ok {
        Ok(format!("model reloaded: {}\n", response.model))
    } else {
        bail!(
            "model refused (the previous one keeps serving): {}",
            response.error
        )
    }
}

/// The human form of `umbra status`.
pub fn render_status(status: &HostStatus) -> String {
    let mut text = format!(
        "host {} (election id {}), {} pair{}\n",
        status.host.name,
        status.host.election_id,
        status.pairs.len(),
        if status.pairs.len() == 1 { "" } else { "s" }
    );
    if status.pairs.is_empty() {
        return text;
    }
    text.push('\n');
    let mut rows = vec![
        [
            "PAIR",
            "PHASE",
            "ACTIVE",
            "STANDBY",
            "READY",
            "PRIMARY",
            "P(FAIL)/THRESHOLD",
            "FAILOVERS",
            "REPL LAG",
        ]
        .map(str::to_owned),
    ];
    for pair in &status.pairs {
        let probability = match &pair.last_decision {
            None => "-".to_owned(),
            Some(d) => format!(
                "{}/{:.2}",
                d.probability
                    .map_or_else(|| "n/a".to_owned(), |p| format!("{p:.2}")),
                d.probability_threshold
            ),
        };
        rows.push([
            pair.name.clone(),
            pair.phase.to_string(),
            pair.active_device.clone(),
            pair.standby_device.clone(),
            yes_no(pair.standby_ready).to_owned(),
            yes_no(pair.p4runtime_primary).to_owned(),
            probability,
            pair.failovers_total.to_string(),
            format!("{} ms", pair.replication.lag_ms),
        ]);
    }
    text.push_str(&table(&rows));
    for pair in &status.pairs {
        text.push('\n');
        render_pair_details(&mut text, pair);
    }
    text
}

fn render_pair_details(text: &mut String, pair: &PairStatus) {
    let _ = writeln!(text, "{} (switch {}):", pair.name, pair.switch);
    match &pair.last_decision {
        None => text.push_str("  last decision: none yet\n"),
        Some(d) => {
            let _ = writeln!(
                text,
                "  last decision at {}: {}: {}",
                utc_from_ms(d.at_ms),
                if d.go { "FAIL OVER" } else { "stay" },
                d.explanation
            );
            let probability = match d.probability {
                Some(p) => format!(
                    "{p:.2} {} threshold {:.2}",
                    if p >= d.probability_threshold {
                        ">="
                    } else {
                        "<"
                    },
                    d.probability_threshold
                ),
                None => format!("n/a (no model), threshold {:.2}", d.probability_threshold),
            };
            let _ = writeln!(
                text,
                "  drift {:.2}, correlation {:.2}, probability {probability}",
                d.drift_score, d.correlation_score
            );
            if d.fallback {
                text.push_str(
                    "  a built-in policy answered: a WebAssembly policy faulted or is quarantined\n",
                );
            }
        }
    }
    let last_failover = pair
        .last_failover_at_ms
        .map_or_else(|| "never".to_owned(), utc_from_ms);
    let _ = writeln!(
        text,
        "  failovers {} (last {last_failover}); replication lag {} ms, {} applied, {} resnapshots",
        pair.failovers_total,
        pair.replication.lag_ms,
        pair.replication.applied_total,
        pair.replication.resnapshots
    );
    if !pair.health.is_empty() {
        let health: Vec<String> = pair
            .health
            .iter()
            .map(|h| {
                if h.healthy {
                    format!("{} healthy", h.name)
                } else {
                    format!("{} UNHEALTHY ({})", h.name, h.reason)
                }
            })
            .collect();
        let _ = writeln!(text, "  health: {}", health.join(", "));
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn dash_if_empty(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

/// Left-aligned columns separated by two spaces, trailing spaces trimmed.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from milliseconds since the Unix epoch
/// (proleptic Gregorian, UTC), without a date library for one format.
fn utc_from_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

/// Adds `authorization: Bearer TOKEN` to every call when a token is set.
#[derive(Clone)]
struct BearerHeader(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerHeader {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

type Client = ManagementClient<InterceptedService<Channel, BearerHeader>>;

async fn connect(args: &ClientArgs) -> anyhow::Result<Client> {
    let header = match &args.token_file {
        None => None,
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?;
            let mut header: MetadataValue<Ascii> =
                format!("Bearer {}", token.trim()).parse().map_err(|_| {
                    anyhow!(
                        "the token in {} is not visible ASCII (it travels in a header)",
                        path.display()
                    )
                })?;
            header.set_sensitive(true);
            Some(header)
        }
    };
    let endpoint = Endpoint::from_shared(args.addr.clone())
        .map_err(|e| anyhow!("invalid management address {:?}: {e}", args.addr))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| {
        anyhow!(
            "cannot reach the umbra daemon at {}: {}",
            args.addr,
            error_chain(&e)
        )
    })?;
    Ok(ManagementClient::with_interceptor(
        channel,
        BearerHeader(header),
    ))
}

/// An error and its sources on one line (tonic's transport error alone
/// says only "transport error").
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some layers repeat their source's message; print it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn rpc_error(addr: &str, status: Status) -> anyhow::Error {
    match status.code() {
        Code::Unavailable => anyhow!(
            "cannot reach the umbra daemon at {addr}: {}",
            status.message()
        ),
        Code::Unauthenticated => anyhow!(
            "the umbra daemon at {addr} refused the call: {} (check --token-file)",
            status.message()
        ),
        Code::NotFound | Code::InvalidArgument => anyhow!("{}", status.message()),
        code => anyhow!(
            "the umbra daemon at {addr} answered {code:?}: {}",
            status.message()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_are_right_on_known_dates() {
        assert_eq!(utc_from_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_from_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_from_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc_from_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn tables_align_columns() {
        let rows = [
            ["A".to_owned(), "BB".to_owned()],
            ["long".to_owned(), "x".to_owned()],
        ];
        assert_eq!(table(&rows), "A     BB\nlong  x\n");
    }
}
