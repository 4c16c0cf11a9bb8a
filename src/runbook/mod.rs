//! Runbook: parse the TOML file, expand `${vars}`, lint every reference, and hand back a
//! validated [`Plan`]. Every problem is a [`Diagnostic`] naming file, line, column and key.

pub mod format;
pub mod lint;
mod locate;
pub mod odoo;

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

pub use format::Runbook;

/// One problem in a runbook, pointing at the key that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `entities.open_invoices.validate[3].entity`.
    pub key: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: the problem is the file itself (missing, unreadable), not a place in it.
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.key,
                self.message
            )?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// What to do with a password found in a runbook.
const SECRET_HINT: &str = "secrets never go in a runbook: remove the password from the URL and set password_env = \"VAR\" (an environment variable) or password_file = \"PATH\" on the environment; for PostgreSQL, PGPASSWORD or ~/.pgpass also work";

/// A database the runbook names, with its secret resolved from the environment (never the file).
#[derive(Clone)]
pub struct ResolvedEnv {
    pub name: String,
    pub url: String,
    pub password: Option<String>,
    pub production: bool,
    pub reset: bool,
    /// The application's database users/roles: frozen out of the legacy system, kept off
    /// production for the cutover.
    pub app_users: Vec<String>,
}

impl fmt::Debug for ResolvedEnv {
    // Hand-written so that a password can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedEnv")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("production", &self.production)
            .finish()
    }
}

/// A runbook that passed every check, with variables expanded and paths made absolute.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub sha256: String,
    pub rb: Runbook,
    pub vars: IndexMap<String, String>,
    pub envs: IndexMap<String, ResolvedEnv>,
    /// Entities in load order (dependencies first).
    pub order: Vec<String>,
    /// Each entity's direct dependencies: entities that must be loaded before it starts.
    pub deps: lint::EntityDeps,
    pub extract_dir: PathBuf,
    pub backup_dir: PathBuf,
}

impl Plan {
    /// The step ids in runbook order, comma-separated: for "no such step" messages.
    pub fn step_ids(&self) -> String {
        self.rb
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn env(&self, name: &str) -> Option<&ResolvedEnv> {
        self.envs.get(name).filter(|e| !e.url.is_empty())
    }

    /// An Odoo environment's read-only SQL URL of its database, variables expanded; `None`
    /// for an API-only Odoo or a SQL environment.
    pub fn odoo_sql_url(&self, env: &str) -> Option<String> {
        let raw = self.rb.environments.get(env)?.sql_url.as_deref()?;
        expand_vars(raw, &self.vars)
            .ok()
            .filter(|u| !u.trim().is_empty())
    }

    /// How environment `env` is reached: SQL, Odoo with SQL read-back, or Odoo's API alone.
    pub fn reach(&self, env: &str) -> Option<odoo::Reach> {
        self.env(env).map(|e| odoo::reach(&self.rb, &self.vars, e))
    }
}

/// Load, expand and lint a runbook. `overrides` are `--var NAME=VALUE` pairs, relative to `cwd`.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Plan, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "check the path (relative paths start where you run cutover); runbooks/tms.toml is the reference runbook"
            }
            std::io::ErrorKind::IsADirectory => "give the runbook's .toml file, not its folder",
            std::io::ErrorKind::PermissionDenied => "make the file readable for this user",
            _ => "check the path and that the file can be read",
        };
        vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: "(file)".into(),
            message: format!("cannot read runbook: {e}"),
            hint: hint.into(),
        }]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = String::from_utf8_lossy(&bytes[..at]);
        let (line, column) = locate::line_col(&before, before.len());
        vec![Diagnostic {
            file: path.to_path_buf(),
            line,
            column,
            key: locate::path_guess(&before, before.len()).unwrap_or_else(|| "(document)".into()),
            message: format!("the runbook is not UTF-8 (byte 0x{:02X})", bytes[at]),
            hint: "save the runbook as UTF-8 (it was probably written as Latin-1 or Windows-1252)"
                .into(),
        }]
    })?;
    load_str(path, &text, overrides)
}

pub fn load_str(
    path: &Path,
    text: &str,
    overrides: &[(String, String)],
) -> Result<Plan, Vec<Diagnostic>> {
    let mut rb: Runbook = toml::from_str(text).map_err(|e| vec![parse_error(path, text, &e)])?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let ctx = lint::Ctx { file: path, text };
    let mut diags = Vec::new();
    // Derived and Odoo entities take their implicit keys before anything reads them.
    odoo::shape(&ctx, &mut rb, &mut diags);
    if !diags.is_empty() {
        return Err(diags);
    }

    // Variables: file defaults are relative to the runbook, overrides to the caller's cwd.
    let mut vars = IndexMap::new();
    for (k, v) in &rb.vars {
        vars.insert(k.clone(), absolutize(k, v, &dir));
    }
    for (k, v) in overrides {
        if !rb.vars.contains_key(k) {
            diags.push(ctx.diag(
                "vars",
                format!("--var {k}: the runbook declares no variable '{k}'"),
                format!(
                    "declared variables: {}",
                    rb.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        if url_has_password(v) {
            diags.push(ctx.diag(
                &format!("vars.{k}"),
                format!("--var {k}: the URL carries a password, and argv is visible to every user of this machine"),
                "drop the password from the URL and set it with password_env / password_file, PGPASSWORD or ~/.pgpass".into(),
            ));
        }
        vars.insert(k.clone(), absolutize(k, v, &cwd));
    }
    for (k, v) in &rb.vars {
        if url_has_password(v) {
            diags.push(ctx.diag(
                &format!("vars.{k}"),
                "a password is written into the runbook".into(),
                SECRET_HINT.into(),
            ));
        }
    }

    let expand = |key: &str, s: &str, diags: &mut Vec<Diagnostic>| -> String {
        match expand_vars(s, &vars) {
            Ok(v) => v,
            Err(name) => {
                diags.push(ctx.diag(
                    key,
                    format!("unknown variable ${{{name}}}"),
                    format!(
                        "declare it under [vars]; known: {}",
                        vars.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
                String::new()
            }
        }
    };

    let mut envs = IndexMap::new();
    for (name, e) in &rb.environments {
        let key = format!("environments.{name}.url");
        if url_has_password(&e.url) {
            diags.push(ctx.diag(
                &key,
                "a password is written into the runbook".into(),
                SECRET_HINT.into(),
            ));
        }
        let url = expand(&key, &e.url, &mut diags);
        if !url.is_empty()
            && crate::urls::Dialect::of_url(&url).is_none()
            && !API_SCHEMES.contains(&url.split(':').next().unwrap_or_default())
            && !format::is_odoo_url(&url)
        {
            diags.push(
                ctx.diag(
                    &key,
                    format!(
                        "unsupported database URL '{}'",
                        crate::urls::redact_url(&url)
                    ),
                    "use sqlite://PATH, postgres://USER@HOST/DB, mysql://USER@HOST/DB, \
                 odoo+jsonrpc://LOGIN@HOST:PORT/DB or odoo+json2://HOST:PORT/DB"
                        .into(),
                ),
            );
        }
        let password = match (&e.password_env, &e.password_file) {
            (Some(var), _) => match std::env::var(var) {
                Ok(p) => Some(p),
                Err(_) => {
                    diags.push(ctx.diag(
                        &format!("environments.{name}.password_env"),
                        format!("password_env names {var}, which is not set"),
                        format!(
                            "export {var} in the shell that runs cutover (or use password_file)"
                        ),
                    ));
                    None
                }
            },
            (None, Some(file)) => {
                let p = dir.join(expand(
                    &format!("environments.{name}.password_file"),
                    file,
                    &mut diags,
                ));
                match std::fs::read_to_string(&p) {
                    Ok(s) => Some(s.trim_end_matches(['\n', '\r']).to_string()),
                    Err(err) => {
                        diags.push(ctx.diag(
                            &format!("environments.{name}.password_file"),
                            format!("cannot read password file {}: {err}", p.display()),
                            "create the file (mode 0600) or use password_env".into(),
                        ));
                        None
                    }
                }
            }
            (None, None) => None,
        };
        envs.insert(
            name.clone(),
            ResolvedEnv {
                name: name.clone(),
                url,
                password,
                production: e.production,
                reset: e.reset,
                app_users: e
                    .app_users
                    .as_deref()
                    .map(|u| expand(&format!("environments.{name}.app_users"), u, &mut diags))
                    .unwrap_or_default()
                    .split(',')
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect(),
            },
        );
    }
    let extract_dir = PathBuf::from(expand(
        "vars.extract_dir",
        vars.get("extract_dir").map(String::as_str).unwrap_or("."),
        &mut diags,
    ));
    let backup_dir = PathBuf::from(expand(
        "vars.backup_dir",
        vars.get("backup_dir")
            .map(String::as_str)
            .unwrap_or(".cutover/backups"),
        &mut diags,
    ));

    let (order, deps) = lint::lint(&ctx, &rb, &mut diags);
    odoo::lint_targets(&ctx, &rb, &vars, &envs, &mut diags);
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Plan {
        path: path.to_path_buf(),
        dir: dir.clone(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        rb,
        vars,
        envs,
        order,
        deps,
        extract_dir: absolute(&dir, &extract_dir),
        backup_dir: absolute(&dir, &backup_dir),
    })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Variables that name paths (`*_dir`, `*_path`, `*_file`) or SQLite URLs are made absolute
/// against the place they were written: the runbook's folder for defaults, the cwd for `--var`.
fn absolutize(name: &str, value: &str, base: &Path) -> String {
    if value.is_empty() || value.contains("${") {
        return value.to_string();
    }
    if let Some(rest) = value
        .strip_prefix("sqlite://")
        .or_else(|| value.strip_prefix("sqlite:"))
    {
        let (path, query) = rest
            .split_once('?')
            .map(|(p, q)| (p, Some(q)))
            .unwrap_or((rest, None));
        if path.is_empty() || path == ":memory:" || Path::new(path).is_absolute() {
            return value.to_string();
        }
        let abs = base.join(path);
        return match query {
            Some(q) => format!("sqlite://{}?{q}", abs.display()),
            None => format!("sqlite://{}", abs.display()),
        };
    }
    if (name.ends_with("_dir") || name.ends_with("_path") || name.ends_with("_file"))
        && !Path::new(value).is_absolute()
    {
        return base.join(value).display().to_string();
    }
    value.to_string()
}

/// Expand `${name}`; returns the first unknown name as the error.
pub fn expand_vars(s: &str, vars: &IndexMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(after.to_string());
        };
        let name = &after[..end];
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Target URL schemes that are not SQL databases (see `target::registry`); what such a
/// target cannot do is refused by `target::check`.
pub const API_SCHEMES: &[&str] = &["memory", "odoo+jsonrpc", "odoo+json2"];

/// `scheme://user:password@host` or `…?password=…` — a password in a URL.
pub fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let in_query = rest.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|kv| {
            let k = kv.split('=').next().unwrap_or("").to_ascii_lowercase();
            matches!(k.as_str(), "password" | "pass" | "pwd")
        })
    });
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    in_query
        || match authority.rsplit_once('@') {
            Some((userinfo, _)) => userinfo.contains(':'),
            None => false,
        }
}

fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = locate::line_col(text, span.start);
    // A file that is not TOML has no key tree to look in: read the key off the text.
    let key = locate::path_at(text, span.start)
        .or_else(|| locate::path_guess(text, span.start))
        .unwrap_or_else(|| "(document)".into());
    let msg = e.message().trim().to_string();
    let word = text
        .get(span.clone())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let hint = if msg.contains("unknown field")
        && ["password", "secret", "token", "api_key", "apikey"]
            .iter()
            .any(|w| word.contains(w))
    {
        "secrets never go in a runbook: use password_env = \"VAR\" (an environment variable) or password_file = \"PATH\"".to_string()
    } else if msg.contains("unknown field") || msg.contains("unknown variant") {
        "check the spelling against runbooks/tms.toml, which uses every key".to_string()
    } else if msg.contains("missing field") {
        "add the key; runbooks/tms.toml shows it in place".to_string()
    } else if msg.contains("invalid type") {
        type_hint(&msg).to_string()
    } else if msg.contains("duplicate key") {
        "a key may appear once per table: delete or rename the second one".to_string()
    } else if msg.contains("unclosed table") || msg.contains("unclosed array of tables") {
        "close the table header with ] (or ]] for [[…]])".to_string()
    } else if msg.contains("invalid basic string") || msg.contains("invalid literal string") {
        "close the string with its quote on the same line (use \"\"\"…\"\"\" for text over several lines)".to_string()
    } else {
        "the file is not valid TOML here: check quotes, brackets and the = between key and value"
            .to_string()
    };
    Diagnostic {
        file: path.to_path_buf(),
        line,
        column,
        key,
        message: msg,
        hint,
    }
}

/// What to write instead of a value of the wrong type.
fn type_hint(msg: &str) -> &'static str {
    if msg.contains("expected a boolean") {
        "write true or false, without quotes"
    } else if msg.contains("expected a sequence") {
        "write a list in [ ], each item quoted: [\"a\", \"b\"]"
    } else if msg.contains("expected a string") {
        "quote the value: \"…\""
    } else if ["integer", "u32", "u64", "usize", "i64", "f64"]
        .iter()
        .any(|t| {
            msg.contains(&format!("expected {t}")) || msg.contains(&format!("expected an {t}"))
        })
    {
        "write a bare number, without quotes"
    } else {
        "wrong type: strings are quoted, lists are in [ ], numbers and true/false bare"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_in_url_is_detected() {
        assert!(url_has_password("postgres://app:s3cret@db/prod"));
        assert!(!url_has_password("postgres://app@db/prod"));
        assert!(!url_has_password("sqlite:///tmp/a.db"));
        assert!(!url_has_password("mysql://root@127.0.0.1:3306/x"));
        assert!(url_has_password("postgres://app@db/prod?password=s3cret"));
        assert!(url_has_password(
            "mysql://app@db/x?ssl-mode=required&Password=s3cret"
        ));
        assert!(!url_has_password("postgres://app@db/prod?sslmode=require"));
    }

    #[test]
    fn expands_known_and_reports_unknown_vars() {
        let mut v = IndexMap::new();
        v.insert("a".to_string(), "x".to_string());
        assert_eq!(expand_vars("${a}/${a}.db", &v).unwrap(), "x/x.db");
        assert_eq!(expand_vars("${b}", &v).unwrap_err(), "b");
    }

    #[test]
    fn sqlite_urls_are_made_absolute_against_their_base() {
        let base = Path::new("/rb");
        assert_eq!(
            absolutize("staging_url", "sqlite://s.db", base),
            "sqlite:///rb/s.db"
        );
        assert_eq!(
            absolutize("staging_url", "sqlite:///abs.db", base),
            "sqlite:///abs.db"
        );
        assert_eq!(absolutize("extract_dir", "x", base), "/rb/x");
        assert_eq!(absolutize("note", "x", base), "x");
    }
}
