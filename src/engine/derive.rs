//! Derived entities: rows made from another entity's distinct values (vehicle brands from
//! the vehicles' `make`, models from their `make` and `model`), written as a small CSV file
//! beside the extract so that they go through the pipeline like any entity. Only the
//! distinct tuples are held in memory, never the rows they come from.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result};

use super::rules::{Compiled, RunState, Verdict};
use crate::sources::csv::{CsvSource, Decoded};

/// Rule names a source row may fail and still give its values: references are judged
/// later in the run, once the entities they name are loaded.
const JUDGED_LATER: &[&str] = &["reference", "lookup"];

/// Read `source` (an extract of the entity `rules` compiles) and write to `out` one row per
/// distinct tuple of `distinct` among its in-scope rows that pass its rules, header first.
/// A tuple with an empty value gives no row (an Odoo record needs its name): the rows that
/// carry it are refused by the target, with its message, when they point at it.
/// Returns the number of rows written.
pub fn write_distinct(
    rules: &Compiled,
    source: &Path,
    distinct: &[String],
    out: &Path,
) -> Result<u64> {
    let idx: Vec<usize> = distinct
        .iter()
        .map(|f| {
            rules
                .column_index(f)
                .with_context(|| format!("entity {} has no column '{f}'", rules.name))
        })
        .collect::<Result<_>>()?;
    let mut src = CsvSource::open(source, &rules.columns, rules.dialect)?;
    let mut state = RunState::default();
    let (refs, scope_refs) = (HashMap::new(), HashMap::new());
    let mut tuples: BTreeSet<Vec<String>> = BTreeSet::new();
    while let Some(raw) = src
        .next_row()
        .with_context(|| format!("reading {}", source.display()))?
    {
        let Decoded::Fields(f) = src.decode(&raw) else {
            continue;
        };
        let fields = match rules.process_with(f, src.nulls(), &mut state, &refs, &scope_refs) {
            Verdict::Valid { fields, .. } => fields,
            Verdict::Rejected { fields, issues }
                if issues
                    .iter()
                    .all(|i| JUDGED_LATER.contains(&i.rule.as_str())) =>
            {
                fields
            }
            _ => continue,
        };
        let tuple: Vec<String> = idx.iter().map(|&i| fields[i].clone()).collect();
        if tuple.iter().any(String::is_empty) || tuples.contains(&tuple) {
            continue;
        }
        tuples.insert(tuple);
    }
    let mut w =
        csv::Writer::from_path(out).with_context(|| format!("writing {}", out.display()))?;
    w.write_record(distinct)?;
    for t in &tuples {
        w.write_record(t)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(tuples.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference runbook's vehicles entity (its rules, as tms-odoo.toml writes them).
    fn vehicles() -> indexmap::IndexMap<String, crate::runbook::format::Entity> {
        let e: crate::runbook::format::Entity = toml::from_str(
            r#"
            source = { file = "vehicles.csv", multiline = true }
            columns = ["legacy_id", "plate", "vin", "make", "model", "year", "capacity_kg"]
            key = "legacy_id"
            validate = [
              { rule = "unique", field = "legacy_id" },
              { rule = "pattern", field = "vin", regex = "^[A-HJ-NPR-Z0-9]{17}$" },
            ]
            target = { model = "fleet.vehicle", external_id = "tms_vehicle" }
            map = { license_plate = "plate" }
            "#,
        )
        .unwrap();
        [("vehicles".to_string(), e)].into_iter().collect()
    }

    #[test]
    fn brands_and_models_are_the_distinct_values_of_valid_vehicles() {
        let all = vehicles();
        let rules = Compiled::new("vehicles", &all["vehicles"], &all).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("vehicles.csv");
        // Two rows of one brand and model, a model whose text holds a comma, quotes and a
        // line break, a row with a bad VIN (its values give nothing), an empty make.
        std::fs::write(
            &src,
            "legacy_id,plate,vin,make,model,year,capacity_kg\n\
             V1,AB-1,1HGBH41JXMN109186,Volvo,FH16,2019,18000\n\
             V2,AB-2,1HGBH41JXMN109187,Volvo,FH16,2020,18000\n\
             V3,AB-3,1HGBH41JXMN109188,Volvo,\"FH, \"\"XL\"\"\nlong\",2020,18000\n\
             V4,AB-4,NOT-A-VIN,Scania,R450,2020,18000\n\
             V5,AB-5,1HGBH41JXMN109189,,R450,2020,18000\n\
             V6,AB-6,1HGBH41JXMN109180,MAN,TGX,2021,18000\n",
        )
        .unwrap();
        let brands = dir.path().join("brands.csv");
        let n = write_distinct(&rules, &src, &["make".into()], &brands).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            std::fs::read_to_string(&brands).unwrap(),
            "make\nMAN\nVolvo\n"
        );
        let models = dir.path().join("models.csv");
        let n = write_distinct(&rules, &src, &["make".into(), "model".into()], &models).unwrap();
        assert_eq!(n, 3);
        let mut r = csv::Reader::from_path(&models).unwrap();
        let rows: Vec<Vec<String>> = r
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(
            rows,
            vec![
                vec!["MAN".to_string(), "TGX".into()],
                vec!["Volvo".into(), "FH, \"XL\"\nlong".into()],
                vec!["Volvo".into(), "FH16".into()],
            ]
        );
    }
}
