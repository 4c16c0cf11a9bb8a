//! The rollback dialog's own state: a typed confirmation. The operator types the production
//! database's name and a reason; only an exact match of the name lets it through, and then
//! `app::update` hands back one `Command::Rollback` (the executor runs the rollback plan at
//! its next safe point and journals it).

use tui_input::{Input, InputRequest};

/// A typed confirmation: `typed` is exactly `expected` (case and spaces count), and there
/// is something to match. The rollback dialog and the production gate's GO both use it.
pub fn name_matches(typed: &str, expected: &str) -> bool {
    !expected.is_empty() && typed == expected
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollbackField {
    #[default]
    Database,
    Reason,
}

impl RollbackField {
    pub const ALL: [RollbackField; 2] = [RollbackField::Database, RollbackField::Reason];

    pub fn label(self) -> &'static str {
        match self {
            RollbackField::Database => "Database",
            RollbackField::Reason => "Reason",
        }
    }
}

/// Why the dialog is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollbackOrigin {
    /// The operator pressed the rollback key.
    #[default]
    Manual,
    /// The console proposes it: the cutover window has been exceeded.
    WindowExceeded,
}

#[derive(Debug, Clone, Default)]
pub struct RollbackDialog {
    pub visible: bool,
    pub origin: RollbackOrigin,
    pub focus: RollbackField,
    /// The production database's name, as typed.
    pub database: Input,
    pub reason: Input,
    /// Why the last confirm was refused.
    pub error: Option<String>,
}

impl RollbackDialog {
    /// A fresh dialog (nothing typed survives a cancel), the reason filled in if given.
    pub fn open(&mut self, origin: RollbackOrigin, reason: &str) {
        *self = RollbackDialog {
            visible: true,
            origin,
            reason: Input::new(reason.to_string()),
            ..RollbackDialog::default()
        };
    }

    pub fn close(&mut self) {
        *self = RollbackDialog::default();
    }

    pub fn other_field(&mut self) {
        self.focus = match self.focus {
            RollbackField::Database => RollbackField::Reason,
            RollbackField::Reason => RollbackField::Database,
        };
    }

    pub fn input(&mut self, req: InputRequest) {
        match self.focus {
            RollbackField::Database => self.database.handle(req),
            RollbackField::Reason => self.reason.handle(req),
        };
        self.error = None;
    }

    pub fn field_input(&self, f: RollbackField) -> &Input {
        match f {
            RollbackField::Database => &self.database,
            RollbackField::Reason => &self.reason,
        }
    }

    /// The typed name is exactly the production database's name (case and spaces count).
    pub fn name_matches(&self, database: &str) -> bool {
        name_matches(self.database.value(), database)
    }

    /// `Ok` is the reason to send. `Err` says what is wrong and moves the focus there.
    pub fn validate(&mut self, database: &str) -> Result<String, String> {
        let refuse = |d: &mut RollbackDialog, field, msg: &str| {
            d.focus = field;
            d.error = Some(msg.to_string());
            Err(msg.to_string())
        };
        if !self.name_matches(database) {
            return refuse(
                self,
                RollbackField::Database,
                "The name typed is not the production database's name",
            );
        }
        let reason = self.reason.value().trim().to_string();
        if reason.is_empty() {
            return refuse(
                self,
                RollbackField::Reason,
                "Give a reason: it goes into the journal",
            );
        }
        Ok(reason)
    }
}
