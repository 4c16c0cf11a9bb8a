//! The skip dialog's own state: which pending step, who asks and why. `app::update` hands
//! back one `Command::Skip`; the executor journals the skip (`StepSkipped`) when the run
//! reaches the step. Which steps can be offered is `App::skip_candidates`.

use tui_input::{Input, InputRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SkipField {
    #[default]
    Step,
    Name,
    Reason,
}

impl SkipField {
    pub const ALL: [SkipField; 3] = [SkipField::Step, SkipField::Name, SkipField::Reason];

    pub fn label(self) -> &'static str {
        match self {
            SkipField::Step => "Step",
            SkipField::Name => "Name",
            SkipField::Reason => "Reason",
        }
    }
}

/// What the dialog sends once it validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipAsk {
    pub step: String,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct SkipDialog {
    pub visible: bool,
    pub focus: SkipField,
    /// The chosen step's id; kept by id because the candidates change as the run moves.
    pub step: Option<String>,
    pub name: Input,
    pub reason: Input,
    /// Why the last submit was refused.
    pub error: Option<String>,
}

impl SkipDialog {
    /// A fresh dialog (nothing typed survives a cancel), on the first candidate.
    pub fn open(&mut self, candidates: &[String]) {
        *self = SkipDialog {
            visible: true,
            step: candidates.first().cloned(),
            ..SkipDialog::default()
        };
    }

    pub fn close(&mut self) {
        *self = SkipDialog::default();
    }

    pub fn next_field(&mut self) {
        self.move_focus(1);
    }

    pub fn prev_field(&mut self) {
        self.move_focus(SkipField::ALL.len() - 1);
    }

    fn move_focus(&mut self, by: usize) {
        let at = SkipField::ALL
            .iter()
            .position(|f| *f == self.focus)
            .unwrap_or(0);
        self.focus = SkipField::ALL[(at + by) % SkipField::ALL.len()];
    }

    /// The chosen step if it is still a candidate, else the first candidate.
    pub fn chosen<'a>(&'a self, candidates: &'a [String]) -> Option<&'a String> {
        self.step
            .as_ref()
            .filter(|s| candidates.contains(s))
            .or_else(|| candidates.first())
    }

    /// ←/→ on the Step row: the previous or next candidate, wrapping around.
    pub fn cycle_step(&mut self, candidates: &[String], delta: isize) {
        if candidates.is_empty() {
            return;
        }
        let n = candidates.len() as isize;
        let at = self
            .step
            .as_ref()
            .and_then(|s| candidates.iter().position(|c| c == s))
            .map_or(0, |i| (i as isize + delta).rem_euclid(n));
        self.step = Some(candidates[at as usize].clone());
        self.error = None;
    }

    pub fn input(&mut self, req: InputRequest) {
        match self.focus {
            SkipField::Step => return,
            SkipField::Name => self.name.handle(req),
            SkipField::Reason => self.reason.handle(req),
        };
        self.error = None;
    }

    pub fn field_input(&self, f: SkipField) -> Option<&Input> {
        match f {
            SkipField::Step => None,
            SkipField::Name => Some(&self.name),
            SkipField::Reason => Some(&self.reason),
        }
    }

    /// `Ok` is the skip to send. `Err` says what is wrong and moves the focus there.
    pub fn validate(&mut self, candidates: &[String]) -> Result<SkipAsk, String> {
        let refuse = |d: &mut SkipDialog, field, msg: &str| {
            d.focus = field;
            d.error = Some(msg.to_string());
            Err(msg.to_string())
        };
        let Some(step) = self.chosen(candidates).cloned() else {
            return refuse(self, SkipField::Step, "No pending step can be skipped");
        };
        let name = self.name.value().trim().to_string();
        if name.is_empty() {
            return refuse(
                self,
                SkipField::Name,
                "Give your name: it goes into the journal",
            );
        }
        let reason = self.reason.value().trim().to_string();
        if reason.is_empty() {
            return refuse(
                self,
                SkipField::Reason,
                "Give a reason: it goes into the journal",
            );
        }
        Ok(SkipAsk { step, name, reason })
    }
}
