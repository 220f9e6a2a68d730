//! Login codes by SMS through an HTTP gateway, configured as in Databunker: a URL
//! and (for POST) a body template in which `_PHONE_`, `_MSG_`, `_FROM_` and `_TOKEN_`
//! are replaced, a method, optional basic auth and one custom header. Values are
//! URL-escaped in the URL and in form bodies, and JSON-escaped in JSON bodies
//! (Databunker put them in JSON raw; escaping changes nothing for real values and
//! keeps a template's JSON well-formed whatever they hold).

use strongbox_core::Secret;
use ureq::http;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// The gateway and how to talk to it.
pub struct Sms {
    url: String,
    method: Method,
    /// The POST body template; JSON when `json`, else a form.
    body: String,
    json: bool,
    from: String,
    token: Option<Secret>,
    /// `user:password`.
    basic_auth: Option<Secret>,
    header: Option<(http::HeaderName, http::HeaderValue)>,
    agent: ureq::Agent,
}

/// The settings of the gateway, as given.
pub struct SmsSettings {
    pub url: String,
    pub method: Option<String>,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub from: Option<String>,
    pub token: Option<Secret>,
    pub basic_auth: Option<Secret>,
    pub header: Option<String>,
}

fn url_escaped(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn json_escaped(v: &str) -> String {
    let quoted = serde_json::Value::from(v).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

impl Sms {
    /// Reads the settings; every mistake is refused here, at start.
    pub fn new(s: SmsSettings, agent: ureq::Agent) -> Result<Sms, String> {
        // The URL is checked with its placeholders filled, as it will be sent.
        crate::webhooks::check_url(
            &s.url
                .replace("_PHONE_", "1")
                .replace("_FROM_", "1")
                .replace("_TOKEN_", "1")
                .replace("_MSG_", "1"),
        )
        .map_err(|_| "sms_url must be an http:// or https:// URL".to_string())?;
        let method = match s.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("" | "GET") => Method::Get,
            Some("POST") => Method::Post,
            Some(_) => return Err("sms_method must be GET or POST".into()),
        };
        let body = s.body.unwrap_or_default();
        if method == Method::Post && body.trim().is_empty() {
            return Err(
                "sms_method POST needs sms_body (a template with _PHONE_ and _MSG_)".into(),
            );
        }
        let json = match s.content_type.as_deref().unwrap_or("form") {
            "json" | "application/json" => true,
            "form" | "application/x-www-form-urlencoded" => false,
            _ => return Err("sms_content_type must be json or form".into()),
        };
        if json && method == Method::Post {
            // Filled with text that is JSON only inside a string, so a placeholder
            // outside quotes (which a phone number like +44… would break) is caught.
            let filled = ["_PHONE_", "_FROM_", "_TOKEN_", "_MSG_"]
                .iter()
                .fold(body.clone(), |b, p| b.replace(p, "a \\\" b"));
            serde_json::from_str::<serde_json::Value>(&filled).map_err(|_| {
                "sms_body is not JSON with its placeholders inside strings".to_string()
            })?;
        }
        if s.basic_auth
            .as_ref()
            .is_some_and(|a| !a.expose().contains(':'))
        {
            return Err("STRONGBOX_SMS_BASIC_AUTH must be user:password".into());
        }
        let header = match s.header.as_deref().filter(|h| !h.trim().is_empty()) {
            None => None,
            Some(h) => {
                let (name, value) = h
                    .split_once(':')
                    .ok_or("sms_header must be `Name: value`")?;
                Some((
                    http::HeaderName::try_from(name.trim())
                        .map_err(|_| "sms_header: bad header name".to_string())?,
                    http::HeaderValue::try_from(value.trim())
                        .map_err(|_| "sms_header: bad header value".to_string())?,
                ))
            }
        };
        Ok(Sms {
            url: s.url,
            method,
            body,
            json,
            from: s.from.unwrap_or_default(),
            token: s.token,
            basic_auth: s.basic_auth,
            header,
            agent,
        })
    }

    /// `template` with each placeholder replaced by its escaped value, in one pass
    /// (a value that holds a placeholder's name is not replaced again).
    fn fill(&self, template: &str, phone: &str, msg: &str, escape: fn(&str) -> String) -> String {
        let token = self.token.as_ref().map_or("", Secret::expose);
        let values = [
            ("_PHONE_", phone),
            ("_FROM_", self.from.as_str()),
            ("_TOKEN_", token),
            ("_MSG_", msg),
        ];
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some((at, name, value)) = values
            .iter()
            .filter_map(|(name, value)| rest.find(name).map(|at| (at, *name, *value)))
            .min_by_key(|(at, _, _)| *at)
        {
            out.push_str(&rest[..at]);
            out.push_str(&escape(value));
            rest = &rest[at + name.len()..];
        }
        out.push_str(rest);
        out
    }

    /// Sends `msg` to `phone`. The error says what failed, never the URL (it may
    /// hold the token), the number or the message.
    pub fn send(&self, phone: &str, msg: &str) -> Result<(), String> {
        let url = self.fill(&self.url, phone, msg, url_escaped);
        let mut req = http::Request::builder()
            .uri(url)
            .header("User-Agent", "strongbox-sms");
        if let Some(auth) = &self.basic_auth {
            let value = format!("Basic {}", crate::smtp::base64(auth.expose().as_bytes()));
            req = req.header("Authorization", value);
        }
        if let Some((name, value)) = &self.header {
            req = req.header(name, value);
        }
        let req = match self.method {
            Method::Get => req.method("GET").body(Vec::new()),
            Method::Post => {
                let (body, ctype) = if self.json {
                    (
                        self.fill(&self.body, phone, msg, json_escaped),
                        "application/json",
                    )
                } else {
                    (
                        self.fill(&self.body, phone, msg, url_escaped),
                        "application/x-www-form-urlencoded",
                    )
                };
                req.method("POST")
                    .header("Content-Type", ctype)
                    .body(body.into_bytes())
            }
        }
        .map_err(|_| "the SMS request could not be built".to_string())?;
        let resp = self.agent.run(req).map_err(|e| match e {
            ureq::Error::Timeout(_) => "the SMS gateway did not answer in time".to_string(),
            _ => "the SMS gateway could not be reached".to_string(),
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the SMS gateway answered {}",
                resp.status().as_u16()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> SmsSettings {
        SmsSettings {
            url: url.into(),
            method: None,
            body: None,
            content_type: None,
            from: Some("Vault".into()),
            token: Some(Secret::new("t&k")),
            basic_auth: None,
            header: None,
        }
    }

    #[test]
    fn templates_are_filled_and_escaped() {
        let agent = ureq::Agent::new_with_defaults();
        let sms = Sms::new(settings("http://gw/send?to=_PHONE_&t=_TOKEN_"), agent).unwrap();
        assert_eq!(
            sms.fill(&sms.url, "+447911123456", "code 1", url_escaped),
            "http://gw/send?to=%2B447911123456&t=t%26k"
        );
        assert_eq!(
            sms.fill(
                r#"{"to":"_PHONE_","m":"_MSG_"}"#,
                "+1",
                "a\"b",
                json_escaped
            ),
            r#"{"to":"+1","m":"a\"b"}"#
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let agent = ureq::Agent::new_with_defaults();
        let bad = |f: fn(&mut SmsSettings)| {
            let mut s = settings("http://gw/send");
            f(&mut s);
            Sms::new(s, agent.clone()).is_err()
        };
        assert!(bad(|s| s.url = "ftp://gw/_PHONE_".into()));
        assert!(bad(|s| s.method = Some("PUT".into())));
        assert!(bad(|s| s.method = Some("POST".into())));
        assert!(bad(|s| {
            s.method = Some("POST".into());
            s.content_type = Some("json".into());
            s.body = Some("{to: _PHONE_".into());
        }));
        assert!(bad(|s| s.content_type = Some("xml".into())));
        assert!(bad(|s| {
            s.method = Some("POST".into());
            s.content_type = Some("json".into());
            s.body = Some(r#"{"to":_PHONE_,"body":"_MSG_"}"#.into());
        }));
        assert!(bad(|s| s.basic_auth = Some(Secret::new("nocolon"))));
        assert!(bad(|s| s.header = Some("no colon".into())));
        assert!(!bad(|s| {
            s.method = Some("post".into());
            s.content_type = Some("json".into());
            s.body = Some(r#"{"to":"_PHONE_","body":"_MSG_"}"#.into());
            s.header = Some("X-Api-Key: abc".into());
        }));
    }
}
