//! A small SMTP client for login codes: one message per connection, plain for a
//! local relay, STARTTLS or implicit TLS (rustls, as everywhere else), `AUTH PLAIN`
//! only over TLS (or to a relay on loopback). Blocking: the delivery worker runs it
//! on the blocking pool, with timeouts on every read and write.
//!
//! Configured by a URL in the common form: `smtp://host[:port]` (plain, port 25),
//! `smtp://host[:port]?tls=required` (STARTTLS, port 587), `smtps://host[:port]`
//! (implicit TLS, port 465); credentials as `user:password@` in it, or the password
//! from `STRONGBOX_SMTP_PASSWORD`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use strongbox_core::Secret;

/// Time for the connection and for each read or write.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole message, from the connection to the server's acceptance: a
/// server that trickles bytes cannot hold a delivery thread longer.
const DEADLINE: Duration = Duration::from_secs(30);
/// Longest reply line accepted from a server.
const MAX_LINE: usize = 4096;
/// Most lines of one reply (an EHLO answer has a dozen).
const MAX_REPLY_LINES: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// No TLS (a relay on the same machine or network).
    Plain,
    /// `STARTTLS` is required: a server that does not offer it is not used.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
}

/// Where and how login codes are mailed.
pub struct Smtp {
    host: String,
    port: u16,
    security: Security,
    user: Option<String>,
    password: Option<Secret>,
    /// The `From:` header as configured (`Vault <vault@example.com>` or a bare address).
    from: String,
    /// The envelope sender: the address inside `from`.
    sender: String,
    tls: Arc<rustls::ClientConfig>,
}

/// `%XX` escapes of a URL's user-info part, decoded.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("smtp_url: a bad %-escape in its user or password")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "smtp_url: its user or password is not UTF-8".to_string())
}

/// Whether `s` can go into a header or a command line as it is.
fn one_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// The address inside `Name <address>`, or the whole value.
fn address_of(from: &str) -> &str {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.trim(),
    }
}

impl Smtp {
    /// Reads the settings; every mistake is refused here, at start.
    pub fn new(
        url: &str,
        password: Option<Secret>,
        from: &str,
        roots: Vec<CertificateDer<'static>>,
    ) -> Result<Smtp, String> {
        // Errors never repeat the URL: it may hold a password.
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("smtp_url must look like smtp://host:port or smtps://host:port")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let mut security = match scheme {
            "smtp" => Security::Plain,
            "smtps" => Security::Tls,
            _ => return Err("smtp_url must start with smtp:// or smtps://".into()),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair {
                "tls=required" if security == Security::Plain => security = Security::StartTls,
                _ => {
                    return Err(
                        "smtp_url: the only option is ?tls=required (STARTTLS, on smtp://)".into(),
                    );
                }
            }
        }
        let bad_port = || "smtp_url: bad port".to_string();
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("smtp_url: bad IPv6 address")?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(bad_port)?,
                ),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad_port())?)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || !one_line(host) || host.contains(['/', '[', ']', ' ']) {
            return Err("smtp_url: no host".into());
        }
        if security != Security::Plain && ServerName::try_from(host.to_string()).is_err() {
            return Err("smtp_url: the host is not a name TLS can check".into());
        }
        let port = port.unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        });
        let (user, url_password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)?), Some(percent_decode(p)?)),
                None => (Some(percent_decode(u)?), None),
            },
        };
        let password = password.or(url_password.map(Secret::new));
        if user.is_some() != password.is_some() {
            return Err(
                "smtp_url: a user needs a password (in the URL or STRONGBOX_SMTP_PASSWORD), and a password a user"
                    .into(),
            );
        }
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        if user.is_some() && security == Security::Plain && !loopback {
            return Err(
                "smtp_url: credentials would cross the network unencrypted: use ?tls=required (STARTTLS) or smtps://"
                    .into(),
            );
        }
        let sender = address_of(from).to_string();
        if !one_line(from) || !sender.contains('@') || sender.contains(['<', '>', ' ']) {
            return Err("smtp_from must be an address, or `Name <address>`".into());
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in roots {
            store
                .add(cert)
                .map_err(|e| format!("a trusted certificate for SMTP is unusable: {e}"))?;
        }
        if security != Security::Plain && store.is_empty() {
            return Err(
                "SMTP over TLS needs trusted certificates: none in smtp_ca or the system bundle"
                    .into(),
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Smtp {
            host: host.to_string(),
            port,
            security,
            user,
            password,
            from: from.to_string(),
            sender,
            tls: Arc::new(tls),
        })
    }

    /// Sends one plain-text message to `to`. The error says what failed (the step and
    /// the server's reply code), never the address or the text.
    pub fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), String> {
        if !one_line(to) || to.contains(['<', '>']) || !to.contains('@') {
            return Err("not a mail address".into());
        }
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|_| "the mail server's name does not resolve".to_string())?
            .collect();
        let tcp = addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, TIMEOUT).ok())
            .ok_or("the mail server could not be reached")?;
        tcp.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        tcp.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        let helo = match tcp.local_addr().map_err(io)?.ip() {
            IpAddr::V4(a) => format!("[{a}]"),
            IpAddr::V6(a) => format!("[IPv6:{a}]"),
        };
        let mut s = Session {
            conn: Conn::Plain(tcp),
            buf: Vec::new(),
            deadline: std::time::Instant::now() + DEADLINE,
        };
        if self.security == Security::Tls {
            s.start_tls(self)?;
        }
        s.expect("greeting", 220)?;
        let mut features = s.ehlo(&helo)?;
        if self.security == Security::StartTls {
            if !features.iter().any(|f| f.eq_ignore_ascii_case("STARTTLS")) {
                return Err("the mail server does not offer STARTTLS".into());
            }
            s.command("STARTTLS", "STARTTLS", 220)?;
            // Bytes the server sent before the handshake would be read as if they
            // came over TLS (the STARTTLS injection attacks): refuse them.
            if !s.buf.is_empty() {
                return Err("the mail server sent data before the TLS handshake".into());
            }
            s.start_tls(self)?;
            features = s.ehlo(&helo)?;
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            let offers_plain = features.iter().any(|f| {
                let mut words = f.split_ascii_whitespace();
                words.next().is_some_and(|w| w.eq_ignore_ascii_case("AUTH"))
                    && words.any(|m| m.eq_ignore_ascii_case("PLAIN"))
            });
            if !offers_plain {
                return Err("the mail server does not offer AUTH PLAIN".into());
            }
            let mut token = zeroize::Zeroizing::new(Vec::new());
            token.push(0);
            token.extend_from_slice(user.as_bytes());
            token.push(0);
            token.extend_from_slice(password.expose().as_bytes());
            let line = zeroize::Zeroizing::new(format!("AUTH PLAIN {}", base64(&token)));
            s.command("AUTH", &line, 235)?;
        }
        // The display name is encoded (RFC 2047) when it is not ASCII; addresses are
        // sent as they are, which needs SMTPUTF8 when they are not ASCII.
        let utf8 = !to.is_ascii() || !self.sender.is_ascii();
        if utf8 && !features.iter().any(|f| f.eq_ignore_ascii_case("SMTPUTF8")) {
            return Err("the address is not ASCII and the mail server lacks SMTPUTF8".into());
        }
        let smtputf8 = if utf8 { " SMTPUTF8" } else { "" };
        s.command(
            "MAIL FROM",
            &format!("MAIL FROM:<{}>{smtputf8}", self.sender),
            250,
        )?;
        s.command_any("RCPT TO", &format!("RCPT TO:<{to}>"), &[250, 251])?;
        s.command("DATA", "DATA", 354)?;
        let message = self.message(to, subject, text);
        s.write(message.as_bytes())?;
        s.expect("the message", 250)?;
        // The message is accepted; a failed goodbye changes nothing.
        let _ = s.write(b"QUIT\r\n");
        Ok(())
    }

    /// The message, dot-stuffed and ended with `.` (RFC 5321 §4.5.2).
    fn message(&self, to: &str, subject: &str, text: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let id = strongbox_crypto::new_event_token();
        let domain = self.sender.rsplit('@').next().unwrap_or("localhost");
        let mut m = format!(
            "From: {}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{id}@{domain}>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n",
            from_header(&self.from, &self.sender),
            rfc5322_date(now),
        );
        for line in text.lines() {
            if line.starts_with('.') {
                m.push('.');
            }
            m.push_str(line);
            m.push_str("\r\n");
        }
        m.push_str(".\r\n");
        m
    }
}

/// The `From:` header for `from` (`Name <address>` or an address): the name quoted,
/// or encoded as an RFC 2047 word when it is not ASCII.
fn from_header(from: &str, sender: &str) -> String {
    let name = match from.rfind('<') {
        Some(at) => from[..at].trim().trim_matches('"').trim(),
        None => "",
    };
    if name.is_empty() {
        format!("<{sender}>")
    } else if name.is_ascii() {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" <{sender}>")
    } else {
        format!("=?utf-8?B?{}?= <{sender}>", base64(name.as_bytes()))
    }
}

fn io(e: std::io::Error) -> String {
    format!("mail server connection: {}", e.kind())
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// Between the two, while the handshake is set up.
    Gone,
}

struct Session {
    conn: Conn,
    /// Bytes read and not yet used.
    buf: Vec<u8>,
    /// When the whole exchange must be over.
    deadline: std::time::Instant,
}

impl Session {
    /// Bounds the next read or write by what is left of the deadline.
    fn time_left(&mut self) -> Result<(), String> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err("the mail server took too long".into());
        }
        let left = Some(left.min(TIMEOUT));
        let tcp = match &self.conn {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
            Conn::Gone => return Err("no connection".into()),
        };
        tcp.set_read_timeout(left).map_err(io)?;
        tcp.set_write_timeout(left).map_err(io)
    }

    fn start_tls(&mut self, smtp: &Smtp) -> Result<(), String> {
        self.time_left()?;
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err("TLS started twice".into());
        };
        let name = ServerName::try_from(smtp.host.clone())
            .map_err(|_| "the mail server's name is not a valid TLS name".to_string())?;
        let conn = rustls::ClientConnection::new(smtp.tls.clone(), name)
            .map_err(|e| format!("TLS to the mail server: {e}"))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake now, so a bad certificate is reported as such.
        while stream.conn.is_handshaking() {
            if std::time::Instant::now() >= self.deadline {
                return Err("the mail server took too long".into());
            }
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS to the mail server failed: {e}"))?;
        }
        self.conn = Conn::Tls(Box::new(stream));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.time_left()?;
        let w: &mut dyn Write = match &mut self.conn {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
            Conn::Gone => return Err("no connection".into()),
        };
        w.write_all(bytes).and_then(|()| w.flush()).map_err(io)
    }

    fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err("the mail server sent an overlong line".into());
            }
            self.time_left()?;
            let mut chunk = [0u8; 1024];
            let r: &mut dyn Read = match &mut self.conn {
                Conn::Plain(s) => s,
                Conn::Tls(s) => s.as_mut(),
                Conn::Gone => return Err("no connection".into()),
            };
            let n = r.read(&mut chunk).map_err(io)?;
            if n == 0 {
                return Err("the mail server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A whole reply: its code and the text of each line.
    fn reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or("the mail server's reply is not SMTP")?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Ok((code, lines));
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err("the mail server's reply is too long".into());
            }
        }
    }

    fn expect(&mut self, step: &str, want: u16) -> Result<Vec<String>, String> {
        self.expect_any(step, &[want])
    }

    fn expect_any(&mut self, step: &str, want: &[u16]) -> Result<Vec<String>, String> {
        let (code, lines) = self.reply()?;
        if want.contains(&code) {
            Ok(lines)
        } else {
            Err(format!("the mail server answered {code} to {step}"))
        }
    }

    fn command(&mut self, step: &str, line: &str, want: u16) -> Result<Vec<String>, String> {
        self.command_any(step, line, &[want])
    }

    fn command_any(&mut self, step: &str, line: &str, want: &[u16]) -> Result<Vec<String>, String> {
        // Built in a buffer that is wiped: the AUTH line holds the password.
        let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(line.len() + 2));
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes)?;
        self.expect_any(step, want)
    }

    /// `EHLO`: the extensions the server offers (the lines after its greeting).
    fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, String> {
        let lines = self.command("EHLO", &format!("EHLO {helo}"), 250)?;
        Ok(lines.into_iter().skip(1).collect())
    }
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Fri, 04 Dec 2026 10:00:00 +0000` for a Unix time.
fn rfc5322_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, h, m, s) = strongbox_core::expiry::civil(secs);
    format!(
        "{}, {day:02} {} {year} {h:02}:{m:02}:{s:02} +0000",
        DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize],
        MONTHS[(month - 1).clamp(0, 11) as usize],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_342_400 + 3661),
            "Fri, 04 Dec 2026 01:01:01 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    fn url(u: &str) -> Result<Smtp, String> {
        Smtp::new(u, None, "Vault <vault@example.com>", Vec::new())
    }

    #[test]
    fn urls() {
        let s = url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((s.port, s.security), (2525, Security::Plain));
        assert_eq!(s.sender, "vault@example.com");
        assert_eq!(url("smtp://relay").unwrap().port, 25);
        let s = url("smtp://u:p%40ss@localhost:2525").unwrap();
        assert_eq!(s.user.as_deref(), Some("u"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("p@ss"));
        // Credentials in the clear beyond loopback are refused.
        assert!(url("smtp://u:p@mail.example.com").is_err());
        // TLS with no trusted certificate at all is refused at start.
        assert!(url("smtps://mail.example.com").is_err());
        assert!(url("smtp://mail.example.com?tls=required").is_err());
        for bad in [
            "http://x",
            "smtp://",
            "smtp://x:notaport",
            "smtp://x?tls=maybe",
            "smtps://x?tls=required",
            "smtp://u@localhost",
            "mail.example.com",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
        assert!(Smtp::new("smtp://relay", None, "no address", Vec::new()).is_err());
        assert!(Smtp::new("smtp://relay", None, "a@b\r\nBcc: x@y", Vec::new()).is_err());
    }

    #[test]
    fn from_headers() {
        assert_eq!(from_header("a@b.c", "a@b.c"), "<a@b.c>");
        assert_eq!(
            from_header("Acme, Inc <a@b.c>", "a@b.c"),
            "\"Acme, Inc\" <a@b.c>"
        );
        assert_eq!(
            from_header("Zoë <a@b.c>", "a@b.c"),
            "=?utf-8?B?Wm/Dqw==?= <a@b.c>"
        );
    }

    #[test]
    fn ipv6_hosts() {
        let s = url("smtp://[::1]").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 25));
        assert_eq!(url("smtp://[::1]:2525").unwrap().port, 2525);
        assert!(url("smtp://[::1").is_err());
        assert!(url("smtp://[::1]x").is_err());
    }

    #[test]
    fn errors_do_not_repeat_the_url() {
        let e = url("smtp://user:hunter2@mail.example.com:2525")
            .err()
            .unwrap();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
