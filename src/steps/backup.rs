//! The backup step: production closed to its users, then dumped; never twice in one run.

use super::{Executor, StepDone, Stop, done, odoo};
use crate::db::admin;
use crate::journal::events::*;

impl Executor {
    pub(super) async fn backup(&mut self, env: &str) -> Result<StepDone, Stop> {
        // Never a second backup in one run: after the load began it would hold loaded rows.
        if let Some(b) = &self.backup
            && self.prior_view.backed_up.contains(env)
        {
            return done(
                StepStatus::Passed,
                format!(
                    "taken before the interruption: {} (sha256 {}…)",
                    b.path.display(),
                    &b.sha256[..12]
                ),
            );
        }
        let e = self.env(env)?.clone();
        // Users go first: a write between the backup and the load would be lost by a rollback.
        self.prod_closed = true;
        let closed = self.close_production(env, &e).await?;
        // Odoo: a pg_dump of its database, through the runbook's sql_url.
        let dump = odoo::sql_env(&self.plan, &e)?;
        let b = admin::backup(
            dump.as_ref().unwrap_or(&e),
            &self.plan.backup_dir,
            &format!("{env}-{}", self.run_id),
        )
        .await?;
        self.emit(Event::BackupTaken {
            env: env.into(),
            path: b.path.display().to_string(),
            sha256: b.sha256.clone(),
            bytes: b.bytes,
            snapshot: b.snapshot.clone(),
        })
        .await?;
        let msg = format!(
            "{closed}; {} ({} bytes, sha256 {}…), {}; {} tables",
            b.path.display(),
            b.bytes,
            &b.sha256[..12],
            b.check,
            b.snapshot.len()
        );
        self.backup = Some(b);
        done(StepStatus::Passed, msg)
    }
}
