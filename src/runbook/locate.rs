//! Map between byte offsets in the runbook text and dotted key paths, so that every
//! diagnostic can name the line and column a person should look at.

use toml_edit::{Document, Item, Value};

pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// Byte offset of the deepest existing key along `path` (the key itself, else its value).
pub fn offset_of(text: &str, path: &str) -> Option<usize> {
    let doc = Document::parse(text).ok()?;
    let mut item: Item = doc.as_item().clone();
    let mut best: Option<usize> = None;
    for seg in segments(path) {
        let next = match seg {
            Seg::Key(k) => {
                let Some((key, it)) = item.as_table_like().and_then(|t| t.get_key_value(k)) else {
                    return best;
                };
                best = key.span().or(it.span()).map(|s| s.start).or(best);
                it.clone()
            }
            Seg::Index(i) => match &item {
                Item::ArrayOfTables(a) => {
                    let t = a.get(i)?;
                    best = t.span().map(|s| s.start).or(best);
                    Item::Table(t.clone())
                }
                Item::Value(Value::Array(a)) => {
                    let v = a.get(i)?;
                    best = v.span().map(|s| s.start).or(best);
                    Item::Value(v.clone())
                }
                _ => return best,
            },
        };
        item = next;
    }
    best
}

/// Dotted path of the deepest key whose key or value span contains `offset`.
pub fn path_at(text: &str, offset: usize) -> Option<String> {
    let doc = Document::parse(text).ok()?;
    let mut path = String::new();
    walk(doc.as_item(), offset, &mut path);
    if path.is_empty() { None } else { Some(path) }
}

fn walk(item: &Item, offset: usize, path: &mut String) {
    let contains =
        |s: Option<std::ops::Range<usize>>| s.is_some_and(|s| s.start <= offset && offset <= s.end);
    match item {
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                if contains(t.span())
                    || t.iter()
                        .any(|(k, _)| t.key(k).is_some_and(|key| contains(key.span())))
                {
                    path.push_str(&format!("[{i}]"));
                    walk(&Item::Table(t.clone()), offset, path);
                    return;
                }
            }
        }
        Item::Value(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                if contains(v.span()) {
                    path.push_str(&format!("[{i}]"));
                    walk(&Item::Value(v.clone()), offset, path);
                    return;
                }
            }
        }
        _ => {
            if let Some(t) = item.as_table_like() {
                for (k, v) in t.iter() {
                    let key_span = t.get_key_value(k).and_then(|(key, _)| key.span());
                    let in_table = matches!(v, Item::Table(_) | Item::ArrayOfTables(_))
                        && subtree_contains(v, offset);
                    if contains(key_span) || contains(v.span()) || in_table {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(k);
                        walk(v, offset, path);
                        return;
                    }
                }
            }
        }
    }
}

/// The key at `offset` read off the text line by line, for text that does not parse as
/// TOML: the last table header before it (`[a.b]`, or `[[steps]]` counted as `steps[N]`)
/// and the bare key the line starts with.
pub fn path_guess(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let mut table = String::new();
    let mut arrays: std::collections::HashMap<String, usize> = Default::default();
    for line in text[..line_end].lines() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("[[") {
            let name = name.split("]]").next().unwrap_or(name).trim().to_string();
            let n = arrays.entry(name.clone()).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[') {
            table = name.split(']').next().unwrap_or(name).trim().to_string();
        }
    }
    let line = text[line_start..line_end].trim_start();
    let key: String = if line.starts_with('[') {
        String::new()
    } else {
        line.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    };
    match (table.is_empty(), key.is_empty()) {
        (true, true) => None,
        (true, false) => Some(key),
        (false, true) => Some(table),
        (false, false) => Some(format!("{table}.{key}")),
    }
}

/// Tables declared with `[header]` have no span covering their body; look at their keys.
fn subtree_contains(item: &Item, offset: usize) -> bool {
    let within =
        |s: Option<std::ops::Range<usize>>| s.is_some_and(|s| s.start <= offset && offset <= s.end);
    match item {
        Item::Table(t) => {
            within(t.span())
                || t.iter().any(|(k, v)| {
                    within(t.key(k).and_then(|key| key.span()))
                        || within(v.span())
                        || subtree_contains(v, offset)
                })
        }
        Item::ArrayOfTables(a) => a
            .iter()
            .any(|t| subtree_contains(&Item::Table(t.clone()), offset)),
        _ => within(item.span()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[runbook]\nname = \"x\"\n\n[entities.customers]\nkey = \"id\"\nvalidate = [\n  { rule = \"required\", field = \"id\" },\n  { rule = \"unique\", field = \"nope\" },\n]\n";

    #[test]
    fn finds_nested_array_element_keys() {
        let off = offset_of(DOC, "entities.customers.validate[1].field").unwrap();
        assert_eq!(line_col(DOC, off).0, 8);
        assert_eq!(
            path_at(DOC, off).as_deref(),
            Some("entities.customers.validate[1].field")
        );
    }

    #[test]
    fn guesses_the_key_of_text_that_is_not_toml() {
        let text = "[runbook]\nname = \"x\"\nname = \"y\"\n[[steps]]\nid = 1\n[[steps]]\nid = \n[entities.c\n";
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(
            path_guess(text, at("name = \"y")).as_deref(),
            Some("runbook.name")
        );
        assert_eq!(
            path_guess(text, at("id = \n")).as_deref(),
            Some("steps[1].id")
        );
        assert_eq!(
            path_guess(text, at("[entities.c") + 3).as_deref(),
            Some("entities.c")
        );
    }

    #[test]
    fn falls_back_to_deepest_existing_key() {
        let off = offset_of(DOC, "entities.customers.missing").unwrap();
        assert_eq!(line_col(DOC, off).0, 4);
    }
}
