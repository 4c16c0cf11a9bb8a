//! The sign-off dialog's own state. Like gitui's confirm popup it decides nothing: on a
//! valid submit it hands back one `SignOff` and the engine (through the journal) decides.

use tui_input::{Input, InputRequest};

use crate::control::SignOff;
use crate::journal::events::Decision;

use super::model::GateState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Role,
    Comment,
    Decision,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Name, Field::Role, Field::Comment, Field::Decision];

    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Role => "Role",
            Field::Comment => "Comment",
            Field::Decision => "Decision",
        }
    }

    fn index(self) -> usize {
        Field::ALL.iter().position(|f| *f == self).unwrap_or(0)
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
    /// Why the last submit was refused.
    pub error: Option<String>,
}

impl GateDialog {
    pub fn focus(&self) -> Field {
        self.focus.unwrap_or(Field::Name)
    }

    /// Fresh dialog for a newly opened gate.
    pub fn open_fresh(&mut self) {
        *self = GateDialog {
            visible: true,
            ..GateDialog::default()
        };
    }

    pub fn next_field(&mut self) {
        let i = (self.focus().index() + 1) % Field::ALL.len();
        self.focus = Some(Field::ALL[i]);
    }

    pub fn prev_field(&mut self) {
        let i = (self.focus().index() + Field::ALL.len() - 1) % Field::ALL.len();
        self.focus = Some(Field::ALL[i]);
    }

    pub fn input(&mut self, req: InputRequest) {
        let target = match self.focus() {
            Field::Name => &mut self.name,
            Field::Role => &mut self.role,
            Field::Comment => &mut self.comment,
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
            Field::Decision => None,
        }
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
        if decision == Decision::NoGo && comment.is_empty() {
            return refuse(
                self,
                Field::Comment,
                "A NO-GO needs a comment giving the reason".into(),
            );
        }
        Ok(SignOff {
            gate: gate.gate.clone(),
            name,
            role,
            decision,
            comment,
        })
    }
}
