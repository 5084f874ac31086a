//! Reading a parsed TOML document through its spans: typed getters that
//! record a problem at the offending key or value and carry on, so one pass
//! over the file reports everything that is wrong with it.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use toml_edit::{Item, TableLike, Value};

use crate::Problem;

/// Byte range of something in the configuration text.
pub(crate) type Span = Range<usize>;

/// A value read from the file and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// A table of the document (a `[header]` table, an `[[array]]` element, an
/// inline table or a dotted-key table), with the span problems about the
/// table as a whole point at: its header, or the inline table itself.
#[derive(Clone)]
pub(crate) struct TableRef<'doc> {
    table: &'doc dyn TableLike,
    span: Span,
    /// How messages name the table: `[host]`, `pair "web" primary`, ...
    name: Rc<str>,
}

impl<'doc> TableRef<'doc> {
    /// The span problems about the whole table point at.
    pub fn span(&self) -> Span {
        self.span.clone()
    }

    /// The table's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same table under another name in messages.
    pub fn renamed(self, name: String) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }

    /// Whether `key` holds a string (and not, say, a number).
    pub fn is_string(&self, key: &str) -> bool {
        self.table
            .get(key)
            .is_some_and(|item| item.as_str().is_some())
    }

    /// Whether the table has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The span of `key`'s value (or of the key itself, or of the table,
    /// whichever the parser kept).
    pub fn value_span(&self, key: &str) -> Span {
        self.table
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.table.key(key).and_then(toml_edit::Key::span))
            .unwrap_or_else(|| self.span())
    }

    /// The span of `key` itself (or of its value, when the parser kept no
    /// key span).
    pub fn key_span(&self, key: &str) -> Span {
        self.table
            .key(key)
            .and_then(toml_edit::Key::span)
            .unwrap_or_else(|| self.value_span(key))
    }
}

/// Whether a key must be present.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Required,
    Optional,
}

/// What a path must be on disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exists {
    /// A file that must exist.
    File,
    /// A directory that must exist.
    Dir,
    /// Written by the daemon: need not exist yet.
    Anything,
}

/// The reader: the text (for line and column), the file's name and
/// directory, and the problems found so far.
pub(crate) struct Reader<'text> {
    text: &'text str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    file: PathBuf,
    base: PathBuf,
    problems: Vec<Problem>,
}

impl<'text> Reader<'text> {
    /// A reader of `text`, which came from `file`.
    pub fn new(text: &'text str, file: &Path) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.char_indices()
                .filter(|(_, c)| *c == '\n')
                .map(|(i, _)| i + 1),
        );
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self {
            text,
            line_starts,
            file: file.to_path_buf(),
            base,
            problems: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(offset - line_start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// Records a problem at `span`.
    pub fn problem(&mut self, span: &Span, message: impl Into<String>) {
        let (line, column) = self.line_col(span.start);
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The problems found, in order of position, each once.
    pub fn into_problems(self) -> Vec<Problem> {
        let mut problems = self.problems;
        problems.sort_by_key(|p| (p.line, p.column));
        problems.dedup();
        problems
    }

    /// How many problems were found so far.
    pub fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// A relative path of the file resolved against the file's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    /// The root table of a document.
    pub fn root(table: &toml_edit::Table) -> TableRef<'_> {
        // The root has no header: problems about it point at line 1.
        TableRef {
            table,
            span: 0..0,
            name: "the top level".into(),
        }
    }

    /// Reports every key of `table` not in `allowed`, with a did-you-mean
    /// when one allowed key is close, else the allowed keys.
    pub fn check_keys(&mut self, table: &TableRef<'_>, allowed: &[&str]) {
        for (key, _) in table.table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let span = table.key_span(key);
            let message = match did_you_mean(key, allowed) {
                Some(close) => format!(
                    "unknown key `{key}` in {}; did you mean `{close}`?",
                    table.name()
                ),
                None => format!(
                    "unknown key `{key}` in {}; allowed: {}",
                    table.name(),
                    allowed.join(", ")
                ),
            };
            self.problem(&span, message);
        }
    }

    /// The item under `key`, or a "missing" problem at the table when it is
    /// required.
    fn item<'doc>(
        &mut self,
        table: &TableRef<'doc>,
        key: &str,
        need: Need,
    ) -> Option<(&'doc Item, Span)> {
        match table.table.get(key) {
            Some(item) if !item.is_none() => Some((item, table.value_span(key))),
            _ => {
                // A key written with a typo (`election_id`) is reported as
                // unknown with this key as its suggestion; saying it is
                // also missing would count one mistake twice.
                let misspelt = table
                    .table
                    .iter()
                    .any(|(written, _)| written != key && did_you_mean(written, &[key]).is_some());
                if need == Need::Required && !misspelt {
                    self.problem(
                        &table.span(),
                        format!("{} is missing the required key `{key}`", table.name()),
                    );
                }
                None
            }
        }
    }

    fn wrong_type(&mut self, span: &Span, key: &str, expected: &str, item: &Item) {
        self.problem(
            span,
            format!(
                "`{key}` must be {expected}, found {}",
                article(item.type_name())
            ),
        );
    }

    /// A string.
    pub fn string(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
    ) -> Option<Spanned<String>> {
        let (item, span) = self.item(table, key, need)?;
        match item.as_str() {
            Some(s) => Some(Spanned {
                value: s.to_owned(),
                span,
            }),
            None => {
                self.wrong_type(&span, key, "a string", item);
                None
            }
        }
    }

    /// A non-empty string.
    pub fn name_string(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
    ) -> Option<Spanned<String>> {
        let s = self.string(table, key, need)?;
        if s.value.trim().is_empty() {
            self.problem(&s.span, format!("`{key}` must not be empty"));
            return None;
        }
        Some(s)
    }

    /// An integer in `range`.
    pub fn integer(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
        range: RangeInclusive<i64>,
    ) -> Option<Spanned<i64>> {
        let (item, span) = self.item(table, key, need)?;
        let Some(n) = item.as_integer() else {
            self.wrong_type(&span, key, "an integer", item);
            return None;
        };
        if !range.contains(&n) {
            let bounds = if *range.end() == i64::MAX {
                format!("at least {}", range.start())
            } else {
                format!("in {}..={}", range.start(), range.end())
            };
            self.problem(&span, format!("`{key}` must be {bounds}, got {n}"));
            return None;
        }
        Some(Spanned { value: n, span })
    }

    /// A number (an integer is taken as a float) for which `ok` holds;
    /// `expected` says what `ok` wants, for the message.
    pub fn float(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
        ok: impl Fn(f64) -> bool,
        expected: &str,
    ) -> Option<Spanned<f64>> {
        let (item, span) = self.item(table, key, need)?;
        #[expect(
            clippy::cast_precision_loss,
            reason = "thresholds written as integers are 0 or 1"
        )]
        let x = match item.as_value() {
            Some(Value::Float(f)) => *f.value(),
            Some(Value::Integer(i)) => *i.value() as f64,
            _ => {
                self.wrong_type(&span, key, "a number", item);
                return None;
            }
        };
        if !(x.is_finite() && ok(x)) {
            self.problem(&span, format!("`{key}` must be {expected}, got {x}"));
            return None;
        }
        Some(Spanned { value: x, span })
    }

    /// A boolean.
    pub fn boolean(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
    ) -> Option<Spanned<bool>> {
        let (item, span) = self.item(table, key, need)?;
        match item.as_bool() {
            Some(b) => Some(Spanned { value: b, span }),
            None => {
                self.wrong_type(&span, key, "true or false", item);
                None
            }
        }
    }

    /// One of `choices` (a string).
    pub fn choice(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
        choices: &[&str],
    ) -> Option<Spanned<String>> {
        let s = self.string(table, key, need)?;
        if choices.contains(&s.value.as_str()) {
            Some(s)
        } else {
            let hint = did_you_mean(&s.value, choices)
                .map(|c| format!("; did you mean {c:?}?"))
                .unwrap_or_default();
            self.problem(
                &s.span,
                format!(
                    "`{key}` must be one of {}, got {:?}{hint}",
                    choices
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.value
                ),
            );
            None
        }
    }

    /// A path, resolved against the file's directory, checked on disk as
    /// `exists` says.
    pub fn path(
        &mut self,
        table: &TableRef<'_>,
        key: &str,
        need: Need,
        exists: Exists,
    ) -> Option<Spanned<PathBuf>> {
        let s = self.name_string(table, key, need)?;
        let path = self.resolve(&s.value);
        let problem = match exists {
            Exists::File if !path.is_file() => Some(if path.exists() {
                "is not a regular file"
            } else {
                "does not exist"
            }),
            Exists::Dir if !path.is_dir() => Some(if path.exists() {
                "is not a directory"
            } else {
                "does not exist"
            }),
            _ => None,
        };
        if let Some(problem) = problem {
            self.problem(&s.span, format!("`{key}`: {} {problem}", path.display()));
            return None;
        }
        Some(Spanned {
            value: path,
            span: s.span,
        })
    }

    /// A sub-table (`[a.b]`, `b = { ... }` or dotted keys), named `name` in
    /// messages.
    pub fn table<'doc>(
        &mut self,
        table: &TableRef<'doc>,
        key: &str,
        need: Need,
        name: String,
    ) -> Option<TableRef<'doc>> {
        let (item, span) = self.item(table, key, need)?;
        let Some(sub) = item.as_table_like() else {
            self.wrong_type(&span, key, "a table", item);
            return None;
        };
        Some(TableRef {
            table: sub,
            span,
            name: name.into(),
        })
    }
}

impl Reader<'_> {
    /// The elements of an array of tables (`[[key]]`, or an array of inline
    /// tables), each named `key N` (1-based) in messages until renamed.
    pub fn array_of_tables<'doc>(
        &mut self,
        table: &TableRef<'doc>,
        key: &str,
    ) -> Vec<TableRef<'doc>> {
        let Some((item, span)) = self.item(table, key, Need::Optional) else {
            return Vec::new();
        };
        let name = |i: usize| -> Rc<str> { format!("{key} {}", i + 1).into() };
        match item {
            Item::ArrayOfTables(array) => array
                .iter()
                .enumerate()
                .map(|(i, t)| TableRef {
                    table: t,
                    span: t.span().unwrap_or_else(|| span.clone()),
                    name: name(i),
                })
                .collect(),
            Item::Value(Value::Array(array)) => {
                let mut tables = Vec::new();
                for (i, element) in array.iter().enumerate() {
                    let element_span = element.span().unwrap_or_else(|| span.clone());
                    match element.as_inline_table() {
                        Some(t) => tables.push(TableRef {
                            table: t,
                            span: element_span,
                            name: name(i),
                        }),
                        None => self.problem(
                            &element_span,
                            format!(
                                "`{key}` must hold tables, found {}",
                                article(element.type_name())
                            ),
                        ),
                    }
                }
                tables
            }
            other => {
                self.wrong_type(
                    &span,
                    key,
                    &format!("an array of tables (`[[{key}]]`)"),
                    other,
                );
                Vec::new()
            }
        }
    }
}

/// `table`, `integer` → `a table`, `an integer`.
fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

/// The allowed key closest to `key`, when one is close enough to be what
/// was meant (`tick_ms` → `tick-ms`, `electionid` → `election-id`).
pub(crate) fn did_you_mean<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let normalised = key.to_ascii_lowercase().replace('_', "-");
    allowed
        .iter()
        .map(|a| (a, strsim::normalized_damerau_levenshtein(&normalised, a)))
        .filter(|(a, score)| *score >= 0.7 || a.replace('-', "") == normalised.replace('-', ""))
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(a, _)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nβ = \"γ\"\n\nz";
        let r = Reader::new(text, Path::new("x.toml"));
        assert_eq!(r.line_col(0), (1, 1));
        assert_eq!(r.line_col(4), (1, 5));
        // `=` on line 2 is the third character but the fourth byte.
        assert_eq!(r.line_col(text.rfind(" = ").unwrap() + 1), (2, 3));
        assert_eq!(r.line_col(text.len() - 1), (4, 1));
        assert_eq!(r.line_col(text.len() + 10), (4, 2), "clamped to the end");
    }

    #[test]
    fn did_you_mean_finds_typos_and_snake_case_only() {
        let allowed = ["name", "election-id", "tick-ms", "audit-log", "state-dir"];
        assert_eq!(did_you_mean("tick_ms", &allowed), Some("tick-ms"));
        assert_eq!(did_you_mean("electionid", &allowed), Some("election-id"));
        assert_eq!(did_you_mean("Name", &allowed), Some("name"));
        assert_eq!(did_you_mean("audit-logs", &allowed), Some("audit-log"));
        assert_eq!(did_you_mean("colour", &allowed), None);
        assert_eq!(did_you_mean("dir", &allowed), None);
    }

    #[test]
    fn relative_paths_join_the_file_directory_and_absolute_ones_stay() {
        let r = Reader::new("", Path::new("/etc/umbra/umbra.toml"));
        assert_eq!(r.resolve("p4/x"), Path::new("/etc/umbra/p4/x"));
        assert_eq!(r.resolve("/x"), Path::new("/x"));
        let r = Reader::new("", Path::new("umbra.toml"));
        assert_eq!(
            r.resolve("x"),
            Path::new("x"),
            "relative to the working directory, like the file"
        );
    }
}
