//! Spec errors that say what to fix: the file, line and column, the offending text underlined, and a
//! "did you mean" for near misses. Command-line values (`--set`) are quoted as typed.

use std::fmt;

use super::value::Origin;

/// Characters of a spec line quoted in an error, and how many of them before the error's column.
const QUOTE_CHARS: usize = 160;
const QUOTE_BEFORE: usize = 60;

/// One problem in a spec.
#[derive(Debug)]
pub struct Diagnostic {
    pub message: String,
    pub origin: Origin,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, origin: Origin) -> Self {
        Diagnostic { message: message.into(), origin, help: None }
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// All problems found in a spec (validation goes on after the first, so one edit fixes many).
#[derive(Debug)]
pub struct SpecError(pub Vec<Diagnostic>);

impl From<Diagnostic> for SpecError {
    fn from(d: Diagnostic) -> Self {
        SpecError(vec![d])
    }
}

impl std::error::Error for SpecError {}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} problems found", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        match &self.origin {
            Origin::File { file, span } => {
                let (line, col) = line_col(&file.text, span.start);
                let full = file.text.lines().nth(line - 1).unwrap_or("");
                let gutter = line.to_string().len();
                writeln!(f, "{:gutter$}--> {}:{line}:{col}", "", file.path.display())?;
                writeln!(f, "{:gutter$} |", "")?;
                // A long line (a grid of 10,000 values) is quoted around the column only.
                let skip = (col - 1).saturating_sub(QUOTE_BEFORE);
                let shown: String = full.chars().skip(skip).take(QUOTE_CHARS).collect();
                let more = if full.chars().count() > skip + QUOTE_CHARS { " ..." } else { "" };
                let (lead, text) = if skip > 0 { ("... ", format!("... {shown}")) } else { ("", shown) };
                writeln!(f, "{line} | {text}{more}")?;
                // Underline the span, clipped to its first line and to what is quoted.
                let start = col - 1 - skip + lead.len();
                let span_chars = file.text[span.clone()].chars().take_while(|&c| c != '\n').count();
                let width = span_chars.max(1).min(text.chars().count().saturating_sub(start).max(1));
                writeln!(f, "{:gutter$} | {:start$}{}", "", "", "^".repeat(width))?;
            }
            Origin::Cli { arg } => writeln!(f, "  --> command line: --set {arg}")?,
            Origin::Default | Origin::Derived => {}
        }
        if let Some(help) = &self.help {
            writeln!(f, "  = help: {help}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// The candidate closest to `word` when it is close enough to be a plausible typo, also matching a
/// bare last segment (`pretrain` -> `backbone.pretrain`).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for cand in candidates {
        let last = cand.rsplit('.').next().unwrap_or(cand);
        let score = if cand.eq_ignore_ascii_case(word) || last == word_lower {
            2.0
        } else {
            let d = strsim::damerau_levenshtein(&word_lower, cand).min(strsim::damerau_levenshtein(&word_lower, last));
            let limit = (word.len().max(3) / 3).max(1);
            if d <= limit {
                1.0 - d as f64 / 10.0
            } else {
                strsim::jaro_winkler(&word_lower, cand).max(strsim::jaro_winkler(&word_lower, last)) - 0.2
            }
        };
        if score > 0.7 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_words() {
        let keys = ["lr", "epochs", "backbone.pretrain", "color_space", "batch_size"];
        assert_eq!(did_you_mean("epoch", keys), Some("epochs"));
        assert_eq!(did_you_mean("pretrain", keys), Some("backbone.pretrain"));
        assert_eq!(did_you_mean("colour_space", keys), Some("color_space"));
        assert_eq!(did_you_mean("batchsize", keys), Some("batch_size"));
        assert_eq!(did_you_mean("LR", keys), Some("lr"));
        assert_eq!(did_you_mean("zebra", keys), None);
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, text.find('=').unwrap()), (1, 3));
        let second_eq = text.rfind('=').unwrap();
        assert_eq!(line_col(text, second_eq), (2, 4));
    }
}
