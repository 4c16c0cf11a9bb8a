//! Reject files read back for the dossier: rows and money per rule. The run's own sums (in
//! the journal) stay the money left behind per entity; this only splits it by rule.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;

use super::model::RejectTally;
use crate::engine::pipeline::NO_CURRENCY;
use crate::engine::rules::parse_decimal;

/// A money field of an entity and the field holding its currency, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyField {
    pub field: String,
    pub currency: Option<String>,
}

/// Rows and money per rule in one reject file. A row broken by several rules (joined with
/// " | " in `_rule`) counts under each of them.
pub fn tally(path: &Path, money: &[MoneyField]) -> Result<RejectTally, String> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("cannot read the header of {}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let rule_col = col("_rule").ok_or_else(|| format!("{} has no _rule column", path.display()))?;
    // (field, its column, whether it has a currency, the currency's column)
    let fields: Vec<(String, Option<usize>, bool, Option<usize>)> = money
        .iter()
        .map(|m| {
            (
                m.field.clone(),
                col(&m.field),
                m.currency.is_some(),
                m.currency.as_deref().and_then(col),
            )
        })
        .collect();
    let mut t = RejectTally::default();
    for row in r.records() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        let mut rules: Vec<&str> = row
            .get(rule_col)
            .unwrap_or("")
            .split(" | ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        rules.sort_unstable();
        rules.dedup();
        if rules.is_empty() {
            rules.push("(none)");
        }
        let mut amounts: Vec<((String, String), Decimal)> = Vec::new();
        for (field, at, has_currency, cur) in &fields {
            let Some(d) = at
                .and_then(|i| row.get(i))
                .and_then(|v| parse_decimal(v.trim()))
            else {
                continue;
            };
            // Keyed as the run keys its sums (`pipeline::add_to`).
            let currency = if *has_currency {
                match cur.and_then(|i| row.get(i)).map(str::trim) {
                    None | Some("") => NO_CURRENCY.to_string(),
                    Some(c) => c.to_string(),
                }
            } else {
                String::new()
            };
            amounts.push(((field.clone(), currency), d));
        }
        for rule in rules {
            let e = t
                .by_rule
                .entry(rule.to_string())
                .or_insert((0, BTreeMap::new()));
            e.0 += 1;
            for (k, d) in &amounts {
                *e.1.entry(k.clone()).or_default() += *d;
            }
        }
    }
    Ok(t)
}
