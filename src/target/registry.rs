//! Which target a URL names, by its scheme: open it, or know what it can do without
//! connecting (for `check`). Adding a kind of target is one arm in each function below.

use anyhow::Result;

use super::{Capabilities, Target};
use crate::db::{Dialect, redact_url};
use crate::runbook::ResolvedEnv;

/// The kinds of target, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sql(Dialect),
    Memory,
    /// `odoo+jsonrpc:` (Odoo 17/18) and `odoo+json2:` (Odoo 19+); `odoo+jsonrpcs:` and
    /// `odoo+json2s:` over HTTPS.
    Odoo,
}

impl Kind {
    pub fn of_url(url: &str) -> Option<Kind> {
        if let Some(d) = Dialect::of_url(url) {
            return Some(Kind::Sql(d));
        }
        match url.split(':').next()? {
            "memory" => Some(Kind::Memory),
            "odoo+jsonrpc" | "odoo+json2" | "odoo+jsonrpcs" | "odoo+json2s" => Some(Kind::Odoo),
            _ => None,
        }
    }
}

/// What the target behind `url` can do, without connecting; `None` for a scheme no
/// target knows.
pub fn capabilities_for_url(url: &str) -> Option<Capabilities> {
    Some(match Kind::of_url(url)? {
        Kind::Sql(d) => super::sql::capabilities(d),
        Kind::Memory => super::memory::capabilities(),
        Kind::Odoo => super::odoo::capabilities(),
    })
}

/// Open the target an environment's URL names. Errors name the environment, never a
/// secret.
pub async fn open(env: &ResolvedEnv) -> Result<Box<dyn Target>> {
    let target: Result<Box<dyn Target>> = match Kind::of_url(&env.url) {
        // `Db::connect` names the environment itself.
        Some(Kind::Sql(_)) => {
            return super::sql::SqlTarget::open(env)
                .await
                .map(|t| Box::new(t) as Box<dyn Target>)
                .map_err(anyhow::Error::from);
        }
        Some(Kind::Memory) => {
            let name = env
                .url
                .trim_start_matches("memory:")
                .trim_start_matches("//");
            Ok(Box::new(super::memory::MemoryTarget::named(name)))
        }
        Some(Kind::Odoo) => super::odoo::OdooTarget::open(env, super::odoo::OdooOptions::default())
            .map(|t| Box::new(t) as Box<dyn Target>),
        None => Err(anyhow::anyhow!(
            "unsupported URL {} (known schemes: sqlite:, postgres:, postgresql:, mysql:, \
             mariadb:, memory:, odoo+jsonrpc:, odoo+json2:, odoo+jsonrpcs:, odoo+json2s:)",
            redact_url(&env.url)
        )),
    };
    target.map_err(|e| e.context(format!("environment '{}'", env.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{BackupKind, FreezeKind};

    #[test]
    fn every_scheme_has_its_capabilities_without_connecting() {
        for (url, read_back, bad_rows, backup, freeze) in [
            (
                "sqlite:data/x.db",
                true,
                false,
                BackupKind::SqliteCopy,
                FreezeKind::None,
            ),
            (
                "postgres://u@h/db",
                true,
                false,
                BackupKind::PgDump,
                FreezeKind::RevokePrivileges,
            ),
            (
                "postgresql://u@h/db",
                true,
                false,
                BackupKind::PgDump,
                FreezeKind::RevokePrivileges,
            ),
            (
                "mysql://u@h/db",
                true,
                false,
                BackupKind::MariaDump,
                FreezeKind::RevokePrivileges,
            ),
            (
                "mariadb://u@h/db",
                true,
                false,
                BackupKind::MariaDump,
                FreezeKind::RevokePrivileges,
            ),
            (
                "memory:t",
                false,
                false,
                BackupKind::External,
                FreezeKind::None,
            ),
            (
                "odoo+jsonrpc://admin@h:8069/tms",
                false,
                true,
                BackupKind::External,
                FreezeKind::ArchiveUsers,
            ),
            (
                "odoo+json2://127.0.0.1:8069/tms",
                false,
                true,
                BackupKind::External,
                FreezeKind::ArchiveUsers,
            ),
        ] {
            let c = capabilities_for_url(url).unwrap_or_else(|| panic!("{url}"));
            assert_eq!(
                (c.sql_read_back, c.reports_bad_rows, c.backup, c.freeze),
                (read_back, bad_rows, backup, freeze),
                "{url}"
            );
            assert!(c.atomic_batches, "{url}");
        }
        assert!(
            capabilities_for_url("odoo+json2://h/db")
                .unwrap()
                .resolves_references
        );
        assert_eq!(capabilities_for_url("ftp://h/x"), None);
        assert_eq!(capabilities_for_url(""), None);
    }

    #[tokio::test]
    async fn a_memory_url_opens_the_shared_store_and_an_unknown_scheme_says_which_exist() {
        let env = |url: &str| ResolvedEnv {
            name: "staging".into(),
            url: url.into(),
            password: None,
            production: false,
            reset: false,
            app_users: vec![],
        };
        let t = open(&env("memory:registry-test")).await.unwrap();
        assert_eq!(t.name(), "memory:registry-test");
        assert!(!t.capabilities().sql_read_back);
        let err = open(&env("ftp://secret:pw@h/x")).await.err().unwrap();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("environment 'staging'") && msg.contains("known schemes"),
            "{msg}"
        );
        assert!(!msg.contains("pw"), "{msg}");
    }
}
