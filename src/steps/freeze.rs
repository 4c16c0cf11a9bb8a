//! The freeze of the legacy source (and its watermark, checked again before the load), and
//! the unfreeze that reopens production.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::{Executor, StepDone, Stop, done, odoo};
use crate::db::admin::{self, Freeze};
use crate::db::{Db, display_env};
use crate::journal::events::*;
use crate::runview::RunView;
use crate::sources::csv::sha256_file;

impl Executor {
    /// Rows and a content checksum per legacy source table: the freeze watermark. A
    /// privileged account the freeze does not bind could still UPDATE, or DELETE and
    /// INSERT keeping the count; the checksum sees both.
    async fn legacy_watermark(
        &self,
        env: &crate::runbook::ResolvedEnv,
    ) -> Result<BTreeMap<String, String>> {
        let db = Db::connect(env).await?;
        let c = db.snapshot_tables(&self.source_tables()).await;
        db.close().await;
        c.context("taking the legacy rows and checksums (the freeze watermark)")
    }

    pub(super) async fn freeze(&mut self, env: &str) -> Result<StepDone, Stop> {
        // Freezing twice would record the already-revoked privileges as the ones to give back.
        if self.prior_view.frozen_envs.contains(env) {
            return done(StepStatus::Passed, "applied before the interruption");
        }
        if let Some(e) = self.plan.env(env).filter(|e| odoo::is_odoo(e)).cloned() {
            // Odoo: closing it archives its app users (journaled, given back exactly).
            self.prod_closed = true;
            let closed = self.close_production(env, &e).await?;
            return done(StepStatus::Passed, format!("{}: {closed}", display_env(&e)));
        }
        let (fz, watermark) = match self.plan.env(env) {
            None => (
                Freeze {
                    method: "CSV extracts: checksums recorded; the files are the frozen source"
                        .into(),
                    ..Freeze::default()
                },
                self.extract_checksums()?,
            ),
            Some(e) => {
                let e = e.clone();
                let tables = self.source_tables();
                let planned = self.freeze_planned(env, &e).await?;
                // From here the legacy may be frozen: a failure now runs the rollback
                // plan with what was planned.
                self.frozen = Some((env.to_string(), planned.clone()));
                let applied = admin::freeze(&e, &tables).await?;
                // What to give back: what the accounts held before the freeze (planned,
                // journaled), and anything held now that the plan did not see.
                let mut fz = Freeze {
                    method: applied.method,
                    revoked: planned.revoked,
                };
                fz.merge_revoked(&applied.revoked);
                if let Some((_, carried)) = planned.method.split_once("; carried over") {
                    fz.method = format!("{}; carried over{carried}", fz.method);
                }
                self.frozen = Some((env.to_string(), fz.clone()));
                // Taken once frozen: what the extract reads, and what must still be there
                // at the load.
                let wm = self.legacy_watermark(&e).await?;
                (fz, wm)
            }
        };
        self.emit(Event::FreezeApplied {
            env: env.into(),
            method: fz.method.clone(),
            watermark: watermark.clone(),
            revoked: fz.revoked.clone(),
        })
        .await?;
        done(
            StepStatus::Passed,
            format!("{}; watermark {}", fz.method, fmt_map(&watermark)),
        )
    }

    /// What the freeze of `env` takes away, journaled (`freeze_planned`) before anything
    /// is revoked. A run resumed after a kill inside the freeze takes the journaled plan:
    /// read again, the accounts would hold nothing (already revoked) and the privileges to
    /// give back would be lost.
    async fn freeze_planned(
        &mut self,
        env: &str,
        e: &crate::runbook::ResolvedEnv,
    ) -> Result<Freeze> {
        let journaled = self.prior_view.freeze_plans.get(env).map(|f| Freeze {
            method: f.method.clone(),
            revoked: f.revoked.clone(),
        });
        if let Some(p) = journaled {
            return Ok(p);
        }
        let mut p = admin::freeze_plan(e).await?;
        // Still frozen by the previous run (held after its NO-GO): what that freeze
        // revoked is what this run must give back; read now, it holds nothing.
        if let Some((prev, old)) = self.held_freeze(env).await? {
            p.merge_revoked(&old.revoked);
            p.method = format!(
                "{}; carried over the freeze run {prev} held after its NO-GO",
                p.method
            );
        }
        self.emit(Event::FreezePlanned {
            env: env.into(),
            method: p.method.clone(),
            revoked: p.revoked.clone(),
        })
        .await?;
        Ok(p)
    }

    fn extract_checksums(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for n in self.plan.order.iter().filter(|n| !self.derived(n)) {
            for f in self.plan.rb.entities[n].source_files(n) {
                let (sha, _) = sha256_file(&self.plan.extract_dir.join(&f.file))?;
                out.insert(f.name, format!("sha256={sha}"));
            }
        }
        Ok(out)
    }

    /// The freeze must still hold when the production load starts.
    pub(super) async fn check_watermark(&self, view: &RunView) -> Result<(), Stop> {
        let Some((env, wm)) = view
            .freeze_applied
            .as_ref()
            .map(|f| (f.env.clone(), &f.watermark))
        else {
            return Ok(());
        };
        let now = match self.plan.env(&env) {
            None => self.extract_checksums()?,
            Some(e) => self.legacy_watermark(&e.clone()).await?,
        };
        if now != *wm {
            let changed: Vec<String> = wm
                .keys()
                .chain(now.keys().filter(|k| !wm.contains_key(*k)))
                .filter(|t| wm.get(*t) != now.get(*t))
                .map(|t| {
                    // `rows=4 sha256=…` with the checksum cut to 12 digits.
                    let show = |v: Option<&String>| match v {
                        None => "absent".to_string(),
                        Some(v) => v
                            .split(' ')
                            .map(|p| match p.split_once("sha256=") {
                                Some((a, h)) => format!("{a}sha256={}…", &h[..12.min(h.len())]),
                                None => p.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                    };
                    format!("{t} (was {}, now {})", show(wm.get(t)), show(now.get(t)))
                })
                .collect();
            return Err(Stop::RollbackPlan(format!(
                "the legacy source changed after the freeze: {}; the extract no longer matches it, \
                 so the production load did not start",
                changed.join(", ")
            )));
        }
        Ok(())
    }

    pub(super) async fn unfreeze(&mut self, env: &str) -> Result<StepDone, Stop> {
        let e = self.env(env)?.clone();
        let opened = self.reopen_production(env, &e).await?;
        done(
            StepStatus::Passed,
            format!(
                "{}: {opened}; the legacy source stays read-only",
                display_env(&e)
            ),
        )
    }
}

fn fmt_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.strip_prefix("sha256=")
                    .map(|s| &s[..12.min(s.len())])
                    .unwrap_or(v)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
