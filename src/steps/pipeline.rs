//! The pipeline steps: the dry run into staging and the production load (behind the gate's
//! GO and the freeze watermark), each batch journaled as a checkpoint.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{Executor, Halt, StepDone, Stop, done, odoo};
use crate::engine::pipeline::{BatchObserver, EntityJob, Retry, run_entity};
use crate::engine::rules::{Compiled, ScopeKeys};
use crate::journal::events::*;
use crate::keyset::{KeyMemory, KeySet};
use crate::runbook::format::Check;
use crate::runview::RunView;
use crate::target::TableSpec;

impl Executor {
    pub(super) async fn pipeline(
        &mut self,
        step: &str,
        phase: Phase,
        env: &str,
    ) -> Result<StepDone, Stop> {
        let view = RunView::of(&self.journal.run_records(&self.run_id).await?);
        let files: HashMap<String, ExtractFile> = view
            .extract
            .as_ref()
            .map(|(_, files)| {
                files
                    .iter()
                    .map(|f| (f.entity.clone(), f.clone()))
                    .collect()
            })
            .context("no extract recorded in this run: the extract step must come before the dry run and the load")?;
        let target_env = self.env(env)?.clone();
        let target = odoo::open(&self.plan, &target_env).await?;
        let plan = self.plan.clone();
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in &plan.order {
            let e = &plan.rb.entities[n];
            tables.insert(e.target.table.clone(), e.map.keys().cloned().collect());
        }
        let reset = phase == Phase::DryRun && target_env.reset;
        let prepare = crate::target::Prepare {
            schema: Some(plan.rb.schema.clone()),
            tables,
            // Children before parents.
            reset: if reset {
                plan.order
                    .iter()
                    .rev()
                    .map(|n| plan.rb.entities[n].target.table.clone())
                    .collect()
            } else {
                Vec::new()
            },
        };
        let schema_note = match target.prepare(&prepare).await {
            Ok(n) => n.unwrap_or_else(|| "target ready".into()),
            Err(e) => {
                target.close().await;
                return Err(anyhow::Error::from(e).into());
            }
        };
        let referenced: HashSet<String> = plan
            .order
            .iter()
            .flat_map(|n| {
                Compiled::new(n, &plan.rb.entities[n], &plan.rb.entities)
                    .map(|c| c.references())
                    .unwrap_or_default()
            })
            .collect();
        let scoped_by: HashSet<String> = plan
            .order
            .iter()
            .flat_map(|n| {
                Compiled::new(n, &plan.rb.entities[n], &plan.rb.entities)
                    .map(|c| c.scope_references())
                    .unwrap_or_default()
            })
            .collect();
        let mut keys: HashMap<String, Arc<KeySet>> = HashMap::new();
        let mut scope_keys: HashMap<String, Arc<ScopeKeys>> = HashMap::new();
        let mut lines = Vec::new();
        let phase_dir = match phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        for n in &plan.order {
            if let Some(stop) = self.interrupted() {
                target.close().await;
                return Err(stop);
            }
            let e = &plan.rb.entities[n];
            let f = files
                .get(n)
                .with_context(|| format!("the extract has no file for {n}"))?;
            let mut compiled = Compiled::new(n, e, &plan.rb.entities)?;
            // A file cutover extracted from the legacy database quotes its line breaks
            // itself: read them as values (`multiline` guards files handed over).
            if Path::new(&f.path).starts_with(self.run_dir.join("extract")) {
                compiled.dialect.multiline = true;
            }
            let rules = Arc::new(compiled);
            let job = EntityJob {
                phase,
                refs: rules
                    .references()
                    .iter()
                    .filter_map(|r| keys.get(r).map(|k| (r.clone(), k.clone())))
                    .collect(),
                rules: rules.clone(),
                file: PathBuf::from(&f.path),
                reject_path: self
                    .run_dir
                    .join("rejects")
                    .join(phase_dir)
                    .join(format!("{n}.rejects.csv")),
                table: TableSpec {
                    table: e.target.table.clone(),
                    key: e.target.key.clone(),
                    columns: rules.target_columns.clone(),
                },
                batch_size: e.target.batch_size.unwrap_or(plan.rb.settings.batch_size),
                retry: crate::engine::retry::RetryPolicy::from_settings(&plan.rb.settings),
                keep_valid_keys: referenced.contains(n),
                scope_refs: rules
                    .scope_references()
                    .iter()
                    .filter_map(|r| scope_keys.get(r).map(|k| (r.clone(), k.clone())))
                    .collect(),
                keep_scope_keys: scoped_by.contains(n),
                // Spilled keys go to unnamed files in the run folder, freed when closed.
                keys: KeyMemory {
                    budget: (plan.rb.settings.key_memory_mb as usize) << 20,
                    dir: self.run_dir.clone(),
                },
                sum_fields: plan
                    .rb
                    .checks
                    .iter()
                    .filter_map(|c| match c {
                        Check::Sum {
                            entity,
                            field,
                            currency,
                            ..
                        } if entity == n => Some(crate::engine::pipeline::SumField {
                            field: field.clone(),
                            currency: currency.clone(),
                        }),
                        _ => None,
                    })
                    .collect(),
                fingerprints: plan
                    .rb
                    .checks
                    .iter()
                    .filter_map(|c| match c {
                        Check::Fingerprint {
                            name,
                            entity,
                            source,
                            ..
                        } if entity == n => Some((name.clone(), source.clone())),
                        _ => None,
                    })
                    .collect(),
                expected_rows: f.rows,
                // A reset dry run starts over; anything else continues after its checkpoint.
                resume: if reset {
                    None
                } else {
                    view.checkpoint(phase, n)
                },
            };
            let reject_file = job.reject_path.display().to_string();
            self.emit(Event::EntityStarted {
                phase,
                entity: n.clone(),
                table: e.target.table.clone(),
                expected_rows: f.rows,
            })
            .await?;
            let obs = Checkpoints {
                exec: self,
                step: step.to_string(),
                phase,
                entity: n.clone(),
            };
            // Odoo: records already posted are not sent again (they refuse any change).
            let skip = if odoo::is_odoo(&target_env) {
                match odoo::posted_external_ids(&plan, &target_env, n).await {
                    Ok(s) => s,
                    Err(err) => {
                        target.close().await;
                        return Err(Stop::Failed(err));
                    }
                }
            } else {
                HashSet::new()
            };
            let skipping = odoo::SkipPosted {
                inner: target.as_ref(),
                skip,
            };
            let writer: &dyn crate::target::Target = if skipping.skip.is_empty() {
                target.as_ref()
            } else {
                &skipping
            };
            let res = run_entity(job, writer, &self.progress, &obs).await;
            let res = match res {
                Ok(r) => r,
                Err(err) => {
                    target.close().await;
                    return Err(match err.downcast::<Halt>() {
                        Ok(h) => h.into(),
                        Err(err) => Stop::Failed(err),
                    });
                }
            };
            lines.push(format!(
                "{n}: {} valid, {} rejected, {} loaded",
                res.counts.valid, res.counts.rejected, res.counts.loaded
            ));
            // Odoo: e.g. post the invoices just loaded (those still in draft).
            if odoo::is_odoo(&target_env) {
                match odoo::post_loaded(&plan, &target_env, n).await {
                    Ok(Some(posted)) => lines.push(format!(
                        "{n}: {posted} posted ({})",
                        e.target.post.as_deref().unwrap_or_default()
                    )),
                    Ok(None) => {}
                    Err(err) => {
                        target.close().await;
                        return Err(Stop::Failed(err));
                    }
                }
            }
            if let Some(k) = res.valid_keys {
                keys.insert(n.clone(), Arc::new(k));
            }
            if let Some(k) = res.scope_keys {
                scope_keys.insert(n.clone(), Arc::new(k));
            }
            self.emit(Event::EntityFinished {
                phase,
                entity: n.clone(),
                counts: res.counts,
                reject_file,
                sums: res.sums,
                duration_ms: res.duration_ms,
            })
            .await?;
        }
        target.close().await;
        done(
            StepStatus::Passed,
            format!("{schema_note}; {}", lines.join("; ")),
        )
    }

    pub(super) async fn load(&mut self, step: &str, env: &str) -> Result<StepDone, Stop> {
        let view = RunView::of(&self.journal.run_records(&self.run_id).await?);
        // The gate cannot be bypassed: a GO must follow the last validate of this run.
        if view.go_after_validate != Some(true) {
            return Err(Stop::Failed(anyhow::anyhow!(
                "the production load needs a GO at the sign-off gate after the last validate; none is in the journal"
            )));
        }
        self.check_watermark(&view).await?;
        self.load_started = true;
        self.pipeline(step, Phase::Load, env).await
    }
}

/// Journals every committed batch: the checkpoint a resumed load continues from.
struct Checkpoints<'a> {
    exec: &'a Executor,
    step: String,
    phase: Phase,
    entity: String,
}

impl BatchObserver for Checkpoints<'_> {
    fn committed(
        &self,
        batch: u64,
        rows: u64,
        last_line: u64,
        refused: Vec<RefusedRow>,
    ) -> impl std::future::Future<Output = Result<()>> + Send {
        let ev = Event::BatchCommitted {
            phase: self.phase,
            entity: self.entity.clone(),
            batch,
            rows,
            last_line,
            refused,
        };
        async move {
            self.exec.emit(ev).await?;
            // The batch is committed and journaled: a safe point to stop at.
            if let Some(h) = self.exec.check_window().await? {
                return Err(h.into());
            }
            match self.exec.interrupted() {
                Some(Stop::Rollback(reason)) => Err(Halt::Rollback(reason).into()),
                Some(_) => Err(Halt::Abort.into()),
                None => Ok(()),
            }
        }
    }

    /// Right before each write into the target: a process whose lease was taken over
    /// (the heartbeat found out) writes no further batch, not even the one in hand.
    async fn writing(&self) -> Result<()> {
        let phase = match self.phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        crate::fault::at_point(true, "batch_write", &[phase.into(), self.entity.clone()]).await?;
        self.exec.journal.ensure_lease().await
    }

    fn retrying(&self, r: Retry) -> impl std::future::Future<Output = Result<()>> + Send {
        tracing::warn!(
            entity = %self.entity,
            attempt = r.attempt,
            max = r.max_attempts,
            delay_ms = r.delay.as_millis() as u64,
            error = %r.error,
            "transient fault; retrying the batch"
        );
        let ev = Event::RetryScheduled {
            step: self.step.clone(),
            entity: self.entity.clone(),
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            delay_ms: r.delay.as_millis() as u64,
            error: r.error,
        };
        async move { self.exec.emit(ev).await.map(|_| ()) }
    }
}
