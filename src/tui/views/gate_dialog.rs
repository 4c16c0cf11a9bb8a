//! Sign-off dialog (modal). Shows the gate, the recommendation and its reasons, the
//! evidence (reconciliation totals, reject rates against budget, timing against the
//! window), expected approvers, quorum, roles and sign-offs so far, then the Name / Role / Comment fields
//! and the GO / NO-GO choice; at a gate before the production load, also the production
//! database's name typed to confirm a GO. It only collects; `app::update` hands back the
//! `SignOff`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::form::{MARK_WIDTH, field_label, match_mark, modal_scrolled, text_field};
use super::style;
use chrono::{DateTime, Utc};

use crate::app::fmt_decimal;
use crate::app::{App, Field, Tone, decision_glyph_word, fmt_clock, fmt_secs};
use crate::journal::events::{Decision, GateEvidence, RejectRate};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

const MAX_WIDTH: u16 = 104;
/// Field label column ("▸ Comment  ").
const LABEL_WIDTH: u16 = 12;
/// Rows under the information block: blank, 3 fields, decision, message, keys (and the
/// signature field where an approver has an SSH key, the database field at a production
/// gate).
const FORM_HEIGHT: u16 = 7;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(gate) = app.open_gate() else { return };
    let d = &app.dialog;

    let mut info: Vec<Line> = Vec::new();
    let (g, w, t) = decision_glyph_word(gate.recommendation);
    info.push(Line::from(vec![
        Span::raw("Recommendation: "),
        Span::styled(
            format!("{g} {w}"),
            style::tone(t).add_modifier(ratatui::style::Modifier::BOLD),
        ),
    ]));
    for r in &gate.reasons {
        info.push(Line::raw(format!("  • {r}")));
    }
    info.extend(evidence_lines(&gate.evidence, app.now));
    info.push(Line::raw(format!(
        "Approvers: {}",
        gate.approvers.join(", ")
    )));
    // The count is the run's own policy over the journaled sign-offs, so what the dialog
    // shows and what the engine decides agree; a sign-off that did not count says why.
    let view = gate.view();
    match &view {
        Some(v) => info.push(Line::raw(format!("Signed: {}", v.counts()))),
        None => info.push(Line::raw(format!(
            "Signed: {} of {} · roles needed: {}",
            gate.signoffs.len(),
            gate.quorum,
            gate.roles.join(", ")
        ))),
    }
    for s in &gate.signoffs {
        let (g, w, t) = decision_glyph_word(s.decision);
        let (g, w) = if s.overrides {
            (g, format!("{w} (override)"))
        } else {
            (g, w.to_string())
        };
        let comment = if s.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", s.comment)
        };
        info.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("{g} {w}"), style::tone(t)),
            Span::raw(format!(" {} ({}){comment}", s.name, s.role)),
        ]));
    }
    if let Some(v) = &view {
        for n in &v.not_counted {
            info.push(Line::from(vec![
                Span::raw("  "),
                Span::styled("✗ not counted", style::tone(Tone::Bad)),
                Span::raw(format!(" {} ({}): {}", n.name, n.role, n.reason)),
            ]));
        }
        if v.status == crate::signoff::policy::Status::Waiting
            && let Some(m) = v.missing.iter().find(|m| m.starts_with("the lead ("))
        {
            info.push(Line::styled(format!("  ! {m}"), style::tone(Tone::Warn)));
        }
    }

    if d.keyed {
        // What a keyed approver signs, and how: the file goes in the Signature field.
        info.push(Line::raw(format!(
            "SSH-keyed approvers sign sha256 {} (ssh-keygen -Y sign -n cutover) and give the .sig file",
            gate.evidence_sha256
        )));
    }
    let confirm = d.confirm_name.as_deref();
    if let (Some(name), Some(p)) = (confirm, app.production_env()) {
        info.push(Line::from(vec![
            Span::styled("▲ PRODUCTION", style::production()),
            Span::styled(
                format!(" next: the load into {} · {}", p.name, p.display),
                style::tone(Tone::Bad),
            ),
        ]));
        info.push(Line::from(vec![
            Span::raw("A GO needs the production database's name typed: "),
            Span::styled(name.to_string(), style::key()),
        ]));
    }

    let title =
        Line::from(format!(" Sign-off · {}: {} ", gate.gate, gate.title)).style(style::key());
    let (height, border) = match confirm {
        Some(_) => (FORM_HEIGHT + 1, style::tone(Tone::Bad)),
        None => (FORM_HEIGHT, style::key()),
    };
    let height = height + u16::from(d.keyed);
    // At 80×24 a gate recommending NO-GO has more to say than fits: the information block
    // scrolls (PgUp/PgDn), the form below it stays put.
    let m = modal_scrolled(
        frame, area, MAX_WIDTH, title, border, info, height, d.scroll,
    );
    d.scroll_max.set(m.max_scroll);
    let rows = m.rows;
    let focus = d.focus();
    for (i, field) in [Field::Name, Field::Role, Field::Comment]
        .into_iter()
        .enumerate()
    {
        let row = rows[i + 1];
        let [label, value] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Fill(1)]).areas(row);
        frame.render_widget(Paragraph::new(label_line(field, focus)), label);
        let input = d.field_input(field).expect("text field");
        text_field(frame, value, input, field == focus);
    }

    let [label, value] =
        Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Fill(1)]).areas(rows[4]);
    frame.render_widget(Paragraph::new(label_line(Field::Decision, focus)), label);
    let choice = |dec: Decision| {
        let (g, w, t) = decision_glyph_word(dec);
        let chosen = d.decision == Some(dec);
        let mark = if chosen { "(•)" } else { "( )" };
        let st = if chosen {
            style::tone(t)
                .add_modifier(ratatui::style::Modifier::REVERSED | ratatui::style::Modifier::BOLD)
        } else {
            ratatui::style::Style::new()
        };
        Span::styled(format!("{mark} {g} {w}"), st)
    };
    let hint = if focus == Field::Decision {
        "   ←/→ or g / n"
    } else {
        ""
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            choice(Decision::Go),
            Span::raw("   "),
            choice(Decision::NoGo),
            Span::styled(hint, style::dim()),
        ])),
        value,
    );

    let message = match &d.error {
        Some(e) => Line::styled(format!("✗ {e}"), style::tone(Tone::Bad)),
        None if d.decision == Some(Decision::NoGo) && d.hold_freeze => Line::styled(
            "NO-GO needs a reason; the legacy stays FROZEN (h: reopen it).",
            style::tone(Tone::Warn),
        ),
        None if d.decision == Some(Decision::NoGo) => Line::styled(
            "NO-GO needs a reason; the legacy is reopened (h: hold the freeze).",
            style::dim(),
        ),
        None if d.decision == Some(Decision::Go) && gate.recommendation == Decision::NoGo => {
            Line::styled(
                "A GO here overrides the NO-GO recommendation: give the reason.",
                style::tone(Tone::Warn),
            )
        }
        None if d.decision == Some(Decision::Go) && !d.database_matches() => Line::styled(
            "A GO into production needs the database's name typed in Database.",
            style::dim(),
        ),
        None => Line::raw(""),
    };
    let mut next = 5;
    if d.keyed {
        let [label, value] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Fill(1)])
                .areas(rows[next]);
        frame.render_widget(Paragraph::new(label_line(Field::Signature, focus)), label);
        text_field(frame, value, &d.signature, focus == Field::Signature);
        next += 1;
    }
    if confirm.is_some() {
        let [label, value, mark] = Layout::horizontal([
            Constraint::Length(LABEL_WIDTH),
            Constraint::Fill(1),
            Constraint::Length(MARK_WIDTH),
        ])
        .areas(rows[next]);
        frame.render_widget(Paragraph::new(label_line(Field::Database, focus)), label);
        text_field(frame, value, &d.database, focus == Field::Database);
        if let Some(m) = match_mark(d.database.value(), d.database_matches()) {
            frame.render_widget(Paragraph::new(m), mark);
        }
        next += 1;
    }
    frame.render_widget(Paragraph::new(message), rows[next]);
    // With the evidence scrolling, its keys join the hint line (the others say less to fit).
    // In `cutover watch` Ctrl-C leaves the watch; the run goes on.
    let watching = app.watching.is_some();
    let keys = if m.max_scroll > 0 {
        vec![
            Span::styled("Enter", style::key()),
            Span::raw(" submit · "),
            Span::styled("Tab/↑↓", style::key()),
            Span::raw(" field · "),
            Span::styled("PgUp/PgDn", style::key()),
            Span::raw(" scroll · "),
            Span::styled("Esc", style::key()),
            Span::raw(" hide · "),
            Span::styled("Ctrl-C", style::key()),
            Span::raw(if watching { " leave" } else { " abort" }),
        ]
    } else {
        vec![
            Span::styled("Enter", style::key()),
            Span::raw(" submit · "),
            Span::styled("Tab/↑↓", style::key()),
            Span::raw(" field · "),
            Span::styled("Esc", style::key()),
            Span::raw(" hide (g reopens) · "),
            Span::styled("Ctrl-C", style::key()),
            Span::raw(if watching {
                " leave watch"
            } else {
                " abort run"
            }),
        ]
    };
    frame.render_widget(Paragraph::new(Line::from(keys)), rows[next + 1]);
}

/// The evidence block: reconciliation totals, reject rates against their budgets, and the
/// timing against the window, as journaled when the gate opened.
fn evidence_lines(ev: &GateEvidence, now: Option<DateTime<Utc>>) -> Vec<Line<'static>> {
    let label = |s: &str| Span::styled(format!("{s:<15}"), style::dim());
    let sep = || Span::styled(" · ", style::dim());
    let mut out = Vec::new();

    let mut recon = vec![label("Reconciliation")];
    for (n, word, tone) in [
        (ev.checks_pass, "pass", Tone::Good),
        (ev.checks_warn, "warn", Tone::Warn),
        (ev.checks_fail, "fail", Tone::Bad),
    ] {
        if recon.len() > 1 {
            recon.push(sep());
        }
        let st = if n > 0 {
            style::tone(tone)
        } else {
            style::dim()
        };
        recon.push(Span::styled(format!("{n} {word}"), st));
    }
    recon.push(Span::styled("  (tab 2: each check)", style::dim()));
    out.push(Line::from(recon));

    // Entities with a budget, and any without one that rejected rows.
    let shown: Vec<&RejectRate> = ev
        .reject_rates
        .iter()
        .filter(|r| r.budget_pct.is_some() || r.rejected > 0)
        .collect();
    let mut rejects = vec![label("Reject rates")];
    if shown.is_empty() {
        let text = if ev.reject_rates.is_empty() {
            "no dry run in this run"
        } else {
            "no rows rejected, no budget set"
        };
        rejects.push(Span::styled(text, style::dim()));
    }
    for (i, r) in shown.iter().enumerate() {
        if i > 0 {
            rejects.push(sep());
        }
        let (text, tone) = match (&r.budget_pct, r.within_budget) {
            (Some(b), Some(true)) => (format!("{} {:.2}% ≤ {b}% ✓", r.entity, r.pct()), Tone::Good),
            (Some(b), _) => (format!("{} {:.2}% > {b}% ✗", r.entity, r.pct()), Tone::Bad),
            (None, _) => (
                format!("{} {:.2}% (no budget)", r.entity, r.pct()),
                Tone::Neutral,
            ),
        };
        rejects.push(Span::styled(text, style::tone(tone)));
    }
    out.push(Line::from(rejects));

    // The money finance decides on: what the rejected rows carry, per money field and
    // currency (each figure joined to its currency by a no-break space, so wrapping never
    // parts them). Fields are not added together: a total and a residual are two views of
    // the same money.
    let mut fields: BTreeMap<(&str, &str), Vec<(&str, String)>> = BTreeMap::new();
    for m in &ev.money_rejected {
        let amount = m
            .amount
            .parse::<Decimal>()
            .map(fmt_decimal)
            .unwrap_or_else(|_| m.amount.clone());
        fields
            .entry((m.entity.as_str(), m.field.as_str()))
            .or_default()
            .push((m.currency.as_str(), amount));
    }
    for (i, ((entity, field), sums)) in fields.iter().enumerate() {
        let mut line = vec![label(if i == 0 { "Rejected money" } else { "" })];
        line.push(Span::raw(format!("{entity}.{field} ")));
        for (k, (cur, amount)) in sums.iter().enumerate() {
            if k > 0 {
                line.push(sep());
            }
            line.push(Span::styled(
                format!("{amount}\u{a0}{cur}"),
                style::tone(Tone::Warn),
            ));
        }
        out.push(Line::from(line));
    }

    let mut timing = vec![label("Timing")];
    match &ev.timing {
        None => timing.push(Span::styled("the runbook sets no window", style::dim())),
        Some(t) => {
            let parse = |s: &str| {
                DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            };
            let (finish, end, pnr) = (
                parse(&t.projected_finish),
                parse(&t.window_end),
                parse(&t.point_of_no_return),
            );
            let now = now.or(finish).unwrap_or_default();
            let at = |t: Option<DateTime<Utc>>| t.map(|t| fmt_clock(t, now)).unwrap_or("?".into());
            let from = t.rehearsal_run.as_deref().unwrap_or(&t.basis);
            timing.push(Span::raw(format!(
                "~{} to go ({from}) · finish {} ",
                fmt_secs(t.remaining_secs),
                at(finish)
            )));
            timing.push(if t.fits {
                Span::styled("✓ fits", style::tone(Tone::Good))
            } else {
                Span::styled("✗ LATE", style::tone(Tone::Bad))
            });
            timing.push(Span::raw(format!(
                " · window end {} · PNR {}",
                at(end),
                at(pnr)
            )));
        }
    }
    out.push(Line::from(timing));
    out
}

fn label_line(field: Field, focus: Field) -> Line<'static> {
    field_label(field.label(), field == focus)
}
