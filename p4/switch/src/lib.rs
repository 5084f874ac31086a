//! Umbra's software P4 switch: the `umbra.p4` pipeline (`umbra-pipeline`) on
//! real Linux interfaces (AF_PACKET), served over P4Runtime.
//!
//! The P4Runtime service ([`service`]) owns the control-plane semantics of the
//! spec — arbitration, pipeline config, Write/Read validation, packet I/O —
//! and drives the typed pipeline through [`program`], which maps P4Runtime
//! entities to `umbra.p4`'s tables by the *names* in the P4Info. The
//! [`dataplane`] moves frames between interfaces and the pipeline on
//! dedicated threads; it never blocks on the control plane.

#![deny(unsafe_code)]

pub mod arbitration;
pub mod codec;
pub mod dataplane;
pub mod error;
pub mod program;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use umbra_pipeline::Pipeline;
use umbra_proto::p4::v1::p4_runtime_server::P4RuntimeServer;

pub use error::{Result, SwitchError};
pub use service::P4RuntimeService;

/// What `umbra switch` runs: one P4Runtime device on a set of interfaces.
#[derive(Debug, Clone, Args)]
pub struct SwitchOptions {
    /// Address the P4Runtime gRPC server listens on.
    #[arg(long = "grpc", default_value = "127.0.0.1:9559")]
    pub grpc: SocketAddr,
    /// P4Runtime device id of this switch.
    #[arg(long, default_value_t = 1)]
    pub device_id: u64,
    /// A data port: `N=IFNAME` (repeatable); N is the P4 port number.
    #[arg(long = "port", value_parser = parse_port)]
    pub ports: Vec<(u16, String)>,
    /// Network namespace the `--port` interfaces live in (the gRPC server
    /// stays in the caller's namespace). Default: the caller's own.
    #[arg(long)]
    pub netns: Option<String>,
    /// The CPU port number (packet-in/packet-out); must match the program.
    #[arg(long, default_value_t = umbra_pipeline::CPU_PORT)]
    pub cpu_port: u16,
    /// Packet-ins queued for the controller before new ones are dropped
    /// (and counted).
    #[arg(long, default_value_t = 4096)]
    pub packet_in_queue: usize,
}

impl Default for SwitchOptions {
    fn default() -> Self {
        Self {
            grpc: SocketAddr::from(([127, 0, 0, 1], 9559)),
            device_id: 1,
            ports: Vec::new(),
            netns: None,
            cpu_port: umbra_pipeline::CPU_PORT,
            packet_in_queue: 4096,
        }
    }
}

impl SwitchOptions {
    /// Every problem with these options, none if they are usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.cpu_port != umbra_pipeline::CPU_PORT {
            problems.push(format!(
                "--cpu-port {} differs from the CPU_PORT {} that umbra.p4 is compiled with",
                self.cpu_port,
                umbra_pipeline::CPU_PORT
            ));
        }
        for (i, (port, name)) in self.ports.iter().enumerate() {
            if *port == self.cpu_port || *port >= umbra_pipeline::DROP_PORT {
                problems.push(format!(
                    "--port {port}={name}: port {port} is reserved (CPU port or drop port)"
                ));
            }
            if self.ports[..i].iter().any(|(p, _)| p == port) {
                problems.push(format!("--port {port}={name}: port {port} given twice"));
            }
            if self.ports[..i].iter().any(|(_, n)| n == name) {
                problems.push(format!(
                    "--port {port}={name}: interface {name} given twice"
                ));
            }
        }
        if self.packet_in_queue == 0 {
            problems.push("--packet-in-queue must be at least 1".into());
        }
        problems
    }
}

fn parse_port(text: &str) -> std::result::Result<(u16, String), String> {
    let (number, name) = text
        .split_once('=')
        .ok_or_else(|| format!("expected N=IFNAME, got {text:?}"))?;
    let number: u16 = number
        .parse()
        .map_err(|_| format!("port number {number:?} is not a number"))?;
    if name.is_empty() {
        return Err(format!("port {number} has an empty interface name"));
    }
    Ok((number, name.to_owned()))
}

/// Binds `options.grpc` and serves until `shutdown` is cancelled.
///
/// # Errors
/// Invalid options, an address that cannot be bound, or an interface that
/// cannot be opened.
pub async fn run(options: SwitchOptions, shutdown: CancellationToken) -> Result<()> {
    let problems = options.validate();
    if !problems.is_empty() {
        return Err(SwitchError::InvalidOptions(problems));
    }
    let listener = TcpListener::bind(options.grpc)
        .await
        .map_err(|source| SwitchError::Bind {
            addr: options.grpc,
            source,
        })?;
    serve(listener, options, shutdown).await
}

/// Serves P4Runtime on an already-bound listener (tests bind `127.0.0.1:0`)
/// until `shutdown` is cancelled. With no ports the switch runs without a
/// dataplane: everything but forwarding works.
///
/// # Errors
/// An interface that cannot be opened, or the gRPC server failing.
pub async fn serve(
    listener: TcpListener,
    options: SwitchOptions,
    shutdown: CancellationToken,
) -> Result<()> {
    let pipeline = Arc::new(Pipeline::new());
    let (packet_in_tx, packet_in_rx) = tokio::sync::mpsc::channel(options.packet_in_queue);
    let start = {
        let pipeline = Arc::clone(&pipeline);
        let (ports, cpu_port) = (options.ports.clone(), options.cpu_port);
        move || dataplane::Dataplane::start(pipeline, &ports, cpu_port, packet_in_tx)
    };
    let dataplane = match &options.netns {
        // Sockets belong to the namespace of the thread that opens them.
        Some(netns) => dataplane::veth_lab::VethLab::run_in(netns, start).map_err(|source| {
            SwitchError::Netns {
                netns: netns.clone(),
                source,
            }
        })?,
        None => start(),
    }
    .map_err(SwitchError::Dataplane)?;
    let dataplane = Arc::new(dataplane);

    let service = P4RuntimeService::new(
        options.device_id,
        Arc::clone(&pipeline),
        Arc::clone(&dataplane),
        shutdown.clone(),
    );
    let packet_in_task = tokio::spawn(service.clone().forward_packet_ins(packet_in_rx));

    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, device_id = options.device_id, ports = options.ports.len(), "P4Runtime switch serving");
    let result = tonic::transport::Server::builder()
        .add_service(
            P4RuntimeServer::new(service)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
        )
        .serve_with_incoming_shutdown(
            // Small request/response pairs: without TCP_NODELAY every Read
            // waits for a delayed ACK (~40 ms).
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.clone().cancelled_owned(),
        )
        .await;
    packet_in_task.abort();
    match Arc::try_unwrap(dataplane) {
        Ok(dataplane) => {
            let stats = dataplane.shutdown();
            tracing::info!(?stats, "dataplane stopped");
        }
        Err(dataplane) => tracing::info!(stats = ?dataplane.stats(), "dataplane stopping"),
    }
    result.map_err(SwitchError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_report_every_problem() {
        let options = SwitchOptions {
            ports: vec![
                (1, "a".into()),
                (1, "b".into()),
                (255, "c".into()),
                (2, "a".into()),
            ],
            cpu_port: 255,
            packet_in_queue: 0,
            ..SwitchOptions::default()
        };
        let problems = options.validate();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(parse_port("3=veth0").is_ok());
        assert!(parse_port("x=veth0").is_err());
        assert!(parse_port("3=").is_err());
        assert!(parse_port("3").is_err());
    }
}
