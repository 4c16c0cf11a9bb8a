//! An Odoo target's URL: which transport, where, which database, as whom.
//!
//! - `odoo+jsonrpc://LOGIN@HOST[:PORT]/DB`: Odoo 17/18, `/jsonrpc` (authenticate, then
//!   `execute_kw`); the login is required, the password or API key is the environment's.
//! - `odoo+json2://HOST[:PORT]/DB`: Odoo 19+, `/json/2/<model>/<method>` with a bearer API
//!   key and `X-Odoo-Database: DB`; a login may be given for messages, it is not sent.
//! - `odoo+jsonrpcs://…` and `odoo+json2s://…`: the same over HTTPS (like `https`).
//!
//! The port defaults to 8069 (HTTP) or 443 (HTTPS). A password in the URL is refused: the
//! secret comes only from the environment's `password_env` / `password_file`.

use std::fmt;

/// The two ways of talking to Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `/jsonrpc`: `common.authenticate`, then `object.execute_kw` (Odoo 17, 18).
    JsonRpc,
    /// `/json/2/<model>/<method>` with a bearer key (Odoo 19 and later).
    Json2,
}

/// A parsed Odoo URL, without any secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub transport: Transport,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub db: String,
    /// The user the key belongs to (required for JSON-RPC).
    pub login: Option<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Endpoint {
    /// The URL as people should see it: never a secret (there is none to show).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.transport, self.tls) {
            (Transport::JsonRpc, false) => "odoo+jsonrpc",
            (Transport::JsonRpc, true) => "odoo+jsonrpcs",
            (Transport::Json2, false) => "odoo+json2",
            (Transport::Json2, true) => "odoo+json2s",
        };
        write!(f, "{scheme}://")?;
        if let Some(l) = &self.login {
            write!(f, "{l}@")?;
        }
        write!(f, "{}:{}/{}", self.host, self.port, self.db)
    }
}

impl Endpoint {
    /// True for the URL schemes this module opens.
    pub fn is_odoo_url(url: &str) -> bool {
        url.starts_with("odoo+")
    }

    pub fn parse(raw: &str) -> anyhow::Result<Endpoint> {
        // `url` would print the whole URL (a password included) in its own errors: name it
        // ourselves, without the userinfo part.
        let shown = redact_userinfo(raw);
        let url =
            url::Url::parse(raw).map_err(|e| anyhow::anyhow!("invalid Odoo URL {shown}: {e}"))?;
        let (transport, tls) = match url.scheme() {
            "odoo+jsonrpc" => (Transport::JsonRpc, false),
            "odoo+jsonrpcs" => (Transport::JsonRpc, true),
            "odoo+json2" => (Transport::Json2, false),
            "odoo+json2s" => (Transport::Json2, true),
            other => anyhow::bail!(
                "unknown Odoo URL scheme {other}:// in {shown}: use odoo+jsonrpc:// (Odoo 17/18), odoo+json2:// (Odoo 19+), or odoo+jsonrpcs:// / odoo+json2s:// for HTTPS"
            ),
        };
        if url.password().is_some() {
            anyhow::bail!(
                "{shown}: a password or API key in the URL is refused; set password_env = \"ODOO_API_KEY\" (or password_file) on the environment instead"
            );
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow::anyhow!("{shown}: the URL names no host"))?
            .to_string();
        let port = url.port().unwrap_or(if tls { 443 } else { 8069 });
        let db = url.path().trim_matches('/').to_string();
        if db.is_empty() || db.contains('/') {
            anyhow::bail!(
                "{shown}: the URL's path must be the database name, e.g. {}://HOST:8069/DB",
                url.scheme()
            );
        }
        let login = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        if transport == Transport::JsonRpc && login.is_none() {
            anyhow::bail!(
                "{shown}: JSON-RPC needs the user the key belongs to: odoo+jsonrpc://LOGIN@{host}:{port}/{db}"
            );
        }
        if url.query().is_some() {
            anyhow::bail!(
                "{shown}: an Odoo URL takes no query parameters (use the odoo+jsonrpcs / odoo+json2s schemes for HTTPS)"
            );
        }
        Ok(Endpoint {
            transport,
            tls,
            host,
            port,
            db: percent_decode(&db),
            login,
        })
    }

    /// `http(s)://HOST:PORT`, the base every request path is joined to.
    pub fn base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// How messages name the account: `LOGIN at HOST` (or just `HOST`).
    pub fn who(&self) -> String {
        match &self.login {
            Some(l) => format!("{l} at {}", self.host),
            None => format!("the key's user at {}", self.host),
        }
    }
}

fn percent_decode(s: &str) -> String {
    // Logins are often e-mail addresses: `admin%40example.com@host`.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with anything between `://` and `@` replaced, for messages about a bad URL.
fn redact_userinfo(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &raw[s + 3..at];
            let user = user.split(':').next().unwrap_or("");
            let hidden = if raw[s + 3..at].contains(':') {
                ":[REDACTED]"
            } else {
                ""
            };
            format!("{}{user}{hidden}{}", &raw[..s + 3], &raw[at..])
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme_with_its_defaults() {
        let cases = [
            (
                "odoo+jsonrpc://admin@odoo.local/prod",
                Transport::JsonRpc,
                false,
                8069,
                Some("admin"),
            ),
            (
                "odoo+jsonrpcs://admin%40corp.example@odoo.local/prod",
                Transport::JsonRpc,
                true,
                443,
                Some("admin@corp.example"),
            ),
            (
                "odoo+json2://odoo.local:8070/prod",
                Transport::Json2,
                false,
                8070,
                None,
            ),
            (
                "odoo+json2s://loader@odoo.local/prod",
                Transport::Json2,
                true,
                443,
                Some("loader"),
            ),
        ];
        for (url, transport, tls, port, login) in cases {
            let e = Endpoint::parse(url).unwrap();
            assert_eq!(
                (e.transport, e.tls, e.port, e.login.as_deref()),
                (transport, tls, port, login),
                "{url}"
            );
            assert_eq!(e.db, "prod");
            assert_eq!(e.host, "odoo.local");
        }
        let e = Endpoint::parse("odoo+json2s://odoo.local/prod").unwrap();
        assert_eq!(e.base(), "https://odoo.local:443");
    }

    #[test]
    fn refuses_a_secret_in_the_url_without_repeating_it() {
        for url in [
            "odoo+jsonrpc://admin:s3cr3t-key@h:8069/db",
            "odoo+json2://:s3cr3t-key@h/db",
        ] {
            let err = Endpoint::parse(url).unwrap_err().to_string();
            assert!(err.contains("password_env"), "{err}");
            assert!(!err.contains("s3cr3t-key"), "{err}");
        }
        let err = Endpoint::parse("odoo+ftp://admin:s3cr3t-key@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t-key"), "{err}");
    }

    #[test]
    fn refuses_incomplete_urls() {
        for (url, why) in [
            ("odoo+jsonrpc://h:8069/db", "LOGIN@"),
            ("odoo+json2://h:8069/", "database name"),
            ("odoo+json2://h:8069/a/b", "database name"),
            ("odoo+xmlrpc://h/db", "unknown Odoo URL scheme"),
            ("odoo+json2://h/db?tls=true", "no query"),
        ] {
            let err = Endpoint::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
