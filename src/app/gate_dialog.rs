//! The sign-off dialog's own state. Like gitui's confirm popup it decides nothing: on a
//! valid submit it hands back one `SignOff` and the engine (through the journal) decides.
//! When the gate lets a load into production, a GO also needs the production database's
//! name typed exactly (the rollback dialog's typed confirmation); a NO-GO, and a GO that
//! overrides a NO-GO recommendation, always need a reason in the comment.

use tui_input::{Input, InputRequest};

use crate::control::SignOff;
use crate::journal::events::Decision;

use super::model::GateState;
use super::rollback_dialog::name_matches;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Role,
    Comment,
    Decision,
    /// The production database's name, typed to confirm a GO (production gates only).
    Database,
    /// An `ssh-keygen -Y sign -n cutover` signature file (gates with keyed approvers only).
    Signature,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::Name,
        Field::Role,
        Field::Comment,
        Field::Decision,
        Field::Signature,
        Field::Database,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Role => "Role",
            Field::Comment => "Comment",
            Field::Decision => "Decision",
            Field::Database => "Database",
            Field::Signature => "Signature",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GateDialog {
    pub visible: bool,
    pub focus: Option<Field>,
    pub name: Input,
    pub role: Input,
    pub comment: Input,
    /// No default: the person must choose GO or NO-GO.
    pub decision: Option<Decision>,
    /// The production database's name typed to confirm a GO.
    pub database: Input,
    /// What must be typed in `database` for a GO: set when the gate lets a load into
    /// production, `None` otherwise (the field is then not shown or visited).
    pub confirm_name: Option<String>,
    /// The path of a signature file over the evidence hash.
    pub signature: Input,
    /// Some approver of the gate has an SSH key: the Signature field is shown.
    pub keyed: bool,
    /// With a NO-GO: keep the legacy frozen (to fix data and rehearse again) instead of
    /// reopening it; the comment is journaled as the reason.
    pub hold_freeze: bool,
    /// Why the last submit was refused.
    pub error: Option<String>,
    /// First row of the information block shown, when it does not fit the screen.
    pub scroll: u16,
    /// The furthest `scroll` can go, as the last frame measured it (the view knows the
    /// wrapped height; the keys only move within it).
    pub scroll_max: std::cell::Cell<u16>,
}

impl GateDialog {
    pub fn focus(&self) -> Field {
        self.focus.unwrap_or(Field::Name)
    }

    /// Fresh dialog for a newly opened gate; `confirm_name` is the production database's
    /// name when a GO here lets a load into production; `keyed` when some approver signs
    /// with an SSH key.
    pub fn open_fresh(&mut self, confirm_name: Option<String>, keyed: bool) {
        *self = GateDialog {
            visible: true,
            confirm_name,
            keyed,
            ..GateDialog::default()
        };
    }

    /// Cleared for the next approver, still open, still asking for the same confirmation.
    pub fn clear(&mut self) {
        let confirm_name = self.confirm_name.take();
        self.open_fresh(confirm_name, self.keyed);
    }

    /// The fields this gate's dialog has, in Tab order.
    pub fn fields(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| match f {
                Field::Signature => self.keyed,
                Field::Database => self.confirm_name.is_some(),
                _ => true,
            })
            .collect()
    }

    fn step_field(&mut self, by: usize) {
        let fields = self.fields();
        let at = fields.iter().position(|f| *f == self.focus()).unwrap_or(0);
        self.focus = Some(fields[(at + by) % fields.len()]);
    }

    pub fn next_field(&mut self) {
        self.step_field(1);
    }

    pub fn prev_field(&mut self) {
        self.step_field(self.fields().len() - 1);
    }

    /// The typed name is exactly the production database's (always true where none is asked).
    pub fn database_matches(&self) -> bool {
        self.confirm_name
            .as_deref()
            .is_none_or(|n| name_matches(self.database.value(), n))
    }

    pub fn input(&mut self, req: InputRequest) {
        let target = match self.focus() {
            Field::Name => &mut self.name,
            Field::Role => &mut self.role,
            Field::Comment => &mut self.comment,
            Field::Database => &mut self.database,
            Field::Signature => &mut self.signature,
            Field::Decision => return,
        };
        target.handle(req);
        self.error = None;
    }

    pub fn field_input(&self, f: Field) -> Option<&Input> {
        match f {
            Field::Name => Some(&self.name),
            Field::Role => Some(&self.role),
            Field::Comment => Some(&self.comment),
            Field::Database => Some(&self.database),
            Field::Signature => Some(&self.signature),
            Field::Decision => None,
        }
    }

    /// PgUp / PgDn: move the information block by `rows`, within what the last frame showed.
    pub fn scroll_by(&mut self, rows: isize) {
        let max = self.scroll_max.get() as isize;
        self.scroll = (self.scroll as isize + rows).clamp(0, max) as u16;
    }

    pub fn toggle_decision(&mut self) {
        self.decision = Some(match self.decision {
            Some(Decision::Go) => Decision::NoGo,
            Some(Decision::NoGo) | None => Decision::Go,
        });
        self.error = None;
    }

    /// Check the fields; `Ok` is the one sign-off to send. `Err` says what is missing and
    /// moves the focus there.
    pub fn validate(&mut self, gate: &GateState) -> Result<SignOff, String> {
        let name = self.name.value().trim().to_string();
        let role = self.role.value().trim().to_string();
        let comment = self.comment.value().trim().to_string();
        let refuse = |dialog: &mut GateDialog, field: Field, msg: String| {
            dialog.focus = Some(field);
            dialog.error = Some(msg.clone());
            Err(msg)
        };
        if name.is_empty() {
            return refuse(self, Field::Name, "Name is required".into());
        }
        if role.is_empty() {
            return refuse(self, Field::Role, "Role is required".into());
        }
        if !gate.roles.is_empty() && !gate.roles.iter().any(|r| r == &role) {
            let msg = format!("Role must be one of: {}", gate.roles.join(", "));
            return refuse(self, Field::Role, msg);
        }
        let Some(decision) = self.decision else {
            return refuse(self, Field::Decision, "Choose GO or NO-GO".into());
        };
        let signoff = SignOff {
            gate: gate.gate.clone(),
            name,
            role,
            decision,
            comment,
            signature_file: Some(self.signature.value().trim())
                .filter(|p| self.keyed && !p.is_empty())
                .map(std::path::PathBuf::from),
        };
        if signoff.missing_reason(gate.recommendation).is_some() {
            let msg = match decision {
                Decision::NoGo => "A NO-GO needs a comment giving the reason",
                Decision::Go => "A GO against a NO-GO recommendation overrides it: give the reason",
            };
            return refuse(self, Field::Comment, msg.into());
        }
        if decision == Decision::Go && !self.database_matches() {
            return refuse(
                self,
                Field::Database,
                "A GO into production needs the production database's name typed exactly".into(),
            );
        }
        Ok(signoff)
    }
}
