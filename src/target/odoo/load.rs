//! Rows into Odoo's `load`: cells as strings, records kept whole (a parent row and its
//! one2many continuation rows), batches that never put one group-by value in two calls, and
//! the settling of a refused call until every good row is loaded and every bad row isolated.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::engine::rules::SqlValue;

use super::transport::is_serialization_message;

/// A cell as `load` takes it: empty means `False`, decimals exactly as written, ISO dates,
/// datetimes `YYYY-MM-DD HH:MM:SS` (UTC; the target's context sets `tz` to UTC).
pub fn cell(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => String::new(),
        SqlValue::Text(s) => s.clone(),
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Dec(d) => d.to_string(),
        SqlValue::Date(d) => d.format("%Y-%m-%d").to_string(),
        SqlValue::DateTime(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        // Odoo resolves references itself (`field/id` columns): the key text is the value.
        SqlValue::Lookup { value, .. } => value.clone(),
    }
}

/// One record as `load` sees it: a parent row and the continuation rows that follow it
/// (rows whose key cell is empty), `start..start + len` in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub start: usize,
    pub len: usize,
}

/// Split a batch into records. Without a key column every row is a record of its own; a
/// leading row with an empty key has no parent and stands alone too.
pub fn records(rows: &[Vec<String>], key: Option<usize>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let continuation = key.is_some_and(|k| row.get(k).is_none_or(|c| c.is_empty()));
        match out.last_mut() {
            Some(last) if continuation => last.len += 1,
            _ => out.push(Record { start: i, len: 1 }),
        }
    }
    out
}

/// Pack records into calls of about `batch_size` rows, in order. With `group`, records
/// whose parent row shares that cell's (non-empty) value go into the same call, so that
/// concurrent calls never touch one parent; a group larger than `batch_size` makes one
/// oversized call rather than two that could conflict.
pub fn plan_calls(
    rows: &[Vec<String>],
    recs: &[Record],
    batch_size: usize,
    group: Option<usize>,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    // Groups in order of first appearance; each group a list of record indexes.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_value: HashMap<&str, usize> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        let value = group
            .and_then(|g| rows[r.start].get(g))
            .map(String::as_str)
            .unwrap_or("");
        if value.is_empty() {
            groups.push(vec![i]);
        } else if let Some(&g) = by_value.get(value) {
            groups[g].push(i);
        } else {
            by_value.insert(value, groups.len());
            groups.push(vec![i]);
        }
    }
    let mut calls: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_rows = 0;
    for g in groups {
        let g_rows: usize = g.iter().map(|&i| recs[i].len).sum();
        if !current.is_empty() && current_rows + g_rows > batch_size {
            calls.push(std::mem::take(&mut current));
            current_rows = 0;
        }
        current.extend(g);
        current_rows += g_rows;
    }
    if !current.is_empty() {
        calls.push(current);
    }
    calls
}

/// What `load` answers.
#[derive(Debug, Deserialize)]
pub struct LoadResult {
    /// The records' database ids, or `false` when the call was rolled back.
    pub ids: serde_json::Value,
    #[serde(default)]
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub rows: Option<Rows>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Rows {
    pub from: usize,
    pub to: usize,
}

impl LoadResult {
    pub fn committed(&self) -> bool {
        self.ids.is_array()
    }
    pub fn errors(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.kind == "error")
    }
    /// A refusal whose only errors are serialization conflicts: the same call may pass.
    pub fn only_conflicts(&self) -> bool {
        !self.committed()
            && self.errors().next().is_some()
            && self.errors().all(|m| is_serialization_message(&m.message))
    }
}

/// How to continue after a refused call over `part` (record indexes, in call order).
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// These records are bad, each with Odoo's messages; send the rest again.
    Refuse {
        bad: BTreeMap<usize, Vec<String>>,
        rest: Vec<usize>,
    },
    /// No error names a row: send each half alone.
    Split(Vec<usize>, Vec<usize>),
    /// A single record that fails without a row: it is the bad one.
    RefuseAlone(usize, Vec<String>),
}

/// Attribute a refused call's messages to records. Serialization conflicts name rows but
/// are not the rows' fault: those records stay in `rest` and are sent again.
pub fn next_step(part: &[usize], recs: &[Record], result: &LoadResult) -> Next {
    // Row offset in the call → position in `part`.
    let mut offsets = Vec::with_capacity(part.len());
    let mut at = 0;
    for &r in part {
        offsets.push(at);
        at += recs[r].len;
    }
    let total = at;
    let record_at = |row: usize| -> Option<usize> {
        if row >= total {
            return None;
        }
        let pos = offsets.partition_point(|&o| o <= row) - 1;
        Some(part[pos])
    };
    let mut bad: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut unplaced: Vec<String> = Vec::new();
    for m in result.errors() {
        if is_serialization_message(&m.message) {
            continue;
        }
        let placed: Vec<usize> = match m.rows {
            Some(Rows { from, to }) if from <= to => {
                let mut v: Vec<usize> = (from..=to.min(total.saturating_sub(1)))
                    .filter_map(record_at)
                    .collect();
                v.dedup();
                v
            }
            _ => Vec::new(),
        };
        if placed.is_empty() {
            unplaced.push(m.message.clone());
        }
        for r in placed {
            let msgs = bad.entry(r).or_default();
            if !msgs.contains(&m.message) {
                msgs.push(m.message.clone());
            }
        }
    }
    if !bad.is_empty() {
        let rest = part
            .iter()
            .copied()
            .filter(|r| !bad.contains_key(r))
            .collect();
        return Next::Refuse { bad, rest };
    }
    if part.len() == 1 {
        if unplaced.is_empty() {
            // Refused with no error at all (only warnings): Odoo's words are all we have.
            unplaced = result.messages.iter().map(|m| m.message.clone()).collect();
        }
        if unplaced.is_empty() {
            unplaced.push("Odoo refused the record without a message".into());
        }
        return Next::RefuseAlone(part[0], unplaced);
    }
    let mid = part.len() / 2;
    Next::Split(part[..mid].to_vec(), part[mid..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn rows(keys: &[&str]) -> Vec<Vec<String>> {
        keys.iter()
            .map(|k| vec![k.to_string(), format!("v{k}")])
            .collect()
    }

    #[test]
    fn cells_are_odoo_strings() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        for (v, want) in [
            (SqlValue::Null, ""),
            (SqlValue::Int(-42), "-42"),
            (
                SqlValue::Dec(Decimal::from_str("1234.50").unwrap()),
                "1234.50",
            ),
            (
                SqlValue::Dec(Decimal::from_str("0.000000000000000000000001").unwrap()),
                "0.000000000000000000000001",
            ),
            (SqlValue::Date(d), "2026-03-09"),
            (
                SqlValue::DateTime(d.and_hms_opt(7, 5, 0).unwrap()),
                "2026-03-09 07:05:00",
            ),
            (SqlValue::Text("ACME".into()), "ACME"),
        ] {
            assert_eq!(cell(&v), want, "{v:?}");
        }
    }

    #[test]
    fn continuation_rows_join_their_parent() {
        let r = rows(&["", "a", "", "", "b", "c", ""]);
        assert_eq!(
            records(&r, Some(0)),
            vec![
                Record { start: 0, len: 1 },
                Record { start: 1, len: 3 },
                Record { start: 4, len: 1 },
                Record { start: 5, len: 2 },
            ]
        );
        assert_eq!(records(&r, None).len(), 7);
    }

    #[test]
    fn calls_never_split_a_record_or_a_group() {
        // 10 invoices of 1..=3 rows, grouped by partner p0..p2.
        let mut r = Vec::new();
        for i in 0..10 {
            r.push(vec![format!("inv{i}"), format!("p{}", i % 3)]);
            for _ in 0..(i % 3) {
                r.push(vec![String::new(), String::new()]);
            }
        }
        let recs = records(&r, Some(0));
        assert_eq!(recs.len(), 10);
        for batch in [1, 2, 4, 7, 100] {
            for group in [None, Some(1)] {
                let calls = plan_calls(&r, &recs, batch, group);
                let mut seen: Vec<usize> = calls.iter().flatten().copied().collect();
                seen.sort();
                assert_eq!(seen, (0..10).collect::<Vec<_>>(), "batch {batch}");
                for c in &calls {
                    let n: usize = c.iter().map(|&i| recs[i].len).sum();
                    assert!(
                        n <= batch || group.is_some() || c.len() == 1,
                        "batch {batch}: {n}"
                    );
                }
                if group.is_some() {
                    // Each partner's invoices in exactly one call.
                    for p in 0..3 {
                        let holding = calls
                            .iter()
                            .filter(|c| c.iter().any(|&i| r[recs[i].start][1] == format!("p{p}")))
                            .count();
                        assert_eq!(holding, 1, "batch {batch} partner {p}");
                    }
                }
            }
        }
    }

    fn refused(msgs: &[(&str, Option<(usize, usize)>)]) -> LoadResult {
        LoadResult {
            ids: serde_json::Value::Bool(false),
            messages: msgs
                .iter()
                .map(|(m, rows)| Message {
                    kind: if m.starts_with("Found more") {
                        "warning"
                    } else {
                        "error"
                    }
                    .into(),
                    message: m.to_string(),
                    rows: rows.map(|(from, to)| Rows { from, to }),
                })
                .collect(),
        }
    }

    #[test]
    fn messages_map_back_to_records() {
        let r = rows(&["a", "", "b", "c", "", "", "d"]);
        let recs = records(&r, Some(0)); // a(0-1) b(2) c(3-5) d(6)
        let part = [0, 1, 2, 3];
        // An error on a continuation row refuses its whole record; a conflict is not bad.
        let res = refused(&[
            ("bad price", Some((4, 4))),
            (
                "could not serialize access due to concurrent update",
                Some((2, 2)),
            ),
            ("Found more than 10 errors", None),
        ]);
        let mut bad = BTreeMap::new();
        bad.insert(2, vec!["bad price".to_string()]);
        assert_eq!(
            next_step(&part, &recs, &res),
            Next::Refuse {
                bad,
                rest: vec![0, 1, 3]
            }
        );
        // Row-less errors split the call, then name the last record standing.
        let res = refused(&[("Unknown error during import: x", None)]);
        assert_eq!(
            next_step(&part, &recs, &res),
            Next::Split(vec![0, 1], vec![2, 3])
        );
        assert_eq!(
            next_step(&[3], &recs, &res),
            Next::RefuseAlone(3, vec!["Unknown error during import: x".into()])
        );
        // Out-of-range rows are no attribution.
        let res = refused(&[("odd", Some((40, 41)))]);
        assert_eq!(
            next_step(&part, &recs, &res),
            Next::Split(vec![0, 1], vec![2, 3])
        );
        assert!(
            refused(&[(
                "could not serialize access due to concurrent update",
                Some((0, 0))
            )])
            .only_conflicts()
        );
        assert!(!res.only_conflicts());
    }
}
