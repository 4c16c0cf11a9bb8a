//! The dossier as JSON: the model serialized, nothing added.

use super::model::Dossier;

pub fn render(d: &Dossier) -> String {
    let mut s = serde_json::to_string_pretty(d).expect("the dossier model always serializes");
    s.push('\n');
    s
}
