//! The pipeline steps: the dry run into staging and the production load (behind the gate's
//! GO and the freeze watermark), each batch journaled as a checkpoint.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use anyhow::{Context, Result};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

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
        // SQLite takes one writer at a time; Odoo's records are loaded one call after another.
        let concurrent_writes = matches!(
            crate::urls::Dialect::of_url(&target_env.url),
            Some(crate::urls::Dialect::Postgres | crate::urls::Dialect::MySql)
        ) && !odoo::is_odoo(&target_env);
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
        // Direct writes (no upsert) only into a table that held no row once prepared (a
        // reset staging, a new production table) and that no other entity writes.
        let mut writers: HashMap<&str, usize> = HashMap::new();
        for n in &plan.order {
            *writers
                .entry(plan.rb.entities[n].target.table.as_str())
                .or_default() += 1;
        }
        let mut empty_tables: HashSet<String> = HashSet::new();
        for (table, count) in &writers {
            if *count > 1 {
                continue;
            }
            match target.holds_rows(table).await {
                Ok(false) => {
                    empty_tables.insert(table.to_string());
                }
                Ok(true) => {}
                Err(e) => {
                    target.close().await;
                    return Err(anyhow::Error::from(e).into());
                }
            }
        }
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
        let shared = Shared {
            step,
            phase,
            target: target.as_ref(),
            target_env: &target_env,
            files: &files,
            view: &view,
            referenced: &referenced,
            scoped_by: &scoped_by,
            empty_tables: &empty_tables,
            reset,
            concurrent_writes,
            others_failed: AtomicBool::new(false),
        };
        // Odoo loads each entity with its own parallel workers and posts it afterwards:
        // one entity at a time there.
        let concurrency = if odoo::is_odoo(&target_env) {
            1
        } else {
            plan.rb.settings.entity_concurrency.max(1)
        };
        let this: &Executor = self;
        let mut keys: HashMap<String, Arc<KeySet>> = HashMap::new();
        let mut scope_keys: HashMap<String, Arc<ScopeKeys>> = HashMap::new();
        let mut lines: HashMap<String, Vec<String>> = HashMap::new();
        let mut pending: Vec<&String> = plan.order.iter().collect();
        let mut finished: HashSet<&str> = HashSet::new();
        let mut running = FuturesUnordered::new();
        let mut failure: Option<Stop> = None;
        loop {
            // Start, in load order, every entity whose dependencies are loaded, up to the
            // concurrency. An entity sharing its table with an earlier one waits for it.
            while failure.is_none() && running.len() < concurrency {
                let ready = pending.iter().position(|n| {
                    let table = &plan.rb.entities[*n].target.table;
                    let deps_done = plan
                        .deps
                        .get(*n)
                        .into_iter()
                        .flatten()
                        .all(|d| finished.contains(d.as_str()));
                    let table_free = !plan.order.iter().take_while(|o| o != n).any(|o| {
                        !finished.contains(o.as_str()) && plan.rb.entities[o].target.table == *table
                    });
                    deps_done && table_free
                });
                let Some(at) = ready else { break };
                if let Some(stop) = this.interrupted() {
                    failure = Some(stop);
                    shared.others_failed.store(true, SeqCst);
                    break;
                }
                let n = pending.remove(at);
                running.push(this.entity(&shared, n, keys.clone(), scope_keys.clone()));
            }
            let Some((n, res)) = running.next().await else {
                break;
            };
            match res {
                Ok(done) => {
                    finished.insert(n.as_str());
                    lines.insert(n.clone(), done.lines);
                    if let Some(k) = done.valid_keys {
                        keys.insert(n.clone(), Arc::new(k));
                    }
                    if let Some(k) = done.scope_keys {
                        scope_keys.insert(n.clone(), Arc::new(k));
                    }
                }
                // The first failure stops the others at their next write; theirs, a
                // consequence, is not the one reported.
                Err(stop) => {
                    if failure.is_none() {
                        failure = Some(stop);
                        shared.others_failed.store(true, SeqCst);
                    }
                }
            }
        }
        drop(running);
        target.close().await;
        if let Some(stop) = failure {
            return Err(stop);
        }
        // Lint refuses unknown and cyclic dependencies; never pass with an entity left out.
        if !pending.is_empty() {
            return Err(Stop::Failed(anyhow::anyhow!(
                "entities never became ready (their dependencies did not load): {}",
                pending
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let lines: Vec<String> = plan
            .order
            .iter()
            .flat_map(|n| lines.remove(n).unwrap_or_default())
            .collect();
        done(
            StepStatus::Passed,
            format!("{schema_note}; {}", lines.join("; ")),
        )
    }

    /// One entity of a pipeline step: its job, its load, its journal records. The valid
    /// keys it references come from entities already loaded.
    async fn entity<'n>(
        &self,
        sh: &Shared<'_>,
        n: &'n String,
        keys: HashMap<String, Arc<KeySet>>,
        scope_keys: HashMap<String, Arc<ScopeKeys>>,
    ) -> (&'n String, Result<EntityDone, Stop>) {
        (n, self.entity_inner(sh, n, &keys, &scope_keys).await)
    }

    async fn entity_inner(
        &self,
        sh: &Shared<'_>,
        n: &String,
        keys: &HashMap<String, Arc<KeySet>>,
        scope_keys: &HashMap<String, Arc<ScopeKeys>>,
    ) -> Result<EntityDone, Stop> {
        let plan = self.plan.clone();
        let phase = sh.phase;
        let phase_dir = match phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        let e = &plan.rb.entities[n];
        let f = sh
            .files
            .get(n)
            .with_context(|| format!("the extract has no file for {n}"))?;
        let mut compiled = Compiled::new(n, e, &plan.rb.entities)?;
        // A file cutover extracted from the legacy database quotes its line breaks
        // itself: read them as values (`multiline` guards files handed over).
        if Path::new(&f.path).starts_with(self.run_dir.join("extract")) {
            compiled.dialect.multiline = true;
            if let Some(l) = compiled.lines.as_mut() {
                l.rules.dialect.multiline = true;
            }
        }
        let rules = Arc::new(compiled);
        // A reset dry run starts over; anything else continues after its checkpoint.
        let resume = if sh.reset {
            None
        } else {
            sh.view.checkpoint(phase, n)
        };
        // Proved free of conflicts: the table was empty once prepared and this entity has
        // written nothing into it before (no checkpoint to resume from).
        let may_conflict = resume.is_some() || !sh.empty_tables.contains(&e.target.table);
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
            keep_valid_keys: sh.referenced.contains(n),
            scope_refs: rules
                .scope_references()
                .iter()
                .filter_map(|r| scope_keys.get(r).map(|k| (r.clone(), k.clone())))
                .collect(),
            keep_scope_keys: sh.scoped_by.contains(n),
            // Spilled keys go to unnamed files in the run folder, freed when closed.
            batch_bytes: (plan.rb.settings.batch_memory_mb as usize) << 20,
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
            resume,
            may_conflict,
            workers: plan.rb.settings.workers(),
            write_concurrency: if sh.concurrent_writes {
                plan.rb.settings.write_concurrency.max(1)
            } else {
                1
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
            step: sh.step.to_string(),
            phase,
            entity: n.clone(),
            others_failed: &sh.others_failed,
        };
        // Odoo: records already posted are not sent again (they refuse any change).
        let skip = if odoo::is_odoo(sh.target_env) {
            odoo::posted_external_ids(&plan, sh.target_env, n)
                .await
                .map_err(Stop::Failed)?
        } else {
            HashSet::new()
        };
        let skipping = odoo::SkipPosted {
            inner: sh.target,
            skip,
        };
        let writer: &dyn crate::target::Target = if skipping.skip.is_empty() {
            sh.target
        } else {
            &skipping
        };
        let res = run_entity(job, writer, &self.progress, &obs)
            .await
            .map_err(|err| match err.downcast::<Halt>() {
                Ok(h) => h.into(),
                Err(err) => Stop::Failed(err),
            })?;
        let mut lines = vec![format!(
            "{n}: {} valid, {} rejected, {} loaded",
            res.counts.valid, res.counts.rejected, res.counts.loaded
        )];
        // Odoo: e.g. post the invoices just loaded (those still in draft).
        if odoo::is_odoo(sh.target_env)
            && let Some(posted) = odoo::post_loaded(&plan, sh.target_env, n)
                .await
                .map_err(Stop::Failed)?
        {
            lines.push(format!(
                "{n}: {posted} posted ({})",
                e.target.post.as_deref().unwrap_or_default()
            ));
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
        Ok(EntityDone {
            lines,
            valid_keys: res.valid_keys,
            scope_keys: res.scope_keys,
        })
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

/// What every entity of one pipeline step shares.
struct Shared<'a> {
    step: &'a str,
    phase: Phase,
    target: &'a dyn crate::target::Target,
    target_env: &'a crate::runbook::ResolvedEnv,
    files: &'a HashMap<String, ExtractFile>,
    view: &'a RunView,
    referenced: &'a HashSet<String>,
    scoped_by: &'a HashSet<String>,
    /// Tables that held no row once prepared and that one entity alone writes.
    empty_tables: &'a HashSet<String>,
    /// A reset dry run: every entity starts over.
    reset: bool,
    /// The target takes several batches at once (a server, not SQLite or Odoo).
    concurrent_writes: bool,
    /// Set when an entity failed (or the operator stopped the run): the others stop
    /// before their next write.
    others_failed: AtomicBool,
}

/// What a loaded entity hands to the ones after it.
struct EntityDone {
    lines: Vec<String>,
    valid_keys: Option<KeySet>,
    scope_keys: Option<ScopeKeys>,
}

/// Journals every committed batch: the checkpoint a resumed load continues from.
struct Checkpoints<'a> {
    exec: &'a Executor,
    step: String,
    phase: Phase,
    entity: String,
    others_failed: &'a AtomicBool,
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
    async fn writing(&self, _may_conflict: bool) -> Result<()> {
        let phase = match self.phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        if self.others_failed.load(SeqCst) {
            anyhow::bail!("{} stopped: another entity failed", self.entity);
        }
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
