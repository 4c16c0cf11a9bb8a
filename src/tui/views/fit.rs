//! Fitting a line of labels and figures into a width without ever cutting a figure: labels
//! give way first (ellipsised, longest first), then whole trailing figures are dropped
//! behind a `…`. A cut figure lies (`loaded 440` for 440,944); a cut label does not.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// One piece of a fitted line.
#[derive(Debug, Clone)]
pub enum Part {
    /// Words that may be ellipsised (down to one character and `…`).
    Label(String, Style),
    /// A number, amount or duration: shown whole or not at all.
    Figure(String, Style),
    /// Spacing and separators: kept as they are.
    Sep(String, Style),
}

impl Part {
    pub fn label(s: impl Into<String>) -> Part {
        Part::Label(s.into(), Style::new())
    }
    pub fn figure(s: impl Into<String>) -> Part {
        Part::Figure(s.into(), Style::new())
    }
    pub fn sep(s: impl Into<String>) -> Part {
        Part::Sep(s.into(), Style::new())
    }
    pub fn styled(self, st: Style) -> Part {
        match self {
            Part::Label(s, _) => Part::Label(s, st),
            Part::Figure(s, _) => Part::Figure(s, st),
            Part::Sep(s, _) => Part::Sep(s, st),
        }
    }
    fn text(&self) -> &str {
        match self {
            Part::Label(s, _) | Part::Figure(s, _) | Part::Sep(s, _) => s,
        }
    }
    fn width(&self) -> usize {
        Span::raw(self.text()).width()
    }
    fn span(self) -> Span<'static> {
        match self {
            Part::Label(s, st) | Part::Figure(s, st) | Part::Sep(s, st) => Span::styled(s, st),
        }
    }
}

/// Width of the parts as they stand.
pub fn width(parts: &[Part]) -> usize {
    parts.iter().map(Part::width).sum()
}

/// `s` cut to `w` columns with an ellipsis (`w` ≥ 2 keeps at least one character).
pub fn ellipsis(s: &str, w: usize) -> String {
    if Span::raw(s).width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    for ch in s.chars() {
        if Span::raw(format!("{out}{ch}")).width() + 1 > w {
            break;
        }
        out.push(ch);
    }
    out.push('…');
    out
}

/// The parts in at most `max` columns: labels ellipsised longest first; if that is not
/// enough, trailing parts are dropped whole and a `…` says so. A figure is never cut.
pub fn fit(mut parts: Vec<Part>, max: usize) -> Line<'static> {
    while width(&parts) > max {
        // Longest label that can still shrink (one character and `…` is the least).
        let longest = parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Part::Label(s, _) if Span::raw(s.as_str()).width() > 2 => {
                    Some((Span::raw(s.as_str()).width(), i))
                }
                _ => None,
            })
            .max_by_key(|(w, i)| (*w, usize::MAX - i));
        match longest {
            Some((w, i)) => {
                if let Part::Label(s, _) = &mut parts[i] {
                    *s = ellipsis(s, w - 1);
                }
            }
            None => {
                // Nothing left to shorten: drop trailing parts whole, until the marker fits.
                while !parts.is_empty() && width(&parts) + 1 > max {
                    parts.pop();
                }
                while matches!(parts.last(), Some(Part::Sep(..) | Part::Label(..))) {
                    parts.pop();
                }
                parts.push(Part::sep("…"));
                break;
            }
        }
    }
    Line::from(parts.into_iter().map(Part::span).collect::<Vec<_>>())
}

/// Free text cut to `max` columns with a `…` where it was cut, styles kept: a log line
/// that says "done: 44,4…" at least shows it goes on.
pub fn truncate(line: Line<'static>, max: usize) -> Line<'static> {
    if line.width() <= max {
        return line;
    }
    let room = max.saturating_sub(1);
    let mut used = 0;
    let mut spans = Vec::new();
    for span in line.spans {
        let w = span.width();
        if used + w <= room {
            used += w;
            spans.push(span);
            continue;
        }
        let cut = ellipsis(&span.content, room - used + 1);
        let cut = cut.trim_end_matches('…').to_string();
        spans.push(Span::styled(cut, span.style));
        break;
    }
    spans.push(Span::raw("…"));
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn stats(valid: &str, rej: &str, loaded: &str) -> Vec<Part> {
        vec![
            Part::sep("  "),
            Part::label("valid"),
            Part::sep(" "),
            Part::figure(valid),
            Part::sep(" · "),
            Part::label("rej"),
            Part::sep(" "),
            Part::figure(rej),
            Part::sep(" · "),
            Part::label("loaded"),
            Part::sep(" "),
            Part::figure(loaded),
        ]
    }

    #[test]
    fn labels_give_way_figures_stay_whole() {
        for width in [30, 34, 38, 40, 44, 60] {
            let l = fit(stats("440,000", "944", "440,944"), width);
            let t = text(&l);
            assert!(l.width() <= width, "{width}: {t:?} is {} wide", l.width());
            // Every figure whole, or (when not even shortened labels fit) dropped behind `…`.
            for fig in ["440,000", "944", "440,944"] {
                assert!(
                    t.contains(fig) || t.ends_with('…'),
                    "{width}: {fig} cut in {t:?}"
                );
            }
            assert!(!t.contains(" 440 ") && !t.ends_with(" 440"), "{t:?}");
        }
        assert_eq!(
            text(&fit(stats("440,000", "944", "440,944"), 60)),
            "  valid 440,000 · rej 944 · loaded 440,944"
        );
        // The case: 38 columns, the labels shrink, the loaded figure stays whole.
        let t = text(&fit(stats("440,000", "944", "440,944"), 38));
        assert!(t.ends_with("440,944"), "{t:?}");
        assert!(t.contains('…'), "{t:?}");
    }

    #[test]
    fn too_narrow_for_all_figures_drops_whole_ones() {
        let t = text(&fit(stats("440,000", "944", "440,944"), 20));
        assert!(t.ends_with('…'), "{t:?}");
        assert!(t.contains("440,000"), "{t:?}");
        assert!(!t.contains("440,9"), "{t:?}");
    }

    #[test]
    fn ellipsis_keeps_one_character() {
        assert_eq!(ellipsis("loaded", 6), "loaded");
        assert_eq!(ellipsis("loaded", 4), "loa…");
        assert_eq!(ellipsis("loaded", 2), "l…");
    }

    #[test]
    fn free_text_is_cut_with_a_marker() {
        let l = Line::from(vec![
            Span::raw("18:46:22 "),
            Span::raw("customers done: 44,456 valid"),
        ]);
        let t = text(&truncate(l.clone(), 25));
        assert_eq!(t, "18:46:22 customers done:…");
        assert_eq!(Line::from(t.as_str()).width(), 25);
        assert_eq!(text(&truncate(l.clone(), 80)), text(&l));
        assert_eq!(text(&truncate(l, 5)), "18:4…");
    }
}
