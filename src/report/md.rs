//! The dossier as Markdown: for a ticket, a wiki page or a mail.

use std::fmt::Write;

use super::model::*;

/// A table cell: pipes and line breaks would end the cell or the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("—".to_string(), ToString::to_string)
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("—".into(), |ms| {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    })
}

pub fn money(m: &Money) -> String {
    if m.currency.is_empty() {
        m.amount.to_string()
    } else {
        format!("{} {}", m.amount, m.currency)
    }
}

fn table(out: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

pub fn render(d: &Dossier) -> String {
    let mut o = String::new();
    let r = &d.run;
    let _ = writeln!(o, "# Cutover dossier: {}\n", r.runbook_name);
    table(
        &mut o,
        &["", ""],
        [
            vec!["Run".into(), r.run_id.clone()],
            vec![
                "Mode".into(),
                r.mode.map_or("—".into(), |m| mode_word(m).to_string()),
            ],
            vec!["Runbook".into(), r.runbook_path.clone()],
            vec!["Started".into(), opt(&r.started)],
            vec!["Finished".into(), opt(&r.finished)],
            vec!["Outcome".into(), outcome_word(r.outcome).into()],
            vec!["Exit code".into(), opt(&r.exit_code)],
            vec!["Message".into(), r.message.clone()],
        ],
    );

    let _ = writeln!(o, "## Timeline: planned vs actual\n");
    table(
        &mut o,
        &[
            "Step", "Kind", "Status", "Started", "Planned", "Actual", "Δ", "Message",
        ],
        d.timeline.steps.iter().map(|s| {
            vec![
                s.id.clone(),
                kind_word(s.kind),
                s.status.word().into(),
                opt(&s.started),
                s.planned_secs.map_or("—".into(), |p| format!("{p} s")),
                secs(s.actual_ms),
                s.delta_secs.map_or("—".into(), |x| format!("{x:+} s")),
                s.message.clone(),
            ]
        }),
    );

    let w = &d.window;
    let _ = writeln!(o, "## Window\n");
    let _ = writeln!(o, "Window end: {}\n", opt(&w.window_end));
    if !w.at_gates.is_empty() {
        let _ = writeln!(o, "At the gates:\n");
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
                    g.gate.clone(),
                    g.basis.clone(),
                    g.projected_finish.clone(),
                    g.point_of_no_return.clone(),
                    g.window_end.clone(),
                    if g.fits { "yes" } else { "NO" }.into(),
                ]
            }),
        );
    }
    if !w.warnings.is_empty() {
        let _ = writeln!(o, "Window warnings:\n");
        table(
            &mut o,
            &["At", "Projected finish", "Point of no return", "Window end"],
            w.warnings.iter().map(|x| {
                vec![
                    x.at.clone(),
                    x.projected_finish.clone(),
                    x.point_of_no_return.clone(),
                    x.window_end.clone(),
                ]
            }),
        );
    }
    if let Some(at) = &w.exceeded_at {
        let _ = writeln!(o, "**The window was exceeded at {at}.**\n");
    }
    if let Some(f) = &w.at_end {
        let _ = writeln!(
            o,
            "At the last record ({}): projected finish {}, point of no return {} ({}){}.\n",
            f.at,
            f.projected_finish,
            f.point_of_no_return,
            f.basis,
            if f.overruns {
                ", OVERRUNS the window"
            } else {
                ""
            }
        );
    }

    let _ = writeln!(o, "## Reconciliation\n");
    if d.reconciliation.is_empty() {
        let _ = writeln!(o, "No checks were recorded.\n");
    }
    for t in &d.reconciliation {
        let _ = writeln!(
            o,
            "### {}: {} pass, {} warn, {} fail\n",
            t.step, t.pass, t.warn, t.fail
        );
        table(
            &mut o,
            &[
                "Check", "Entity", "Currency", "Source", "Target", "Status", "Detail",
            ],
            t.checks.iter().map(|c| {
                vec![
                    c.name.clone(),
                    c.entity.clone(),
                    opt(&c.currency),
                    c.source.clone(),
                    c.target.clone(),
                    check_word(c.status).into(),
                    c.detail.clone(),
                ]
            }),
        );
    }

    let _ = writeln!(o, "## Entities\n");
    table(
        &mut o,
        &[
            "Phase", "Entity", "In file", "In scope", "Valid", "Rejected", "Loaded", "Time",
        ],
        d.entities.iter().map(|e| {
            vec![
                phase_word(e.phase).into(),
                e.entity.clone(),
                e.in_file.to_string(),
                e.in_scope.to_string(),
                e.valid.to_string(),
                e.rejected.to_string(),
                e.loaded.to_string(),
                secs(Some(e.duration_ms)),
            ]
        }),
    );

    let _ = writeln!(o, "## Rejects and the money left behind\n");
    let totals = &d.money_left_behind;
    if !totals.is_empty() {
        let _ = writeln!(o, "Money left behind in rejected rows, per currency:\n");
        table(
            &mut o,
            &["Field", "Currency", "Amount"],
            totals
                .iter()
                .map(|m| vec![m.field.clone(), m.currency.clone(), m.amount.to_string()]),
        );
    }
    for e in &d.rejects {
        let _ = writeln!(
            o,
            "### {} ({}): {} rejected\n",
            e.entity,
            phase_word(e.phase),
            e.rejected
        );
        if !e.reject_file.is_empty() {
            let _ = writeln!(o, "Reject file: `{}`\n", e.reject_file);
        }
        if !e.left_behind.is_empty() {
            let m: Vec<String> = e
                .left_behind
                .iter()
                .map(|m| format!("{} {}", m.field, money(m)))
                .collect();
            let _ = writeln!(o, "Left behind: {}\n", m.join(", "));
        }
        if let Some(why) = &e.by_rule_missing {
            let _ = writeln!(o, "Per rule: unavailable ({why})\n");
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
                    vec![r.rule.clone(), r.rows.to_string(), m.join(", ")]
                }),
            );
        }
    }

    let _ = writeln!(o, "## Gates and sign-offs\n");
    for g in &d.gates {
        let _ = writeln!(
            o,
            "### {} — {}\n\nRecommendation {}, decision {}; quorum {} ({}); evidence `{}`\n",
            g.gate,
            g.title,
            decision_word(g.recommendation),
            g.decision.map_or("none", decision_word),
            g.quorum,
            g.roles.join(", "),
            g.evidence_sha256
        );
        for reason in &g.reasons {
            let _ = writeln!(o, "- {}", cell(reason));
        }
        if !g.reasons.is_empty() {
            o.push('\n');
        }
    }
    table(
        &mut o,
        &SIGN_OFF_COLUMNS,
        d.sign_offs.iter().map(|s| {
            vec![
                s.gate.clone(),
                s.name.clone(),
                s.role.clone(),
                decision_word(s.decision).into(),
                s.at.clone(),
                format!("`{}`", s.evidence_sha256),
                if s.evidence_current { "yes" } else { "STALE" }.into(),
                s.signature.word().into(),
                s.comment.clone(),
            ]
        }),
    );
    let _ = writeln!(o, "## Overrides and skips\n");
    if d.overrides.is_empty() && d.skips.is_empty() {
        let _ = writeln!(o, "None.\n");
    }
    for x in &d.overrides {
        let _ = writeln!(
            o,
            "- Override at gate {} by {} ({}), {}: {}",
            x.gate,
            x.name,
            x.role,
            x.at,
            cell(&x.reason)
        );
    }
    for x in &d.skips {
        let _ = writeln!(
            o,
            "- Step {} skipped by {}, {}: {}",
            x.step,
            x.name,
            x.at,
            cell(&x.reason)
        );
    }
    if !d.overrides.is_empty() || !d.skips.is_empty() {
        o.push('\n');
    }
    if let Some(rb) = &d.rollback {
        let _ = writeln!(
            o,
            "## Rollback\n\nStarted {} because: {}. Result: {}{}\n",
            opt(&rb.started),
            rb.reason,
            rb.ok
                .map_or("not finished", |ok| if ok { "ok" } else { "FAILED" }),
            rb.message
                .as_ref()
                .map_or(String::new(), |m| format!(" — {m}"))
        );
    }

    let p = &d.provenance;
    let _ = writeln!(o, "## Provenance\n");
    let runbook_now = match &p.runbook_sha256_now {
        None => "the runbook cannot be read now".to_string(),
        Some(h) if *h == p.runbook_sha256 => "unchanged since the run".to_string(),
        Some(h) => format!("CHANGED since the run: now `{h}`"),
    };
    table(
        &mut o,
        &["", ""],
        [
            vec!["Tool version (run)".into(), p.tool_version.clone()],
            vec!["Dossier written by".into(), d.generated_by.clone()],
            vec![
                "Runbook SHA-256".into(),
                format!("`{}` ({runbook_now})", p.runbook_sha256),
            ],
            vec!["Extract manifest".into(), opt(&p.extract_manifest)],
            vec![
                "Backup".into(),
                p.backup.as_ref().map_or("—".into(), |b| {
                    format!("{} {} ({} bytes) `{}`", b.env, b.path, b.bytes, b.sha256)
                }),
            ],
            vec!["Journal".into(), p.journal.location.clone()],
            vec!["Run head".into(), opt(&p.journal.run_head)],
            vec![
                "Verification".into(),
                verification_line(&p.journal.verification),
            ],
        ],
    );
    let _ = writeln!(o, "Input files:\n");
    table(
        &mut o,
        &["Entity", "Path", "Rows", "SHA-256"],
        p.inputs.iter().map(|f| {
            vec![
                f.entity.clone(),
                f.path.clone(),
                f.rows.to_string(),
                format!("`{}`", f.sha256),
            ]
        }),
    );
    o
}

/// One line on the journal's verification, shared by every format.
pub fn verification_line(v: &VerificationEntry) -> String {
    let chain = match &v.first_bad {
        None => format!("hash chain intact over {} records", v.records),
        Some((seq, why)) => format!("BROKEN at record {seq}: {why}"),
    };
    let head = v.head.as_deref().unwrap_or("none");
    let reach = if v.run_head_reachable {
        "the run's head is in it"
    } else {
        "the run's head is NOT in it"
    };
    format!("{chain}; head {head}; {reach}")
}
