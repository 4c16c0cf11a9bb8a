//! The extract step: the legacy tables to CSV (or the supplied files verified), derived
//! entities written beside them, and the manifest journaled.

use std::path::PathBuf;

use anyhow::Context;

use super::{Executor, StepDone, Stop, done, explain};
use crate::db::Db;
use crate::journal::events::*;
use crate::sources::csv::{count_records, sha256_file};

impl Executor {
    /// What the extract reads: each entity's table and its lines' table (not derived ones).
    fn sources(&self) -> Vec<crate::runbook::format::SourceFile> {
        self.plan
            .order
            .iter()
            .filter(|n| !self.derived(n))
            .flat_map(|n| self.plan.rb.entities[n].source_files(n))
            .collect()
    }

    pub(super) async fn extract(&mut self, step: &str, env: &str) -> Result<StepDone, Stop> {
        // Resuming checked the recorded files are unchanged.
        if self.prior_view.extract.is_some() {
            return done(StepStatus::Passed, "recorded before the interruption");
        }
        let mut files = Vec::new();
        let manifest = self.run_dir.join("extract").join("manifest.json");
        std::fs::create_dir_all(manifest.parent().unwrap_or(&self.run_dir))
            .context("creating the extract folder")?;
        match self.plan.env(env) {
            None => {
                // CSV extracts supplied: verify and record them where they are.
                for src in self.sources() {
                    let p = self.plan.extract_dir.join(&src.file);
                    if !p.exists() {
                        return Err(Stop::Failed(anyhow::anyhow!(
                            "extract file {} is missing (extract_dir = {}); pass --var extract_dir=DIR",
                            p.display(),
                            self.plan.extract_dir.display()
                        )));
                    }
                    let p2 = p.clone();
                    let rows = tokio::task::spawn_blocking(move || count_records(&p2))
                        .await
                        .context("count")??;
                    let (sha, _) = sha256_file(&p)?;
                    files.push(ExtractFile {
                        entity: src.name,
                        path: p.display().to_string(),
                        rows,
                        sha256: sha,
                    });
                }
            }
            Some(e) => {
                let e = e.clone();
                let policy =
                    crate::engine::retry::RetryPolicy::from_settings(&self.plan.rb.settings);
                for src in self.sources() {
                    let n = &src.name;
                    let out = self.run_dir.join("extract").join(&src.file);
                    let table = &src.table;
                    // A lost connection or a restarting server: the table is read again
                    // from the start (the file is rewritten), like a load's batch.
                    let mut attempt = 0;
                    let rows = loop {
                        let r = async {
                            let db = Db::connect(&e).await?;
                            let r = db.table_to_csv(table, &src.columns, &out).await;
                            db.close().await;
                            r
                        }
                        .await;
                        match r {
                            Ok(r) => break r,
                            Err(err)
                                if attempt < policy.max
                                    && crate::db::errors::is_transient(&err) =>
                            {
                                attempt += 1;
                                let delay = policy.delay(attempt);
                                tracing::warn!(entity = %n, attempt, error = %explain(&err), "transient fault; extracting the table again");
                                self.emit(Event::RetryScheduled {
                                    step: step.into(),
                                    entity: n.clone(),
                                    attempt,
                                    max_attempts: policy.max,
                                    delay_ms: delay.as_millis() as u64,
                                    error: explain(&err),
                                })
                                .await?;
                                tokio::time::sleep(delay).await;
                            }
                            Err(err) => return Err(err.into()),
                        }
                    };
                    let (sha, _) = sha256_file(&out)?;
                    files.push(ExtractFile {
                        entity: n.clone(),
                        path: out.display().to_string(),
                        rows,
                        sha256: sha,
                    });
                }
            }
        }
        // Derived entities: the distinct values of their source's extract, as a file of
        // their own in the run's extract folder.
        for n in self.plan.order.iter().filter(|n| self.derived(n)) {
            let ent = &self.plan.rb.entities[n];
            let Some(d) = ent.derive.clone() else {
                continue;
            };
            let from = files
                .iter()
                .find(|f| f.entity == d.from)
                .map(|f| PathBuf::from(&f.path))
                .with_context(|| {
                    format!("{n} is derived from {}, which was not extracted", d.from)
                })?;
            let rules = crate::engine::rules::Compiled::new(
                &d.from,
                &self.plan.rb.entities[&d.from],
                &self.plan.rb.entities,
            )?;
            let out = self.run_dir.join("extract").join(&ent.source.file);
            let out2 = out.clone();
            let rows = tokio::task::spawn_blocking(move || {
                crate::engine::derive::write_distinct(&rules, &from, &d.distinct, &out2)
            })
            .await
            .context("derive")??;
            let (sha, _) = sha256_file(&out)?;
            files.push(ExtractFile {
                entity: n.clone(),
                path: out.display().to_string(),
                rows,
                sha256: sha,
            });
        }
        std::fs::write(
            &manifest,
            serde_json::to_string_pretty(&files).context("manifest")?,
        )
        .with_context(|| format!("writing {}", manifest.display()))?;
        let summary = files
            .iter()
            .map(|f| format!("{} {}", f.entity, f.rows))
            .collect::<Vec<_>>()
            .join(", ");
        self.emit(Event::ExtractRecorded {
            manifest: manifest.display().to_string(),
            files,
        })
        .await?;
        done(
            StepStatus::Passed,
            format!("{summary}; manifest {}", manifest.display()),
        )
    }
}
