//! One render function per screen region; [`render`] lays them out.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────────────┐
//!  TMS → Odoo cutover · run-…                window 4h00m left │ ▶ RUNNING load   header
//!  legacy · rehearsal · ▲ PRODUCTION production      finish ~19:35 · PNR 22:45   (2 rows)
//! ┌ Runbook ───────────────────────┐┌ Entities · load ─────────────────────────┐
//! │state        step   actual/plan ││ invoices  ██████░░░░░  60% ETA 3m20s     │
//! │✓ passed     backup 7m12s/10m00s││   read 15,000 · valid … · loaded 14,000  │
//! │▶ running    load    7m27s/45m  │└──────────────────────────────────────────┘
//! │· pending    verify     –/10m00s│ 1 Rejects (15)│2 Reconciliation│3 Log        tabs
//! │                                │┌ Rejects · all entities · 15 rows ────────┐
//! │ outcome / rollback when known  ││ entity line field message                │
//! └────────────────────────────────┘└──────────────────────────────────────────┘
//!  q quit · ? help · g sign-off · Tab/→ tab · ↑↓ scroll · f filter · R rollback  footer
//! ```
//! The sign-off dialog, the skip dialog, the rollback dialog and the help are drawn over
//! this, centred (in that order: the rollback dialog covers the others when both are up). From
//! [`WIDE_MIN_WIDTH`] columns on (e.g. 160×48) runbook and entities sit side by side on
//! top and the tabs run across the full width below, with more columns (step titles,
//! environment details, rule and original values, check detail, rows/s).

pub mod entities;
pub mod fit;
pub mod footer;
pub mod form;
pub mod gate_dialog;
pub mod header;
pub mod help;
pub mod log;
pub mod reconciliation;
pub mod rejects;
pub mod rollback_dialog;
pub mod runbook;
pub mod skip_dialog;
pub mod style;
pub mod tabs;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};

use crate::app::App;

pub const HEADER_HEIGHT: u16 = 2;
pub const FOOTER_HEIGHT: u16 = 1;
/// Runbook pane width below / from [`WIDE_MIN_WIDTH`].
pub const RUNBOOK_WIDTH: u16 = 38;
pub const RUNBOOK_WIDTH_WIDE: u16 = 64;
/// From this many columns on, panes show their extra columns.
pub const WIDE_MIN_WIDTH: u16 = 120;
/// Narrow: the entities pane never takes more than this share of the detail column.
pub const ENTITIES_MAX_PERCENT: u16 = 50;
/// Wide: the runbook / entities row never takes more than this share of the body.
pub const TOP_MAX_PERCENT_WIDE: u16 = 45;

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Fill(1),
        Constraint::Length(FOOTER_HEIGHT),
    ])
    .areas(area);
    header::render(frame, app, header_area);
    footer::render(frame, app, footer_area);

    if area.width >= WIDE_MIN_WIDTH {
        // Wide: runbook and entities side by side on top, the tabs across the full width.
        let top_h = runbook::wanted_height(app)
            .max(entities::wanted_height(app))
            .min(body.height * TOP_MAX_PERCENT_WIDE / 100);
        let [top, tabs_area] =
            Layout::vertical([Constraint::Length(top_h), Constraint::Fill(1)]).areas(body);
        let [runbook_area, entities_area] =
            Layout::horizontal([Constraint::Length(RUNBOOK_WIDTH_WIDE), Constraint::Fill(1)])
                .areas(top);
        runbook::render(frame, app, runbook_area);
        entities::render(frame, app, entities_area);
        tabs::render(frame, app, tabs_area);
    } else {
        // Narrow: runbook on the left, entities over the tabs on the right.
        let [runbook_area, detail] =
            Layout::horizontal([Constraint::Length(RUNBOOK_WIDTH), Constraint::Fill(1)])
                .areas(body);
        runbook::render(frame, app, runbook_area);
        let max_entities = detail.height * ENTITIES_MAX_PERCENT / 100;
        let entities_h = entities::wanted_height(app).min(max_entities);
        let [entities_area, tabs_area] =
            Layout::vertical([Constraint::Length(entities_h), Constraint::Fill(1)]).areas(detail);
        entities::render(frame, app, entities_area);
        tabs::render(frame, app, tabs_area);
    }

    if app.dialog_visible() {
        gate_dialog::render(frame, app, area);
    }
    if app.skip_dialog_visible() {
        skip_dialog::render(frame, app, area);
    }
    if app.rollback_dialog_visible() {
        rollback_dialog::render(frame, app, area);
    }
    if app.show_help {
        help::render(frame, area, app.help_scroll);
    }
}
