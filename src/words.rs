//! Journal states in glyphs and words, and how each should feel (a [`Tone`]): the one
//! vocabulary the console, the event descriptions and the headless lines share. Plain
//! values over the journal's events, below everything that shows them.

use crate::journal::events::{CheckStatus, Decision, Outcome, Phase, StepStatus};

/// How a thing should feel on screen. Views map it to a style; the glyph and word carry
/// the meaning on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Active,
    Good,
    Warn,
    Bad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Passed,
    Warned,
    Failed,
    WaitingSignOff,
    Skipped,
    RolledBack,
}

impl StepState {
    pub fn glyph(self) -> &'static str {
        match self {
            StepState::Pending => "·",
            StepState::Running => "▶",
            StepState::Passed => "✓",
            StepState::Warned => "!",
            StepState::Failed => "✗",
            StepState::WaitingSignOff => "?",
            StepState::Skipped => "-",
            StepState::RolledBack => "↺",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Passed => "passed",
            StepState::Warned => "warned",
            StepState::Failed => "failed",
            StepState::WaitingSignOff => "sign-off",
            StepState::Skipped => "skipped",
            StepState::RolledBack => "rolled back",
        }
    }

    pub fn tone(self) -> Tone {
        match self {
            StepState::Pending | StepState::Skipped => Tone::Neutral,
            StepState::Running | StepState::WaitingSignOff => Tone::Active,
            StepState::Passed => Tone::Good,
            StepState::Warned | StepState::RolledBack => Tone::Warn,
            StepState::Failed => Tone::Bad,
        }
    }
}

impl From<StepStatus> for StepState {
    fn from(s: StepStatus) -> Self {
        match s {
            StepStatus::Passed => StepState::Passed,
            StepStatus::Warned => StepState::Warned,
            StepStatus::Failed => StepState::Failed,
            StepStatus::Skipped => StepState::Skipped,
            StepStatus::RolledBack => StepState::RolledBack,
        }
    }
}

pub fn check_glyph_word(s: CheckStatus) -> (&'static str, &'static str, Tone) {
    match s {
        CheckStatus::Pass => ("✓", "pass", Tone::Good),
        CheckStatus::Warn => ("!", "warn", Tone::Warn),
        CheckStatus::Fail => ("✗", "FAIL", Tone::Bad),
    }
}

pub fn decision_glyph_word(d: Decision) -> (&'static str, &'static str, Tone) {
    match d {
        Decision::Go => ("✓", "GO", Tone::Good),
        Decision::NoGo => ("✗", "NO-GO", Tone::Bad),
    }
}

pub fn outcome_glyph_word(o: Outcome) -> (&'static str, &'static str, Tone) {
    match o {
        Outcome::Completed => ("✓", "COMPLETED", Tone::Good),
        Outcome::StoppedAfterStep => ("■", "STOPPED", Tone::Warn),
        Outcome::ValidationFailed => ("✗", "VALIDATION FAILED", Tone::Bad),
        Outcome::WaitingAtGate => ("?", "WAITING AT GATE", Tone::Warn),
        Outcome::NoGo => ("✗", "NO-GO", Tone::Bad),
        Outcome::RolledBack => ("↺", "ROLLED BACK", Tone::Warn),
        Outcome::Failed => ("✗", "FAILED", Tone::Bad),
    }
}

pub fn phase_word(p: Option<Phase>) -> &'static str {
    match p {
        Some(Phase::DryRun) => "dry-run",
        Some(Phase::Load) => "load",
        None => "",
    }
}
