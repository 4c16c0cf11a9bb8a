//! Styles. Colour only reinforces: every state also has a glyph and a word, and the
//! strong cues (production, selection) use bold/reverse, which survive NO_COLOR.

use ratatui::style::{Color, Modifier, Style};

use crate::app::Tone;

pub fn tone(t: Tone) -> Style {
    match t {
        Tone::Neutral => Style::new(),
        Tone::Active => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        Tone::Good => Style::new().fg(Color::Green),
        Tone::Warn => Style::new().fg(Color::Yellow),
        Tone::Bad => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

pub fn production() -> Style {
    Style::new()
        .fg(Color::Red)
        .add_modifier(Modifier::BOLD | Modifier::REVERSED)
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn header_row() -> Style {
    Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
}

pub fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

pub fn key() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}
