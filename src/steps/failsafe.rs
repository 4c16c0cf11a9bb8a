//! Fail-safe: whatever ends a run after production was closed or the legacy frozen, both
//! end as the runbook's `[rollback]` plan says, and the journal and the screen say so.
//!
//! - Production's privileges are snapshotted (and journaled) before it is closed, and given
//!   back exactly: at unfreeze, by the rollback plan, and when a run ends before its load.
//! - A run that ends before the production load (a failed step, a failed reconciliation, a
//!   NO-GO) runs the rollback plan: production, untouched, is reopened; the legacy is
//!   reopened with `reopen_legacy`, unless the operator holds the freeze after a NO-GO.
//! - A changed legacy at the load (the freeze watermark) runs the rollback plan too.
//! - The rollback does each part it can: a production it cannot restore does not keep the
//!   legacy frozen, and every failure is named.

use anyhow::{Context, Result};

use super::{Executor, exit, explain};
use crate::db::admin::{self, Freeze, Privileges};
use crate::journal::events::{Event, Outcome, RunMode};
use crate::runbook::ResolvedEnv;
use crate::runview::RunView;

/// Whether a stop with this outcome and exit code ends the run for good (as opposed to an
/// interruption or a wait that `cutover run` resumes).
pub(super) fn ends_run(outcome: Outcome, code: i32) -> bool {
    code != exit::INTERRUPTED
        && code != exit::WINDOW_EXCEEDED
        && matches!(
            outcome,
            Outcome::Failed | Outcome::ValidationFailed | Outcome::NoGo
        )
}

impl Executor {
    /// Snapshot who may use production, journal it, then close it. A resumed run whose
    /// journal holds the snapshot keeps it: taken again it would record the closed state.
    pub(super) async fn close_production(&mut self, env: &str, e: &ResolvedEnv) -> Result<String> {
        if super::odoo::is_odoo(e) {
            return self.close_odoo(env, e).await;
        }
        let journaled = self.prior_view.closed(env).map(|c| Privileges {
            acl: c.acl.clone(),
            held: c.held.clone(),
        });
        let before = match journaled {
            Some(p) => p,
            None => {
                let p = admin::users_privileges(e).await?;
                if !e.app_users.is_empty() {
                    self.emit(Event::ProductionClosed {
                        env: env.into(),
                        acl: p.acl.clone(),
                        held: p.held.clone(),
                    })
                    .await?;
                }
                p
            }
        };
        self.closed = Some(before);
        admin::close_to_users(e).await
    }

    /// Give production back to its users as they were before the close, and journal it.
    pub(super) async fn reopen_production(&self, env: &str, e: &ResolvedEnv) -> Result<String> {
        let opened = if super::odoo::is_odoo(e) {
            super::odoo::reopen(&self.plan, e, self.closed.as_ref().map(|c| &c.held)).await?
        } else {
            admin::open_to_users(e, self.closed.as_ref()).await?
        };
        self.emit(Event::EnvReopened {
            env: env.into(),
            production: true,
            message: opened.clone(),
        })
        .await?;
        Ok(opened)
    }

    /// Odoo: archive the app users, after journaling who was active (a resumed run keeps
    /// the journaled list: read again, everyone would look archived).
    async fn close_odoo(&mut self, env: &str, e: &ResolvedEnv) -> Result<String> {
        let journaled = self.prior_view.closed(env).map(|c| Privileges {
            acl: c.acl.clone(),
            held: c.held.clone(),
        });
        if let Some(p) = journaled {
            let msg = format!("closed before the interruption: {}", p.acl);
            self.closed = Some(p);
            return Ok(msg);
        }
        let (msg, held) = super::odoo::close(&self.plan, e).await?;
        self.emit(Event::ProductionClosed {
            env: env.into(),
            acl: msg.clone(),
            held: held.clone(),
        })
        .await?;
        self.closed = Some(Privileges {
            acl: msg.clone(),
            held,
        });
        Ok(msg)
    }

    /// `cutover run --fresh` abandons this (adopted) run: its rollback plan runs first, so
    /// a production it closed and a legacy it froze are given back before the new run
    /// closes and freezes them again (a second freeze would record nothing to give back).
    pub async fn abandon_now(mut self, why: &str) -> Result<super::Finished> {
        let result = self
            .fail_safe((Outcome::Failed, exit::FAILURE, why.to_string()))
            .await;
        self.finish(result).await
    }

    /// The freeze of `env` that the previous run of this runbook held after its NO-GO, if
    /// the legacy is still frozen by it: this run carries it over (what to give back).
    pub(super) async fn held_freeze(&self, env: &str) -> Result<Option<(String, Freeze)>> {
        let starts = self.journal.run_starts().await?;
        let Some(prev) =
            super::runs_of(&starts, &self.plan, RunMode::Run).find(|id| *id != self.run_id)
        else {
            return Ok(None);
        };
        let recs = self.journal.run_records(prev).await?;
        let held = RunView::of(&recs).held_freeze(env).map(|f| Freeze {
            method: f.method.clone(),
            revoked: f.revoked.clone(),
        });
        Ok(held.map(|f| (prev.to_string(), f)))
    }

    /// The run ends before the production load: the rollback plan puts production and the
    /// legacy back (nothing was written to production, so nothing is restored). The
    /// outcome and exit code stay those of what ended the run; the message says what the
    /// plan did. Nothing to undo, nothing journaled.
    pub(super) async fn fail_safe(
        &mut self,
        (outcome, code, msg): (Outcome, i32, String),
    ) -> (Outcome, i32, String) {
        if !self.prod_closed && self.frozen.is_none() {
            return (outcome, code, msg);
        }
        let hold = if outcome == Outcome::NoGo {
            super::lock(&self.hold_freeze).clone()
        } else {
            None
        };
        let _ = self
            .emit(Event::RollbackStarted {
                reason: format!("{msg} (the run ends before the production load)"),
            })
            .await;
        let res = self.do_rollback(hold.as_deref()).await;
        let (ok, message) = match &res {
            Ok(m) => (true, m.clone()),
            Err(e) => (false, format!("rollback FAILED: {}", explain(e))),
        };
        let _ = self
            .emit(Event::RollbackFinished {
                ok,
                message: message.clone(),
            })
            .await;
        if ok {
            (outcome, code, format!("{msg}; rollback plan: {message}"))
        } else {
            (Outcome::Failed, exit::FAILURE, format!("{msg}; {message}"))
        }
    }

    /// The rollback plan: production restored from the backup and verified if the load
    /// started, and reopened as it was; the legacy reopened with `reopen_legacy` (unless
    /// `hold`, the reason the operator keeps it frozen). Each part is tried even if
    /// another failed; the error names every part that failed.
    pub(super) async fn do_rollback(&mut self, hold: Option<&str>) -> Result<String> {
        let plan = self.plan.clone();
        let mut notes = Vec::new();
        let mut failed = Vec::new();
        let prod = plan
            .envs
            .iter()
            .find(|(_, e)| e.production)
            .map(|(n, e)| (n.clone(), e.clone()));
        let rb = &plan.rb.rollback;
        let production: Result<()> = async {
            match (&prod, self.load_started) {
                (None, _) if rb.restore_backup && self.load_started => {
                    anyhow::bail!("no environment is marked production")
                }
                (None, _) => {}
                (Some((name, p)), true) if rb.restore_backup => {
                    let backup = self
                        .backup
                        .clone()
                        .context("no backup was taken in this run; restore production by hand")?;
                    // Odoo: its database, through the runbook's sql_url.
                    let dump = super::odoo::sql_env(&plan, p)?;
                    notes.push(format!(
                        "production {}",
                        admin::restore_and_verify(dump.as_ref().unwrap_or(p), &backup).await?
                    ));
                    // Back as it was before the cutover, users included.
                    notes.push(format!(
                        "reopened: {}",
                        self.reopen_production(name, p).await?
                    ));
                }
                (Some((name, p)), true) if rb.delete_loaded => {
                    // API-only Odoo: nothing to restore; take back what this run created.
                    let msg = super::odoo::delete_loaded(&plan, p).await?;
                    notes.push(format!("production {msg}"));
                    notes.push(format!(
                        "reopened: {}",
                        self.reopen_production(name, p).await?
                    ));
                }
                (Some(_), true) => notes.push(
                    "production left closed with the rows loaded (restore_backup = false): \
                     check it, then reopen it by hand"
                        .into(),
                ),
                (Some((name, p)), false) if self.prod_closed => {
                    notes.push(format!(
                        "production untouched (the load had not started), reopened: {}",
                        self.reopen_production(name, p).await?
                    ));
                }
                (Some(_), false) => notes.push("production untouched".into()),
            }
            Ok(())
        }
        .await;
        if let Err(e) = production {
            failed.push(format!("production: {}", explain(&e)));
        }
        if let Some((name, fz)) = self.frozen.clone() {
            if let Some(reason) = hold {
                let _ = self
                    .emit(Event::FreezeHeld {
                        env: name.clone(),
                        reason: reason.into(),
                    })
                    .await;
                notes.push(format!(
                    "legacy {name} kept frozen as the operator chose ({reason}); \
                     `cutover rollback` reopens it"
                ));
            } else if !rb.reopen_legacy {
                notes.push(format!("legacy {name} left frozen (reopen_legacy = false)"));
            } else {
                let legacy: Result<String> = async {
                    let e = plan.env(&name).with_context(|| {
                        format!(
                            "this run froze the legacy environment '{name}', which has no URL in the \
                             runbook as loaded now; pass the run's --var values (e.g. legacy_url=…) \
                             to reopen it"
                        )
                    })?;
                    let r = admin::reopen(e, &self.source_tables(), &fz).await?;
                    self.emit(Event::EnvReopened {
                        env: name.clone(),
                        production: false,
                        message: r.clone(),
                    })
                    .await?;
                    Ok(r)
                }
                .await;
                match legacy {
                    Ok(r) => notes.push(format!("legacy reopened for its users ({r})")),
                    Err(e) => failed.push(format!("legacy {name}: {}", explain(&e))),
                }
            }
        }
        if !failed.is_empty() {
            let done = if notes.is_empty() {
                String::new()
            } else {
                format!(" (done: {})", notes.join("; "))
            };
            anyhow::bail!("{}{done}", failed.join("; "));
        }
        Ok(notes.join("; "))
    }
}

impl Executor {
    /// Restore production from this run's backup and verify it matches the pre-cutover snapshot.
    pub(super) async fn rollback(&mut self, reason: &str) -> (Outcome, i32, String) {
        let _ = self
            .emit(Event::RollbackStarted {
                reason: reason.into(),
            })
            .await;
        let res = self.do_rollback(None).await;
        let (ok, message) = match &res {
            Ok(m) => (true, m.clone()),
            Err(e) => (false, format!("rollback FAILED: {}", explain(e))),
        };
        let _ = self
            .emit(Event::RollbackFinished {
                ok,
                message: message.clone(),
            })
            .await;
        if ok {
            (
                Outcome::RolledBack,
                exit::ROLLED_BACK,
                format!("{reason}; rolled back: {message}"),
            )
        } else {
            (
                Outcome::Failed,
                exit::FAILURE,
                format!("{reason}; {message}"),
            )
        }
    }
}
