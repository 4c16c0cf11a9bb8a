//! What a URL names, without connecting: the SQL dialect its scheme picks, and the URL as
//! it may be shown (no secret). Below every other module: the runbook checks URLs with it
//! and the connections open them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?;
        match scheme {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            _ => None,
        }
    }
}

/// `scheme://user@host/db` with any password (and the query string, which may hold one)
/// removed, for people and logs. A URL that does not parse is not shown at all.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) if !raw.contains("://") => raw.split('?').next().unwrap_or("").to_string(),
        Err(e) => format!("(a URL that does not parse: {e})"),
    }
}

/// The file behind a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.into())
    }
}
