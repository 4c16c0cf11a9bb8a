//! The cutover window: when will the run finish, and until when can it still be rolled
//! back? Pure: it follows a run's journal records ([`WindowModel::apply`]) and answers for a
//! given clock and live progress ([`WindowModel::forecast`]). The executor (to journal
//! `WindowWarning` / `WindowExceeded`) and the console (the header's window clock) share it.
//!
//! # How the remaining time is estimated
//!
//! The projected finish is `now` plus the sum, over the run's steps, of:
//!
//! - a **finished** step (`StepFinished`, or listed by `RunResumed` as done): nothing;
//! - a **pending** step: its estimate. For the pipeline steps (`dry_run`, `load`) that is,
//!   per entity of the rehearsal's dry run, the rehearsal's time per row × this run's rows
//!   (from `ExtractRecorded` once known, else the entity's `expected_rows`, else the
//!   rehearsal's own rows); entities the rehearsal did not have add nothing. Without per-entity
//!   rates, and for every other step: the rehearsal's time for the same step id
//!   (`ForecastBasis.step_ms`), else the runbook's `planned`, else 0;
//! - the **running** step: what is left of it. A non-pipeline step: its estimate minus the
//!   time since its `StepStarted` (never below 0). A pipeline step, per entity: nothing once
//!   the entity is finished; once it has moved rows (the live progress snapshot's
//!   `max(read, loaded)` over its `elapsed_secs`), the rows it has left at that live rate
//!   (the forecast's basis is then [`Basis::Live`]); before that, its rehearsal estimate minus
//!   its elapsed time. A pipeline step with neither rehearsal rates nor live rows falls back
//!   to the non-pipeline rule.
//!
//! While the rollback runs (`RollbackStarted`), the projected finish is the rollback's start
//! plus the rollback estimate; once the run has finished (`RunFinished`) it is the finish.
//!
//! # The rollback estimate and the point of no return
//!
//! The point of no return is `window_end − rollback estimate`: the last moment a rollback
//! still fits in the window. The estimate is `ForecastBasis.rollback_ms`, which [`basis`]
//! takes from the runbook's `rollback.planned`, else twice the backup step's time in the
//! rehearsal, else twice its `planned`. When that figure is twice the backup time the basis
//! itself had (so it was derived, not planned) and this run has since measured its own
//! backup, twice this run's backup time replaces it. Without a basis: twice this run's
//! measured backup, else twice the backup's `planned`, else 0 (the point of no return is
//! then the end of the window).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::journal::events::{
    Event, Phase, ProgressSnapshot, Record, RowRate, StepInfo, StepStatus,
};
use crate::runbook::format::StepKind;
use crate::runbook::lint::parse_duration;

/// What the remaining-time estimate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Timings of the last rehearsal, scaled to this run's volumes.
    Rehearsal,
    /// The running pipeline step's live row rate.
    Live,
    /// The runbook's `planned` durations only (no rehearsal to go by).
    Planned,
}

impl Basis {
    pub fn word(self) -> &'static str {
        match self {
            Basis::Rehearsal => "rehearsal",
            Basis::Live => "live rate",
            Basis::Planned => "planned",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub window_end: DateTime<Utc>,
    pub projected_finish: DateTime<Utc>,
    /// `window_end` − the rollback estimate.
    pub point_of_no_return: DateTime<Utc>,
    /// `window_end − now` (negative once exceeded).
    pub left: Duration,
    /// `projected_finish > window_end`.
    pub overruns: bool,
    /// `now > point_of_no_return`.
    pub past_point_of_no_return: bool,
    /// `now > window_end`.
    pub exceeded: bool,
    /// What the remaining-time estimate came from.
    pub basis: Basis,
}

impl Forecast {
    /// How long the rollback is expected to take.
    pub fn rollback(&self) -> Duration {
        self.window_end - self.point_of_no_return
    }
}

#[derive(Debug, Clone)]
struct StepTrack {
    id: String,
    kind: StepKind,
    planned_ms: Option<u64>,
    started: Option<DateTime<Utc>>,
    done: bool,
}

#[derive(Debug, Clone, Default)]
struct BasisData {
    rehearsal_run: Option<String>,
    step_ms: BTreeMap<String, u64>,
    entity_rate: BTreeMap<String, RowRate>,
    rollback_ms: u64,
}

/// Follows a run's records; answers "when will we finish, and when must we decide".
#[derive(Debug, Clone, Default)]
pub struct WindowModel {
    window_end: Option<DateTime<Utc>>,
    steps: Vec<StepTrack>,
    basis: Option<BasisData>,
    /// Rows per entity in this run's extract.
    extract_rows: BTreeMap<String, u64>,
    /// `expected_rows` of each entity started in this run, and whether it finished.
    entities: BTreeMap<(Phase, String), (u64, bool)>,
    /// This run's backup step, as measured.
    backup_ms: Option<u64>,
    rollback_started: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn ms(d: Duration) -> u64 {
    d.num_milliseconds().max(0) as u64
}

/// `rows` at the pace of `rate` (the rate's own time when it has no rows to scale by).
fn scaled(rate: RowRate, rows: u64) -> u64 {
    if rate.rows == 0 {
        return rate.ms;
    }
    (rows as u128 * rate.ms as u128 / rate.rows as u128) as u64
}

fn pipeline_phase(kind: StepKind) -> Option<Phase> {
    match kind {
        StepKind::DryRun => Some(Phase::DryRun),
        StepKind::Load => Some(Phase::Load),
        _ => None,
    }
}

impl WindowModel {
    /// Take one record of the run (every record, in journal order).
    pub fn apply(&mut self, rec: &Record) {
        let ts = parse_ts(&rec.ts);
        match &rec.event {
            Event::RunStarted {
                steps, window_end, ..
            } => {
                self.window_end = window_end.as_deref().and_then(parse_ts);
                self.steps = steps.iter().map(track).collect();
            }
            Event::StepStarted { step } => {
                if let Some(s) = self.step_mut(step) {
                    s.started = ts;
                    s.done = false;
                }
            }
            Event::StepFinished {
                step,
                status,
                duration_ms,
                ..
            } => {
                let measured = matches!(status, StepStatus::Passed | StepStatus::Warned);
                if let Some(s) = self.step_mut(step) {
                    s.done = true;
                    if s.kind == StepKind::Backup && measured {
                        self.backup_ms = Some(*duration_ms);
                    }
                }
            }
            Event::RunResumed { completed, .. } => {
                for s in &mut self.steps {
                    // A step cut off mid-way starts again (a new StepStarted follows).
                    s.done = completed.contains(&s.id);
                    s.started = None;
                }
            }
            Event::ForecastBasis {
                rehearsal_run,
                step_ms,
                entity_rate,
                rollback_ms,
            } => {
                self.basis = Some(BasisData {
                    rehearsal_run: rehearsal_run.clone(),
                    step_ms: step_ms.clone(),
                    entity_rate: entity_rate.clone(),
                    rollback_ms: *rollback_ms,
                });
            }
            Event::ExtractRecorded { files, .. } => {
                self.extract_rows = files.iter().map(|f| (f.entity.clone(), f.rows)).collect();
            }
            Event::EntityStarted {
                phase,
                entity,
                expected_rows,
                ..
            } => {
                self.entities
                    .insert((*phase, entity.clone()), (*expected_rows, false));
            }
            Event::EntityFinished { phase, entity, .. } => {
                self.entities
                    .entry((*phase, entity.clone()))
                    .or_insert((0, false))
                    .1 = true;
            }
            Event::RollbackStarted { .. } => self.rollback_started = ts,
            Event::RunFinished { .. } => self.finished_at = ts,
            _ => {}
        }
    }

    /// Where the run stands against its window at `now`; `None` if the runbook has no window.
    pub fn forecast(&self, progress: &ProgressSnapshot, now: DateTime<Utc>) -> Option<Forecast> {
        let window_end = self.window_end?;
        let rollback = Duration::milliseconds(self.rollback_ms() as i64);
        let point_of_no_return = window_end - rollback;
        let mut basis = if self.rehearsal_run().is_some() {
            Basis::Rehearsal
        } else {
            Basis::Planned
        };
        let projected_finish = if let Some(t) = self.finished_at {
            t
        } else if let Some(t) = self.rollback_started {
            (t + rollback).max(now)
        } else {
            let (left, live) = self.remaining_ms(progress, now);
            if live {
                basis = Basis::Live;
            }
            now + Duration::milliseconds(left as i64)
        };
        Some(Forecast {
            window_end,
            projected_finish,
            point_of_no_return,
            left: window_end - now,
            overruns: projected_finish > window_end,
            past_point_of_no_return: now > point_of_no_return,
            exceeded: now > window_end,
            basis,
        })
    }

    /// The rehearsal run the estimates scale, if the projection starts from one.
    pub fn rehearsal_run(&self) -> Option<&str> {
        self.basis.as_ref()?.rehearsal_run.as_deref()
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepTrack> {
        self.steps.iter_mut().find(|s| s.id == id)
    }

    fn step_ms(&self, s: &StepTrack) -> Option<u64> {
        self.basis
            .as_ref()
            .and_then(|b| b.step_ms.get(&s.id).copied())
            .or(s.planned_ms)
    }

    fn rates(&self) -> Option<&BTreeMap<String, RowRate>> {
        self.basis
            .as_ref()
            .map(|b| &b.entity_rate)
            .filter(|r| !r.is_empty())
    }

    /// This run's rows of an entity, as far as they are known.
    fn rows(&self, entity: &str, rate: RowRate) -> u64 {
        if let Some(&n) = self.extract_rows.get(entity) {
            return n;
        }
        let started = [Phase::DryRun, Phase::Load]
            .iter()
            .filter_map(|p| self.entities.get(&(*p, entity.to_string())))
            .map(|(n, _)| *n)
            .max();
        started.filter(|n| *n > 0).unwrap_or(rate.rows)
    }

    /// A step's whole expected length, as if it had not started.
    fn estimate_ms(&self, s: &StepTrack) -> u64 {
        if pipeline_phase(s.kind).is_some()
            && let Some(rates) = self.rates()
        {
            return rates
                .iter()
                .map(|(e, r)| scaled(*r, self.rows(e, *r)))
                .sum();
        }
        self.step_ms(s).unwrap_or(0)
    }

    /// Milliseconds left for the whole run, and whether a live rate went into it.
    fn remaining_ms(&self, progress: &ProgressSnapshot, now: DateTime<Utc>) -> (u64, bool) {
        let mut total = 0u64;
        let mut live = false;
        for s in self.steps.iter().filter(|s| !s.done) {
            let Some(started) = s.started else {
                total += self.estimate_ms(s);
                continue;
            };
            let elapsed = ms(now - started);
            let by_entity = pipeline_phase(s.kind)
                .and_then(|phase| self.pipeline_remaining_ms(phase, progress));
            match by_entity {
                Some((left, l)) => {
                    total += left;
                    live |= l;
                }
                None => total += self.estimate_ms(s).saturating_sub(elapsed),
            }
        }
        (total, live)
    }

    /// What is left of a running pipeline step, entity by entity; `None` when neither the
    /// rehearsal nor the live progress says anything about its entities.
    fn pipeline_remaining_ms(
        &self,
        phase: Phase,
        progress: &ProgressSnapshot,
    ) -> Option<(u64, bool)> {
        let empty = BTreeMap::new();
        let rates = self.rates().unwrap_or(&empty);
        let here = |p: &&crate::journal::events::EntityProgress| p.phase == Some(phase);
        let moving = progress
            .iter()
            .filter(here)
            .any(|p| p.read.max(p.loaded) > 0 && p.elapsed_secs > 0.0);
        if rates.is_empty() && !moving {
            return None;
        }
        let names: BTreeSet<&String> = rates
            .keys()
            .chain(self.extract_rows.keys())
            .chain(
                self.entities
                    .keys()
                    .filter(|(p, _)| *p == phase)
                    .map(|(_, e)| e),
            )
            .chain(progress.iter().filter(here).map(|p| &p.entity))
            .collect();
        let mut total = 0u64;
        let mut live = false;
        for name in names {
            let finished = self
                .entities
                .get(&(phase, name.clone()))
                .is_some_and(|(_, done)| *done);
            let p = progress.iter().filter(here).find(|p| &p.entity == name);
            if finished || p.is_some_and(|p| p.done) {
                continue;
            }
            let rate = rates.get(name).copied();
            let moved = p.map_or(0, |p| p.read.max(p.loaded));
            match p {
                Some(p) if moved > 0 && p.elapsed_secs > 0.0 => {
                    let rows = if p.expected > 0 {
                        p.expected
                    } else {
                        self.rows(name, rate.unwrap_or_default())
                    };
                    let left = rows.saturating_sub(moved) as f64;
                    total += (left * p.elapsed_secs * 1000.0 / moved as f64).round() as u64;
                    live = true;
                }
                _ => {
                    if let Some(r) = rate {
                        let elapsed = p.map_or(0, |p| (p.elapsed_secs * 1000.0) as u64);
                        total += scaled(r, self.rows(name, r)).saturating_sub(elapsed);
                    }
                }
            }
        }
        Some((total, live))
    }

    fn rollback_ms(&self) -> u64 {
        let backup = self.steps.iter().find(|s| s.kind == StepKind::Backup);
        // The backup figure the basis had: the rehearsal's measure, else the plan.
        let basis_backup = backup.and_then(|s| self.step_ms(s));
        if let Some(b) = &self.basis
            && b.rollback_ms > 0
        {
            let derived = basis_backup.is_some_and(|x| x.saturating_mul(2) == b.rollback_ms);
            if !(derived && self.backup_ms.is_some()) {
                return b.rollback_ms;
            }
        }
        self.backup_ms
            .or(basis_backup)
            .map_or(0, |x| x.saturating_mul(2))
    }
}

fn track(s: &StepInfo) -> StepTrack {
    StepTrack {
        id: s.id.clone(),
        kind: s.kind,
        planned_ms: s.planned_secs.map(|x| x.saturating_mul(1000)),
        started: None,
        done: false,
    }
}

/// The `ForecastBasis` event for a new run: timings of the newest completed rehearsal of the
/// same runbook (its run id and records, or `None` if there was none) plus the rollback
/// estimate (`rollback.planned`, else twice the backup step's rehearsal time, else twice its
/// `planned`, else 0). Step times are those of steps that passed or warned; entity rates
/// are rows in the file over the time of each entity's dry run.
pub fn basis(plan: &crate::runbook::Plan, rehearsal: Option<(&str, &[Record])>) -> Event {
    let mut step_ms = BTreeMap::new();
    let mut entity_rate = BTreeMap::new();
    for r in rehearsal.map_or(&[][..], |(_, recs)| recs) {
        match &r.event {
            Event::StepFinished {
                step,
                status: StepStatus::Passed | StepStatus::Warned,
                duration_ms,
                ..
            } => {
                step_ms.insert(step.clone(), *duration_ms);
            }
            Event::EntityFinished {
                phase: Phase::DryRun,
                entity,
                counts,
                duration_ms,
                ..
            } => {
                let rows = if counts.in_file > 0 {
                    counts.in_file
                } else {
                    counts.in_scope
                };
                entity_rate.insert(
                    entity.clone(),
                    RowRate {
                        rows,
                        ms: *duration_ms,
                    },
                );
            }
            _ => {}
        }
    }
    let planned = |s: &str| parse_duration(s).map(|d| d.as_millis() as u64);
    let backup_ms = plan
        .rb
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Backup)
        .and_then(|s| {
            step_ms
                .get(&s.id)
                .copied()
                .or_else(|| s.planned.as_deref().and_then(planned))
        });
    let rollback_ms = plan
        .rb
        .rollback
        .planned
        .as_deref()
        .and_then(planned)
        .or(backup_ms.map(|b| b.saturating_mul(2)))
        .unwrap_or(0);
    Event::ForecastBasis {
        rehearsal_run: rehearsal.map(|(id, _)| id.to_string()),
        step_ms,
        entity_rate,
        rollback_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::{load_progress as progress, now, rec};
    use crate::journal::events::{EntityCounts, ExtractFile, Outcome};

    const MIN: u64 = 60_000;

    fn step(id: &str, kind: StepKind, planned_min: Option<u64>) -> StepInfo {
        StepInfo {
            id: id.into(),
            kind,
            title: id.into(),
            planned_secs: planned_min.map(|m| m * 60),
        }
    }

    /// backup 10m, freeze 2m, extract 15m, load 30m, verify (no plan); window ends 12:00.
    fn started(window_end: Option<&str>) -> Event {
        Event::RunStarted {
            run_id: "r".into(),
            mode: crate::journal::events::RunMode::Run,
            runbook_path: "rb.toml".into(),
            runbook_name: "rb".into(),
            runbook_sha256: String::new(),
            steps: vec![
                step("backup", StepKind::Backup, Some(10)),
                step("freeze", StepKind::Freeze, Some(2)),
                step("extract", StepKind::Extract, Some(15)),
                step("load", StepKind::Load, Some(30)),
                step("verify", StepKind::Verify, None),
            ],
            vars: BTreeMap::new(),
            tool_version: "test".into(),
            artifacts_dir: "runs".into(),
            environments: vec![],
            window_end: window_end.map(|t| format!("2026-11-21T{t}Z")),
        }
    }

    fn model(events: Vec<(&str, Event)>) -> WindowModel {
        let mut m = WindowModel::default();
        for (i, (hms, e)) in events.into_iter().enumerate() {
            m.apply(&rec(i as i64 + 1, hms, e));
        }
        m
    }

    fn step_started(id: &str) -> Event {
        Event::StepStarted { step: id.into() }
    }

    fn step_finished(id: &str, minutes: u64) -> Event {
        Event::StepFinished {
            step: id.into(),
            status: StepStatus::Passed,
            message: String::new(),
            duration_ms: minutes * MIN,
        }
    }

    fn rehearsal_basis(rollback_ms: u64) -> Event {
        Event::ForecastBasis {
            rehearsal_run: Some("rehearsal-1".into()),
            // The rehearsal extracted in 5m; it had no backup.
            step_ms: [("extract".to_string(), 5 * MIN)].into(),
            // 1,000 rows in 10m, and 100 rows in 1m.
            entity_rate: [
                (
                    "invoices".to_string(),
                    RowRate {
                        rows: 1_000,
                        ms: 10 * MIN,
                    },
                ),
                ("partners".to_string(), RowRate { rows: 100, ms: MIN }),
            ]
            .into(),
            rollback_ms,
        }
    }

    fn extract(invoices: u64, partners: u64) -> Event {
        let file = |entity: &str, rows| ExtractFile {
            entity: entity.into(),
            path: format!("{entity}.csv"),
            rows,
            sha256: String::new(),
        };
        Event::ExtractRecorded {
            manifest: "manifest.json".into(),
            files: vec![file("invoices", invoices), file("partners", partners)],
        }
    }

    fn at(hms: &str) -> DateTime<Utc> {
        now(hms)
    }

    #[test]
    fn no_window_no_forecast() {
        let m = model(vec![("10:00:00", started(None))]);
        assert_eq!(m.forecast(&vec![], at("10:00:00")), None);
    }

    #[test]
    fn planned_durations_without_a_rehearsal() {
        let m = model(vec![("10:00:00", started(Some("12:00:00")))]);
        let f = m.forecast(&vec![], at("10:00:00")).unwrap();
        // 10 + 2 + 15 + 30 + 0 minutes.
        assert_eq!(f.projected_finish, at("10:57:00"));
        assert_eq!(f.basis, Basis::Planned);
        // Rollback: twice the backup's planned 10m.
        assert_eq!(f.point_of_no_return, at("11:40:00"));
        assert_eq!(f.rollback(), Duration::minutes(20));
        assert_eq!(f.left, Duration::hours(2));
        assert!(!f.overruns && !f.past_point_of_no_return && !f.exceeded);
    }

    #[test]
    fn finished_steps_are_done_and_the_running_step_counts_what_is_left() {
        let m = model(vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", step_started("backup")),
            // Took 4m instead of 10m: only its actual time has passed, nothing is left.
            ("10:04:00", step_finished("backup", 4)),
            ("10:04:00", step_started("freeze")),
        ]);
        // Freeze planned 2m, running for 1m: 1m left, then extract 15 + load 30.
        let f = m.forecast(&vec![], at("10:05:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:51:00"));
        // A running step past its estimate has nothing left (never negative).
        let f = m.forecast(&vec![], at("10:10:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:55:00"));
        // This run's backup (4m) now gives the rollback estimate: 8m.
        assert_eq!(f.point_of_no_return, at("11:52:00"));
    }

    #[test]
    fn rehearsal_timings_scaled_to_this_runs_volumes() {
        let mut events = vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", rehearsal_basis(0)),
        ];
        let m = model(events.clone());
        let f = m.forecast(&vec![], at("10:00:00")).unwrap();
        // backup 10 (planned) + freeze 2 (planned) + extract 5 (rehearsal) + load at the
        // rehearsal's own volumes 10 + 1.
        assert_eq!(f.projected_finish, at("10:28:00"));
        assert_eq!(f.basis, Basis::Rehearsal);

        // This run extracts three times the invoices and twice the partners: 30 + 2.
        events.push(("10:00:00", extract(3_000, 200)));
        let m = model(events);
        let f = m.forecast(&vec![], at("10:00:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:49:00"));
    }

    #[test]
    fn live_rate_replaces_the_rehearsal_once_rows_move() {
        let m = model(vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", rehearsal_basis(0)),
            ("10:00:00", step_started("backup")),
            ("10:10:00", step_finished("backup", 10)),
            ("10:10:00", step_started("freeze")),
            ("10:12:00", step_finished("freeze", 2)),
            ("10:12:00", step_started("extract")),
            ("10:17:00", extract(3_000, 200)),
            ("10:17:00", step_finished("extract", 5)),
            ("10:17:00", step_started("load")),
            (
                "10:17:00",
                Event::EntityStarted {
                    phase: Phase::Load,
                    entity: "partners".into(),
                    table: "res_partner".into(),
                    expected_rows: 200,
                },
            ),
            (
                "10:19:00",
                Event::EntityFinished {
                    phase: Phase::Load,
                    entity: "partners".into(),
                    counts: EntityCounts::default(),
                    reject_file: String::new(),
                    sums: BTreeMap::new(),
                    duration_ms: 2 * MIN,
                },
            ),
            (
                "10:19:00",
                Event::EntityStarted {
                    phase: Phase::Load,
                    entity: "invoices".into(),
                    table: "account_move".into(),
                    expected_rows: 3_000,
                },
            ),
        ]);
        // Invoices started but no rows yet: the rehearsal's 30m less the 1m it has run.
        let waiting = vec![progress("invoices", 3_000, 0, 60.0)];
        let f = m.forecast(&waiting, at("10:20:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:49:00"));
        assert_eq!(f.basis, Basis::Rehearsal);

        // 1,000 rows in 5m: 2,000 rows left at that pace is 10m. Partners is done.
        let moving = vec![progress("invoices", 3_000, 1_000, 300.0)];
        let f = m.forecast(&moving, at("10:24:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:34:00"));
        assert_eq!(f.basis, Basis::Live);

        // A snapshot from another phase says nothing about this one.
        let mut other = progress("invoices", 3_000, 1_000, 300.0);
        other.phase = Some(Phase::DryRun);
        let f = m.forecast(&vec![other], at("10:24:00")).unwrap();
        assert_eq!(f.basis, Basis::Rehearsal);
    }

    #[test]
    fn live_rate_without_a_rehearsal() {
        let m = model(vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", step_started("load")),
        ]);
        // Before rows move: the planned 30m less 10m gone, then backup 10, freeze 2, extract 15.
        let f = m.forecast(&vec![], at("10:10:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:57:00"));
        assert_eq!(f.basis, Basis::Planned);
        // 100 rows a minute, 500 left: 5m, plus the 27m of pending steps.
        let p = vec![progress("invoices", 1_500, 1_000, 600.0)];
        let f = m.forecast(&p, at("10:10:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:42:00"));
        assert_eq!(f.basis, Basis::Live);
    }

    #[test]
    fn overrun_point_of_no_return_and_exceeded() {
        let m = model(vec![
            ("10:00:00", started(Some("11:00:00"))),
            ("10:00:00", step_started("backup")),
        ]);
        // The backup has run 30m of its planned 10m: nothing left of it, then 2 + 15 + 30m.
        let f = m.forecast(&vec![], at("10:30:00")).unwrap();
        assert_eq!(f.projected_finish, at("11:17:00"));
        assert!(f.overruns);
        assert_eq!(f.point_of_no_return, at("10:40:00"));
        assert!(!f.past_point_of_no_return && !f.exceeded);
        let f = m.forecast(&vec![], at("10:41:00")).unwrap();
        assert!(f.past_point_of_no_return && !f.exceeded);
        let f = m.forecast(&vec![], at("11:05:00")).unwrap();
        assert!(f.exceeded && f.past_point_of_no_return);
        assert_eq!(f.left, Duration::minutes(-5));
    }

    #[test]
    fn rollback_estimate_planned_wins_over_the_backup() {
        let events = vec![
            ("10:00:00", started(Some("12:00:00"))),
            // rollback.planned = 45m.
            ("10:00:00", rehearsal_basis(45 * MIN)),
            ("10:00:00", step_started("backup")),
            ("10:04:00", step_finished("backup", 4)),
        ];
        let f = model(events).forecast(&vec![], at("10:05:00")).unwrap();
        assert_eq!(f.rollback(), Duration::minutes(45));

        // A basis derived from the backup's plan (2 × 10m) gives way to this run's backup.
        let events = vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", rehearsal_basis(20 * MIN)),
        ];
        let mut m = model(events);
        assert_eq!(
            m.forecast(&vec![], at("10:00:00")).unwrap().rollback(),
            Duration::minutes(20)
        );
        m.apply(&rec(9, "10:07:00", step_finished("backup", 7)));
        assert_eq!(
            m.forecast(&vec![], at("10:07:00")).unwrap().rollback(),
            Duration::minutes(14)
        );
    }

    #[test]
    fn resumed_run_skips_completed_steps_and_restarts_the_cut_one() {
        let m = model(vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", step_started("backup")),
            ("10:10:00", step_finished("backup", 10)),
            ("10:10:00", step_started("freeze")),
            (
                "10:30:00",
                Event::RunResumed {
                    runbook_sha256: String::new(),
                    completed: vec!["backup".into()],
                },
            ),
        ]);
        // freeze 2 (pending again) + extract 15 + load 30.
        let f = m.forecast(&vec![], at("10:30:00")).unwrap();
        assert_eq!(f.projected_finish, at("11:17:00"));
    }

    #[test]
    fn rolling_back_and_finished() {
        let mut m = model(vec![
            ("10:00:00", started(Some("12:00:00"))),
            ("10:00:00", step_started("backup")),
            ("10:06:00", step_finished("backup", 6)),
            (
                "10:20:00",
                Event::RollbackStarted {
                    reason: "operator".into(),
                },
            ),
        ]);
        // Rollback estimate 12m from 10:20.
        let f = m.forecast(&vec![], at("10:25:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:32:00"));
        // Late rollback: never in the past.
        let f = m.forecast(&vec![], at("10:40:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:40:00"));
        m.apply(&rec(
            9,
            "10:45:00",
            Event::RunFinished {
                outcome: Outcome::RolledBack,
                exit_code: 6,
                message: String::new(),
            },
        ));
        let f = m.forecast(&vec![], at("11:30:00")).unwrap();
        assert_eq!(f.projected_finish, at("10:45:00"));
        assert!(!f.overruns);
    }

    fn plan(rollback_planned: Option<&str>) -> crate::runbook::Plan {
        let rollback = rollback_planned
            .map(|p| format!("[rollback]\nplanned = \"{p}\"\n"))
            .unwrap_or_default();
        let text = format!(
            r#"
[runbook]
name = "t"
[environments.production]
url = "sqlite:p.db"
production = true
[entities]
[[steps]]
id = "bk"
kind = "backup"
env = "production"
planned = "10m"
[[steps]]
id = "extract"
kind = "extract"
{rollback}"#
        );
        let rb: crate::runbook::Runbook = toml::from_str(&text).unwrap();
        crate::runbook::Plan {
            path: "t.toml".into(),
            dir: ".".into(),
            sha256: String::new(),
            rb,
            vars: Default::default(),
            envs: Default::default(),
            order: vec![],
            deps: Default::default(),
            extract_dir: ".".into(),
            backup_dir: ".".into(),
        }
    }

    #[test]
    fn basis_from_the_rehearsal_records() {
        let counts = |in_file, in_scope| EntityCounts {
            in_file,
            in_scope,
            ..EntityCounts::default()
        };
        let entity = |phase, name: &str, c, ms| Event::EntityFinished {
            phase,
            entity: name.into(),
            counts: c,
            reject_file: String::new(),
            sums: BTreeMap::new(),
            duration_ms: ms,
        };
        let failed = Event::StepFinished {
            step: "validate".into(),
            status: StepStatus::Failed,
            message: String::new(),
            duration_ms: 1,
        };
        let recs: Vec<Record> = [
            step_finished("extract", 5),
            entity(Phase::DryRun, "invoices", counts(1_000, 900), 10 * MIN),
            entity(Phase::DryRun, "partners", counts(0, 100), MIN),
            entity(Phase::Load, "invoices", counts(1, 1), 1),
            failed,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| rec(i as i64, "09:00:00", e))
        .collect();

        let Event::ForecastBasis {
            rehearsal_run,
            step_ms,
            entity_rate,
            rollback_ms,
        } = basis(&plan(None), Some(("reh-1", &recs)))
        else {
            panic!("not a ForecastBasis");
        };
        assert_eq!(rehearsal_run.as_deref(), Some("reh-1"));
        assert_eq!(step_ms, [("extract".to_string(), 5 * MIN)].into());
        assert_eq!(
            entity_rate,
            [
                (
                    "invoices".to_string(),
                    RowRate {
                        rows: 1_000,
                        ms: 10 * MIN
                    }
                ),
                ("partners".to_string(), RowRate { rows: 100, ms: MIN }),
            ]
            .into()
        );
        // No backup in the rehearsal: twice the backup's planned 10m.
        assert_eq!(rollback_ms, 20 * MIN);

        // rollback.planned wins; a rehearsal's measured backup beats the plan.
        let Event::ForecastBasis { rollback_ms, .. } = basis(&plan(Some("45m")), None) else {
            panic!()
        };
        assert_eq!(rollback_ms, 45 * MIN);
        let with_backup = vec![rec(1, "09:00:00", step_finished("bk", 3))];
        let Event::ForecastBasis {
            rollback_ms,
            rehearsal_run,
            ..
        } = basis(&plan(None), Some(("reh-2", &with_backup)))
        else {
            panic!()
        };
        assert_eq!(
            (rollback_ms, rehearsal_run.as_deref()),
            (6 * MIN, Some("reh-2"))
        );
    }
}
