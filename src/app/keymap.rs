//! The keymap is data: one table of `(keys, context) → Action`. The loop looks keys up
//! here and the help overlay is rendered from the same table, so they cannot disagree.

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use tui_input::InputRequest;
use tui_input::backend::crossterm::to_input_request;

use super::{Action, App, Field, RejectAction as RA, SkipField, Tab};
use crate::journal::events::Decision;

/// Where a binding applies. Several contexts are active at once, most specific first
/// (see [`active_contexts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyContext {
    /// Everywhere, even while typing in the dialog.
    Anywhere,
    /// The main screen (no dialog, no help).
    Main,
    /// The main screen with the Rejects tab showing.
    Rejects,
    /// The reject search line (`/`; unbound keys edit it).
    RejectSearch,
    /// The detail view of one reject row.
    RejectDetail,
    /// The "abort the run?" question after `q`.
    ConfirmQuit,
    /// The help overlay.
    Help,
    /// The sign-off dialog (unbound keys edit the focused text field).
    Dialog,
    /// The sign-off dialog with the Decision row focused.
    DialogDecision,
    /// The rollback dialog, manual or proposed (unbound keys edit the focused field).
    RollbackDialog,
    /// The skip dialog (unbound keys edit the Name or Reason field).
    SkipDialog,
    /// The skip dialog with the Step row focused.
    SkipDialogStep,
}

impl KeyContext {
    pub fn title(self) -> &'static str {
        match self {
            KeyContext::Anywhere => "Anywhere",
            KeyContext::Main => "Main screen",
            KeyContext::Rejects => "Rejects tab",
            KeyContext::RejectSearch => "Reject search line",
            KeyContext::RejectDetail => "Reject detail",
            KeyContext::ConfirmQuit => "Abort question",
            KeyContext::Help => "Help",
            KeyContext::Dialog => "Sign-off dialog",
            KeyContext::DialogDecision => "Sign-off dialog, Decision row",
            KeyContext::RollbackDialog => "Rollback dialog",
            KeyContext::SkipDialog => "Skip dialog",
            KeyContext::SkipDialogStep => "Skip dialog, Step row",
        }
    }
}

pub struct Binding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub context: KeyContext,
    pub action: Action,
    pub help: &'static str,
}

const N: KeyModifiers = KeyModifiers::NONE;
const C: KeyModifiers = KeyModifiers::CONTROL;
/// Rows PgUp / PgDn move the sign-off dialog's evidence.
pub const DIALOG_SCROLL_ROWS: usize = 5;

use KeyCode::*;
use KeyContext as K;

pub static KEYMAP: &[Binding] = &[
    Binding {
        keys: &[(Char('y'), N), (Char('q'), N), (Char('c'), C)],
        context: K::ConfirmQuit,
        action: Action::Quit,
        help: "yes, abort and quit",
    },
    Binding {
        keys: &[(Char('n'), N), (Esc, N)],
        context: K::ConfirmQuit,
        action: Action::CancelQuit,
        help: "no: keep running",
    },
    Binding {
        keys: &[(Char('c'), C)],
        context: K::Anywhere,
        action: Action::Quit,
        help: "quit (asks if running)",
    },
    Binding {
        keys: &[(Char('?'), N), (Esc, N), (Char('q'), N)],
        context: K::Help,
        action: Action::ToggleHelp,
        help: "close help",
    },
    Binding {
        keys: &[(Up, N), (Char('k'), N)],
        context: K::Help,
        action: Action::HelpScroll(-1),
        help: "scroll up (if cut)",
    },
    Binding {
        keys: &[(Down, N), (Char('j'), N)],
        context: K::Help,
        action: Action::HelpScroll(1),
        help: "scroll down (if cut)",
    },
    Binding {
        keys: &[(Char('q'), N)],
        context: K::Main,
        action: Action::Quit,
        help: "quit (asks if running)",
    },
    Binding {
        keys: &[(Char('?'), N)],
        context: K::Main,
        action: Action::ToggleHelp,
        help: "help",
    },
    Binding {
        keys: &[(Char('g'), N)],
        context: K::Main,
        action: Action::OpenGateDialog,
        help: "sign-off dialog",
    },
    Binding {
        keys: &[(Char('R'), N)],
        context: K::Main,
        action: Action::OpenRollbackDialog,
        help: "rollback dialog",
    },
    Binding {
        keys: &[(Char('s'), N)],
        context: K::Main,
        action: Action::OpenSkipDialog,
        help: "skip a pending step",
    },
    Binding {
        keys: &[(Tab, N), (Right, N)],
        context: K::Main,
        action: Action::NextTab,
        help: "next tab",
    },
    Binding {
        keys: &[(BackTab, N), (Left, N)],
        context: K::Main,
        action: Action::PrevTab,
        help: "previous tab",
    },
    Binding {
        keys: &[(Char('1'), N)],
        context: K::Main,
        action: Action::SelectTab(Tab::Rejects),
        help: "Rejects tab",
    },
    Binding {
        keys: &[(Char('2'), N)],
        context: K::Main,
        action: Action::SelectTab(Tab::Reconciliation),
        help: "Reconciliation tab",
    },
    Binding {
        keys: &[(Char('3'), N)],
        context: K::Main,
        action: Action::SelectTab(Tab::Log),
        help: "Log tab",
    },
    Binding {
        keys: &[(Up, N), (Char('k'), N)],
        context: K::Main,
        action: Action::ScrollUp,
        help: "scroll up",
    },
    Binding {
        keys: &[(Down, N), (Char('j'), N)],
        context: K::Main,
        action: Action::ScrollDown,
        help: "scroll down",
    },
    Binding {
        keys: &[(PageUp, N)],
        context: K::Main,
        action: Action::PageUp,
        help: "page up",
    },
    Binding {
        keys: &[(PageDown, N)],
        context: K::Main,
        action: Action::PageDown,
        help: "page down",
    },
    Binding {
        keys: &[(Home, N)],
        context: K::Main,
        action: Action::ScrollTop,
        help: "first row",
    },
    Binding {
        keys: &[(End, N)],
        context: K::Main,
        action: Action::ScrollBottom,
        help: "last row",
    },
    Binding {
        keys: &[(Char('f'), N)],
        context: K::Rejects,
        action: Action::Rejects(RA::CycleEntity),
        help: "cycle entity filter",
    },
    Binding {
        keys: &[(Char('r'), N)],
        context: K::Rejects,
        action: Action::Rejects(RA::CycleRule),
        help: "cycle rule filter",
    },
    Binding {
        keys: &[(Char('c'), N)],
        context: K::Rejects,
        action: Action::Rejects(RA::CycleField),
        help: "cycle field filter",
    },
    Binding {
        keys: &[(Char('/'), N)],
        context: K::Rejects,
        action: Action::Rejects(RA::StartSearch),
        help: "search by value",
    },
    Binding {
        keys: &[(Backspace, N)],
        context: K::Rejects,
        action: Action::Rejects(RA::ClearFilters),
        help: "clear filters, search",
    },
    Binding {
        keys: &[(Enter, N)],
        context: K::Rejects,
        action: Action::Rejects(RA::OpenDetail),
        help: "row detail",
    },
    Binding {
        keys: &[(Char('x'), N)],
        context: K::Rejects,
        action: Action::Rejects(RA::Export),
        help: "export filtered rows",
    },
    Binding {
        keys: &[(Enter, N)],
        context: K::RejectSearch,
        action: Action::Rejects(RA::SubmitSearch),
        help: "search (empty clears)",
    },
    Binding {
        keys: &[(Esc, N)],
        context: K::RejectSearch,
        action: Action::Rejects(RA::CancelSearch),
        help: "close the search line",
    },
    Binding {
        keys: &[(Esc, N), (Enter, N), (Char('q'), N)],
        context: K::RejectDetail,
        action: Action::Rejects(RA::CloseDetail),
        help: "close the detail",
    },
    Binding {
        keys: &[(Up, N), (Char('k'), N)],
        context: K::RejectDetail,
        action: Action::Rejects(RA::DetailScroll(-1)),
        help: "scroll up",
    },
    Binding {
        keys: &[(Down, N), (Char('j'), N)],
        context: K::RejectDetail,
        action: Action::Rejects(RA::DetailScroll(1)),
        help: "scroll down",
    },
    Binding {
        keys: &[(PageUp, N)],
        context: K::RejectDetail,
        action: Action::Rejects(RA::DetailPage(-1)),
        help: "page up",
    },
    Binding {
        keys: &[(PageDown, N)],
        context: K::RejectDetail,
        action: Action::Rejects(RA::DetailPage(1)),
        help: "page down",
    },
    Binding {
        keys: &[(Enter, N)],
        context: K::Dialog,
        action: Action::SubmitSignOff,
        help: "submit the sign-off",
    },
    Binding {
        keys: &[(Esc, N)],
        context: K::Dialog,
        action: Action::HideGateDialog,
        help: "hide (g reopens)",
    },
    Binding {
        keys: &[(Tab, N), (Down, N)],
        context: K::Dialog,
        action: Action::DialogNextField,
        help: "next field",
    },
    Binding {
        keys: &[(BackTab, N), (Up, N)],
        context: K::Dialog,
        action: Action::DialogPrevField,
        help: "previous field",
    },
    Binding {
        keys: &[(PageUp, N)],
        context: K::Dialog,
        action: Action::DialogScroll(-(DIALOG_SCROLL_ROWS as isize)),
        help: "scroll the evidence up",
    },
    Binding {
        keys: &[(PageDown, N)],
        context: K::Dialog,
        action: Action::DialogScroll(DIALOG_SCROLL_ROWS as isize),
        help: "scroll the evidence down",
    },
    Binding {
        keys: &[(Left, N), (Right, N), (Char(' '), N)],
        context: K::DialogDecision,
        action: Action::ToggleDecision,
        help: "switch GO / NO-GO",
    },
    Binding {
        keys: &[(Char('g'), N)],
        context: K::DialogDecision,
        action: Action::ChooseDecision(Decision::Go),
        help: "choose GO",
    },
    Binding {
        keys: &[(Char('n'), N)],
        context: K::DialogDecision,
        action: Action::ChooseDecision(Decision::NoGo),
        help: "choose NO-GO",
    },
    Binding {
        keys: &[(Char('h'), N)],
        context: K::DialogDecision,
        action: Action::ToggleHoldFreeze,
        help: "hold the freeze (NO-GO)",
    },
    Binding {
        keys: &[(Enter, N)],
        context: K::RollbackDialog,
        action: Action::ConfirmRollback,
        help: "roll back (name matches)",
    },
    Binding {
        keys: &[(Esc, N)],
        context: K::RollbackDialog,
        action: Action::CancelRollback,
        help: "cancel (R reopens)",
    },
    Binding {
        keys: &[(Tab, N), (Down, N)],
        context: K::RollbackDialog,
        action: Action::RollbackSwitchField,
        help: "next field",
    },
    Binding {
        keys: &[(BackTab, N), (Up, N)],
        context: K::RollbackDialog,
        action: Action::RollbackSwitchField,
        help: "previous field",
    },
    Binding {
        keys: &[(Enter, N)],
        context: K::SkipDialog,
        action: Action::SubmitSkip,
        help: "send the skip",
    },
    Binding {
        keys: &[(Esc, N)],
        context: K::SkipDialog,
        action: Action::CancelSkip,
        help: "cancel (s reopens)",
    },
    Binding {
        keys: &[(Tab, N), (Down, N)],
        context: K::SkipDialog,
        action: Action::SkipNextField,
        help: "next field",
    },
    Binding {
        keys: &[(BackTab, N), (Up, N)],
        context: K::SkipDialog,
        action: Action::SkipPrevField,
        help: "previous field",
    },
    Binding {
        keys: &[(Left, N)],
        context: K::SkipDialogStep,
        action: Action::SkipCycleStep(-1),
        help: "previous step",
    },
    Binding {
        keys: &[(Right, N), (Char(' '), N)],
        context: K::SkipDialogStep,
        action: Action::SkipCycleStep(1),
        help: "next step",
    },
];

/// Contexts in the order the help lists them.
pub const HELP_CONTEXTS: [KeyContext; 12] = [
    K::Main,
    K::Rejects,
    K::RejectSearch,
    K::RejectDetail,
    K::Anywhere,
    K::ConfirmQuit,
    K::Dialog,
    K::DialogDecision,
    K::RollbackDialog,
    K::SkipDialog,
    K::SkipDialogStep,
    K::Help,
];

/// Whether unbound keys edit a text field in this context (the help says so).
pub fn context_edits(ctx: KeyContext) -> bool {
    matches!(
        ctx,
        K::Dialog | K::RollbackDialog | K::SkipDialog | K::RejectSearch
    )
}

/// Lines of the help: a title a context, a line a binding, one for editing keys.
pub fn help_lines() -> usize {
    HELP_CONTEXTS
        .iter()
        .map(|&c| {
            1 + KEYMAP.iter().filter(|b| b.context == c).count() + usize::from(context_edits(c))
        })
        .sum()
}

/// Contexts in force for this app state, most specific first.
pub fn active_contexts(app: &App) -> Vec<KeyContext> {
    let mut v = Vec::with_capacity(3);
    if app.confirm_quit {
        v.push(K::ConfirmQuit);
    } else if app.show_help {
        v.push(K::Help);
    } else if app.rollback_dialog_visible() {
        v.push(K::RollbackDialog);
    } else if app.skip_dialog_visible() {
        if app.skip_dialog.focus == SkipField::Step {
            v.push(K::SkipDialogStep);
        }
        v.push(K::SkipDialog);
    } else if app.dialog_visible() {
        if app.dialog.focus() == Field::Decision {
            v.push(K::DialogDecision);
        }
        v.push(K::Dialog);
    } else if app.tab == Tab::Rejects && app.rejects.detail.is_some() {
        v.push(K::RejectDetail);
    } else if app.tab == Tab::Rejects && app.rejects.search.is_some() {
        v.push(K::RejectSearch);
    } else {
        if app.tab == Tab::Rejects {
            v.push(K::Rejects);
        }
        v.push(K::Main);
    }
    v.push(K::Anywhere);
    v
}

/// Shift is part of the character itself (`?`, `G`) and of BackTab; drop it there.
fn normalise(code: KeyCode, mods: KeyModifiers) -> KeyModifiers {
    match code {
        Char(_) | BackTab => mods - KeyModifiers::SHIFT,
        _ => mods,
    }
}

/// The action for a key press in the current state, if any.
pub fn action_for(app: &App, code: KeyCode, mods: KeyModifiers) -> Option<Action> {
    let norm = normalise(code, mods);
    for ctx in active_contexts(app) {
        if let Some(b) = KEYMAP
            .iter()
            .find(|b| b.context == ctx && b.keys.iter().any(|&(c, m)| c == code && m == norm))
        {
            return Some(b.action.clone());
        }
        let edit: Option<fn(InputRequest) -> Action> = match ctx {
            K::Dialog if app.dialog.focus() != Field::Decision => Some(Action::DialogInput),
            K::RollbackDialog => Some(Action::RollbackInput),
            K::SkipDialog if app.skip_dialog.focus != SkipField::Step => Some(Action::SkipInput),
            K::RejectSearch => Some(|r| Action::Rejects(RA::SearchInput(r))),
            _ => None,
        };
        if let Some(edit) = edit {
            // Unbound keys edit the focused text field (tui-input's own key table).
            let ev = Event::Key(KeyEvent::new(code, mods));
            if let Some(req) = to_input_request(&ev) {
                return Some(edit(req));
            }
        }
    }
    None
}

/// `Ctrl-C`, `Shift-Tab`, `↑`, `q`.
pub fn key_label(code: KeyCode, mods: KeyModifiers) -> String {
    let base = match code {
        Char(' ') => "Space".to_string(),
        Char(c) => c.to_string(),
        Tab => "Tab".into(),
        BackTab => "Shift-Tab".into(),
        Enter => "Enter".into(),
        Esc => "Esc".into(),
        Up => "↑".into(),
        Down => "↓".into(),
        Left => "←".into(),
        Right => "→".into(),
        PageUp => "PgUp".into(),
        PageDown => "PgDn".into(),
        Home => "Home".into(),
        End => "End".into(),
        Backspace => "Backspace".into(),
        other => format!("{other:?}"),
    };
    if mods.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{}", base.to_uppercase())
    } else {
        base
    }
}

/// All keys of a binding, e.g. `Tab/→`.
pub fn binding_keys(b: &Binding) -> String {
    b.keys
        .iter()
        .map(|&(c, m)| key_label(c, m))
        .collect::<Vec<_>>()
        .join("/")
}
