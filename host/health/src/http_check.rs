//! A minimal HTTP/1.1 `GET` for health checks: connect (TLS for
//! `https://`), send the request, read the status line. The body is not
//! read: the status and the time to the response head are what a health
//! check reports.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// Longest response head line read before giving up on the server.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// The system's CA bundle on Debian.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Where a URL points.
#[derive(Debug)]
pub(crate) struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("bad url {url:?}: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("url {url:?} is not http:// or https://")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("url {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            tls,
            host,
            port,
            path,
        })
    }
}

/// `GET url`; the status code of the answer.
pub(crate) async fn get(url: &str, ca_file: Option<&Path>) -> Result<u16, String> {
    let target = Target::parse(url)?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect {}:{}: {e}", target.host, target.port))?;
    let _ = tcp.set_nodelay(true);
    if target.tls {
        let connector = tls_connector(ca_file)?;
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| format!("bad TLS server name {:?}: {e}", target.host))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", target.host))?;
        exchange(stream, &target).await
    } else {
        exchange(tcp, &target).await
    }
}

fn tls_connector(ca_file: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_CAS));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CAs from {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad CA in {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad CA in {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no CA certificate in {}", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Sends the request and parses the status line.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    target: &Target,
) -> Result<u16, String> {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: umbra-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.port
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send request: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&head[..end]);
        }
        if head.len() > MAX_STATUS_LINE {
            return Err(format!(
                "no status line in the first {MAX_STATUS_LINE} bytes"
            ));
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read response: {e}"))?;
        if n == 0 {
            return Err(if head.is_empty() {
                "connection closed without a response".to_owned()
            } else {
                "connection closed in the status line".to_owned()
            });
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// `HTTP/1.x NNN reason` → NNN.
fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {:?}", cut(&text)));
    }
    match code.parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(format!("bad status line: {:?}", cut(&text))),
    }
}

fn cut(text: &str) -> &str {
    match text.char_indices().nth(80) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        let t = Target::parse("http://198.18.0.1/healthz?x=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "198.18.0.1", 80, "/healthz?x=1")
        );
        let t = Target::parse("https://localhost:8443").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 8443, "/"));
        let t = Target::parse("http://[::1]:81/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 81));
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable"),
            Ok(503)
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 200"), Ok(200));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line(b"HTTP/1.1 999 nope").is_err());
        assert!(parse_status_line(b"HTTP/1.1 abc").is_err());
    }
}
