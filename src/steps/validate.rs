//! The validate and verify steps: the reconciliation checks against the phase's evidence.

use std::collections::BTreeMap;

use super::{Executor, StepDone, Stop, done, exit, odoo};
use crate::journal::events::*;
use crate::reconcile::{EntityEvidence, run_checks};
use crate::runview::RunView;

impl Executor {
    pub(super) async fn validate(
        &mut self,
        step: &str,
        phase: Phase,
        env: &str,
    ) -> Result<StepDone, Stop> {
        let view = RunView::of(&self.journal.run_records(&self.run_id).await?);
        let evidence: BTreeMap<String, EntityEvidence> = view
            .phases
            .get(&phase)
            .map(|m| {
                m.iter()
                    .map(|(entity, r)| {
                        (
                            entity.clone(),
                            EntityEvidence {
                                counts: r.counts.clone(),
                                sums: r.sums.clone(),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if evidence.is_empty() {
            return Err(Stop::Failed(anyhow::anyhow!(
                "nothing to reconcile: no {phase:?} has run in this run"
            )));
        }
        let db = odoo::open(&self.plan, self.env(env)?).await?;
        let results = run_checks(&self.plan, db.as_ref(), &evidence).await;
        db.close().await;
        let results = results?;
        let fails = results
            .iter()
            .filter(|r| r.status == CheckStatus::Fail)
            .count();
        let warns = results
            .iter()
            .filter(|r| r.status == CheckStatus::Warn)
            .count();
        for r in &results {
            self.emit(Event::CheckRecorded {
                step: step.into(),
                result: r.clone(),
            })
            .await?;
        }
        let msg = format!(
            "{} checks: {} pass, {warns} warn, {fails} fail",
            results.len(),
            results.len() - fails - warns
        );
        if fails > 0 {
            return Err(Stop::Outcome(
                Outcome::ValidationFailed,
                exit::RECONCILIATION_FAILED,
                msg,
            ));
        }
        done(
            if warns > 0 {
                StepStatus::Warned
            } else {
                StepStatus::Passed
            },
            msg,
        )
    }
}
