//! The dossier as one self-contained HTML file: inline CSS, an inline SVG timeline, no
//! script, nothing fetched from anywhere (it is archived and mailed, and opened offline).

use std::fmt::Write;

use super::md::{money, verification_line};
use super::model::*;

/// Text as HTML (element content and attribute values alike).
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("—".to_string(), ToString::to_string)
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("—".into(), |ms| {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    })
}

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;margin:2rem auto;max-width:1100px;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #d9dee8;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;width:100%}
th,td{border:1px solid #d9dee8;padding:.25rem .5rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
td.t{overflow-wrap:anywhere;min-width:12rem}
th{background:#f1f4f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:normal}
code,.h{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-all}
.badge{display:inline-block;white-space:nowrap;padding:.05rem .45rem;border-radius:.6rem;font-weight:600;font-size:.85em}
.pass,.passed,.go,.completed{background:#dcf3e3;color:#135e2b}.warn,.warned,.waiting_sign_off{background:#fdf1d6;color:#7a5200}
.fail,.failed,.no-go,.rolled_back,.no_go,.validation_failed{background:#fbe0e0;color:#8a1c1c}
.skipped,.not_run,.running,.none{background:#e8ebf1;color:#3b4457}
.summary{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}.card{border:1px solid #d9dee8;border-radius:.5rem;padding:.6rem .9rem;min-width:10rem}
.card b{display:block;font-size:1.2rem}.muted{color:#5b6478}
svg text{font:12px system-ui,sans-serif;fill:#1d2330}
@media print{body{margin:0}h2{break-after:avoid}table{break-inside:auto}}
";

fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", esc(class), esc(text))
}

fn table(o: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    o.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            // Cells arrive as HTML: callers escape text and may add a badge or a class.
            if let Some(n) = c.strip_prefix("\u{1}") {
                let _ = write!(o, "<td class=\"n\">{n}</td>");
            } else if let Some(t) = c.strip_prefix("\u{2}") {
                let _ = write!(o, "<td class=\"t\">{t}</td>");
            } else {
                let _ = write!(o, "<td>{c}</td>");
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

/// A cell of long text (messages, paths, fingerprints) that may break anywhere.
fn long(s: &str) -> String {
    format!("\u{2}{}", esc(s))
}

/// A right-aligned number cell.
fn num(s: impl ToString) -> String {
    format!("\u{1}{}", esc(&s.to_string()))
}

fn status_class<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The timeline: one row per step on the run's own time axis; the actual time as a bar, the
/// planned time as a dashed outline from the step's start (cut at the axis' end, with its
/// length written there, when the plan was longer than the whole run).
fn timeline_svg(t: &Timeline) -> String {
    const LABEL: f64 = 130.0;
    const WIDTH: f64 = 1000.0;
    const RIGHT: f64 = 180.0;
    const ROW: f64 = 24.0;
    let plot = WIDTH - LABEL - RIGHT;
    let end = t
        .steps
        .iter()
        .map(|s| s.offset_ms.unwrap_or(0) + s.actual_ms.unwrap_or(0))
        .max()
        .unwrap_or(0)
        .max(t.span_ms)
        .max(1);
    let x = |ms: u64| LABEL + plot * (ms.min(end) as f64 / end as f64);
    let height = ROW * t.steps.len() as f64 + 34.0;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg role=\"img\" aria-label=\"Timeline: planned vs actual per step\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\">"
    );
    for q in 0..=4u64 {
        let gx = x(end * q / 4);
        let _ = write!(
            o,
            "<line x1=\"{gx:.1}\" y1=\"0\" x2=\"{gx:.1}\" y2=\"{:.1}\" stroke=\"#e3e7ef\"/>",
            ROW * t.steps.len() as f64 + 6.0
        );
    }
    for (i, s) in t.steps.iter().enumerate() {
        let y = ROW * i as f64 + 4.0;
        let _ = write!(
            o,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + 13.0,
            esc(&s.id)
        );
        let Some(off) = s.offset_ms else {
            let _ = write!(
                o,
                "<text x=\"{LABEL}\" y=\"{:.1}\" fill=\"#5b6478\">{}</text>",
                y + 13.0,
                esc(s.status.word())
            );
            continue;
        };
        let mut note = secs(s.actual_ms);
        if let Some(p) = s.planned_secs {
            let planned_end = off + p * 1000;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"none\" stroke=\"#8a93a6\" stroke-dasharray=\"4 3\"><title>planned {p} s</title></rect>",
                x(off),
                y + 1.0,
                (x(planned_end) - x(off)).max(1.0)
            );
            note = format!("{note} / {p} s planned");
        }
        let colour = match s.status {
            StepOutcome::Passed => "#2f9e57",
            StepOutcome::Warned | StepOutcome::WaitingSignOff => "#d79b17",
            StepOutcome::Failed | StepOutcome::RolledBack => "#c83b3b",
            _ => "#8a93a6",
        };
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" rx=\"2\" fill=\"{colour}\"><title>{}</title></rect>",
            x(off),
            y + 4.0,
            (x(off + s.actual_ms.unwrap_or(0)) - x(off)).max(3.0),
            esc(s.status.word())
        );
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#5b6478\">{}</text>",
            LABEL + plot + 8.0,
            y + 13.0,
            esc(&note)
        );
    }
    let axis = ROW * t.steps.len() as f64 + 8.0;
    let _ = write!(
        o,
        "<line x1=\"{LABEL}\" y1=\"{axis}\" x2=\"{:.1}\" y2=\"{axis}\" stroke=\"#8a93a6\"/>",
        LABEL + plot
    );
    for q in 0..=4u64 {
        let anchor = match q {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(end * q / 4),
            axis + 16.0,
            esc(&secs(Some(end * q / 4)))
        );
    }
    o.push_str("</svg>");
    o
}

pub fn render(d: &Dossier) -> String {
    let mut o = String::new();
    let r = &d.run;
    let title = format!("Cutover dossier: {}", r.runbook_name);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(
        o,
        "<h1>{}</h1><div class=\"muted\">run <code>{}</code> · {} · {}</div>",
        esc(&title),
        esc(&r.run_id),
        esc(&r.mode.map_or("—".into(), |m| mode_word(m).to_string())),
        esc(&r.runbook_path)
    );
    let outcome_class = r.outcome.map_or("none".into(), |x| status_class(&x));
    let checks: (usize, usize, usize) = d
        .reconciliation
        .iter()
        .fold((0, 0, 0), |a, t| (a.0 + t.pass, a.1 + t.warn, a.2 + t.fail));
    let rejected: u64 = d.rejects.iter().map(|e| e.rejected).sum();
    let _ = writeln!(
        o,
        "<div class=\"summary\"><div class=\"card\">Outcome<b>{}</b>exit {}</div><div class=\"card\">Checks<b>{} pass · {} warn · {} fail</b></div><div class=\"card\">Rejected rows<b>{}</b></div><div class=\"card\">Started<b>{}</b>finished {}</div></div>",
        badge(&outcome_class, outcome_word(r.outcome)),
        esc(&opt(&r.exit_code)),
        checks.0,
        checks.1,
        checks.2,
        rejected,
        esc(&opt(&r.started)),
        esc(&opt(&r.finished))
    );
    if !r.message.is_empty() {
        let _ = writeln!(o, "<p>{}</p>", esc(&r.message));
    }

    o.push_str("<h2>Timeline: planned vs actual</h2>\n");
    o.push_str(&timeline_svg(&d.timeline));
    o.push_str("<p class=\"muted\">Time from the run&#39;s start. Bar: actual time, coloured by outcome. Dashed outline: planned time from the step&#39;s start (cut at the end of the run when the plan was longer).</p>\n");
    table(
        &mut o,
        &[
            "Step", "Kind", "Status", "Started", "Planned", "Actual", "Δ", "Message",
        ],
        d.timeline.steps.iter().map(|s| {
            vec![
                esc(&s.id),
                esc(&kind_word(s.kind)),
                badge(&status_class(&s.status), s.status.word()),
                esc(&opt(&s.started)),
                num(s.planned_secs.map_or("—".into(), |p| format!("{p} s"))),
                num(secs(s.actual_ms)),
                num(s.delta_secs.map_or("—".into(), |x| format!("{x:+} s"))),
                long(&s.message),
            ]
        }),
    );

    let w = &d.window;
    o.push_str("<h2>Window</h2>\n");
    let _ = writeln!(o, "<p>Window end: {}</p>", esc(&opt(&w.window_end)));
    if !w.at_gates.is_empty() {
        o.push_str("<h3>At the gates</h3>");
        table(
            &mut o,
            &[
                "Gate",
                "Basis",
                "Projected finish",
                "Point of no return",
                "Window end",
                "Fits",
            ],
            w.at_gates.iter().map(|g| {
                vec![
                    esc(&g.gate),
                    esc(&g.basis),
                    esc(&g.projected_finish),
                    esc(&g.point_of_no_return),
                    esc(&g.window_end),
                    if g.fits {
                        badge("pass", "yes")
                    } else {
                        badge("fail", "NO")
                    },
                ]
            }),
        );
    }
    if !w.warnings.is_empty() {
        o.push_str("<h3>Window warnings</h3>");
        table(
            &mut o,
            &["At", "Projected finish", "Point of no return", "Window end"],
            w.warnings.iter().map(|x| {
                vec![
                    esc(&x.at),
                    esc(&x.projected_finish),
                    esc(&x.point_of_no_return),
                    esc(&x.window_end),
                ]
            }),
        );
    }
    if let Some(at) = &w.exceeded_at {
        let _ = writeln!(
            o,
            "<p>{}</p>",
            badge("fail", &format!("The window was exceeded at {at}"))
        );
    }
    if let Some(f) = &w.at_end {
        let _ = writeln!(
            o,
            "<p>At the last record ({}): projected finish {}, point of no return {} ({}){}.</p>",
            esc(&f.at),
            esc(&f.projected_finish),
            esc(&f.point_of_no_return),
            esc(&f.basis),
            if f.overruns {
                ", OVERRUNS the window"
            } else {
                ""
            }
        );
    }

    o.push_str("<h2>Reconciliation</h2>\n");
    if d.reconciliation.is_empty() {
        o.push_str("<p>No checks were recorded.</p>");
    }
    for t in &d.reconciliation {
        let _ = writeln!(
            o,
            "<h3>{}: {} pass, {} warn, {} fail</h3>",
            esc(&t.step),
            t.pass,
            t.warn,
            t.fail
        );
        table(
            &mut o,
            &[
                "Check", "Entity", "Currency", "Source", "Target", "Status", "Detail",
            ],
            t.checks.iter().map(|c| {
                vec![
                    esc(&c.name),
                    esc(&c.entity),
                    esc(&opt(&c.currency)),
                    long(&c.source),
                    long(&c.target),
                    badge(&status_class(&c.status), check_word(c.status)),
                    long(&c.detail),
                ]
            }),
        );
    }

    o.push_str("<h2>Entities</h2>\n");
    table(
        &mut o,
        &[
            "Phase", "Entity", "In file", "In scope", "Valid", "Rejected", "Loaded", "Time",
        ],
        d.entities.iter().map(|e| {
            vec![
                esc(phase_word(e.phase)),
                esc(&e.entity),
                num(e.in_file),
                num(e.in_scope),
                num(e.valid),
                num(e.rejected),
                num(e.loaded),
                num(secs(Some(e.duration_ms))),
            ]
        }),
    );

    o.push_str("<h2>Rejects and the money left behind</h2>\n");
    let totals = &d.money_left_behind;
    if !totals.is_empty() {
        o.push_str("<h3>Money left behind in rejected rows, per currency</h3>");
        table(
            &mut o,
            &["Field", "Currency", "Amount"],
            totals
                .iter()
                .map(|m| vec![esc(&m.field), esc(&m.currency), num(m.amount)]),
        );
    }
    for e in &d.rejects {
        let _ = writeln!(
            o,
            "<h3>{} ({}): {} rejected</h3>",
            esc(&e.entity),
            phase_word(e.phase),
            e.rejected
        );
        if !e.reject_file.is_empty() {
            let _ = writeln!(
                o,
                "<p>Reject file: <code>{}</code></p>",
                esc(&e.reject_file)
            );
        }
        if !e.left_behind.is_empty() {
            let m: Vec<String> = e
                .left_behind
                .iter()
                .map(|m| format!("{} {}", m.field, money(m)))
                .collect();
            let _ = writeln!(o, "<p>Left behind: {}</p>", esc(&m.join(", ")));
        }
        if let Some(why) = &e.by_rule_missing {
            let _ = writeln!(o, "<p>Per rule: unavailable ({})</p>", esc(why));
        }
        if !e.by_rule.is_empty() {
            table(
                &mut o,
                &["Rule", "Rows", "Money"],
                e.by_rule.iter().map(|r| {
                    let m: Vec<String> = r
                        .money
                        .iter()
                        .map(|m| format!("{} {}", m.field, money(m)))
                        .collect();
                    vec![esc(&r.rule), num(r.rows), long(&m.join(", "))]
                }),
            );
        }
    }

    o.push_str("<h2>Gates and sign-offs</h2>\n");
    for g in &d.gates {
        let _ = writeln!(
            o,
            "<h3>{} — {}</h3><p>Recommendation {}, decision {}; quorum {} ({}); evidence <code>{}</code></p>",
            esc(&g.gate),
            esc(&g.title),
            badge(
                &status_class(&g.recommendation),
                decision_word(g.recommendation)
            ),
            g.decision.map_or(badge("none", "none"), |x| badge(
                &status_class(&x),
                decision_word(x)
            )),
            g.quorum,
            esc(&g.roles.join(", ")),
            esc(&g.evidence_sha256)
        );
        if !g.reasons.is_empty() {
            o.push_str("<ul>");
            for reason in &g.reasons {
                let _ = write!(o, "<li>{}</li>", esc(reason));
            }
            o.push_str("</ul>\n");
        }
    }
    table(
        &mut o,
        &SIGN_OFF_COLUMNS,
        d.sign_offs.iter().map(|s| {
            vec![
                esc(&s.gate),
                esc(&s.name),
                esc(&s.role),
                badge(&status_class(&s.decision), decision_word(s.decision)),
                esc(&s.at),
                format!("<span class=\"h\">{}</span>", esc(&s.evidence_sha256)),
                if s.evidence_current {
                    badge("pass", "yes")
                } else {
                    badge("fail", "STALE")
                },
                esc(s.signature.word()),
                long(&s.comment),
            ]
        }),
    );
    o.push_str("<h2>Overrides and skips</h2>\n");
    if d.overrides.is_empty() && d.skips.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        o.push_str("<ul>");
        for x in &d.overrides {
            let _ = write!(
                o,
                "<li>Override at gate {} by {} ({}), {}: {}</li>",
                esc(&x.gate),
                esc(&x.name),
                esc(&x.role),
                esc(&x.at),
                esc(&x.reason)
            );
        }
        for x in &d.skips {
            let _ = write!(
                o,
                "<li>Step {} skipped by {}, {}: {}</li>",
                esc(&x.step),
                esc(&x.name),
                esc(&x.at),
                esc(&x.reason)
            );
        }
        o.push_str("</ul>\n");
    }
    if let Some(rb) = &d.rollback {
        let _ = writeln!(
            o,
            "<h2>Rollback</h2><p>Started {} because: {}. Result: {}{}</p>",
            esc(&opt(&rb.started)),
            esc(&rb.reason),
            rb.ok
                .map_or("not finished", |ok| if ok { "ok" } else { "FAILED" }),
            esc(&rb
                .message
                .as_ref()
                .map_or(String::new(), |m| format!(" — {m}")))
        );
    }

    let p = &d.provenance;
    o.push_str("<h2>Provenance</h2>\n");
    let runbook_now = match &p.runbook_sha256_now {
        None => "the runbook cannot be read now".to_string(),
        Some(h) if *h == p.runbook_sha256 => "unchanged since the run".to_string(),
        Some(h) => format!("CHANGED since the run: now {h}"),
    };
    table(
        &mut o,
        &["", ""],
        [
            vec!["Tool version (run)".into(), esc(&p.tool_version)],
            vec!["Dossier written by".into(), esc(&d.generated_by)],
            vec![
                "Runbook SHA-256".into(),
                format!(
                    "<code>{}</code> ({})",
                    esc(&p.runbook_sha256),
                    esc(&runbook_now)
                ),
            ],
            vec!["Extract manifest".into(), long(&opt(&p.extract_manifest))],
            vec![
                "Backup".into(),
                esc(&p.backup.as_ref().map_or("—".into(), |b| {
                    format!("{} {} ({} bytes) {}", b.env, b.path, b.bytes, b.sha256)
                })),
            ],
            vec!["Journal".into(), esc(&p.journal.location)],
            vec![
                "Run head".into(),
                format!("<code>{}</code>", esc(&opt(&p.journal.run_head))),
            ],
            vec![
                "Verification".into(),
                esc(&verification_line(&p.journal.verification)),
            ],
        ],
    );
    o.push_str("<h3>Input files</h3>");
    table(
        &mut o,
        &["Entity", "Path", "Rows", "SHA-256"],
        p.inputs.iter().map(|f| {
            vec![
                esc(&f.entity),
                long(&f.path),
                num(f.rows),
                format!("<span class=\"h\">{}</span>", esc(&f.sha256)),
            ]
        }),
    );
    o.push_str("</body></html>\n");
    o
}
