//! Maps between places in the TOML text and dotted key paths (`primary.ssh_port`,
//! `sync_files[0].path`), so every config error names both the key and its line.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The dotted path of the innermost key or value whose span holds `offset`.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let document = DeTable::parse(text).ok()?;
    let mut path = String::new();
    let found = walk_table(document.get_ref(), offset, &mut path);
    (found && !path.is_empty()).then_some(path)
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let on_key = contains(&key.span(), offset);
        if on_key || contains(&extent(value), offset) {
            push_key(path, key.get_ref());
            if !on_key {
                walk_value(value, offset, path);
            }
            return true;
        }
    }
    false
}

fn walk_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut String) {
    match value.get_ref() {
        DeValue::Table(table) => {
            walk_table(table, offset, path);
        }
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                if contains(&extent(item), offset) {
                    path.push_str(&format!("[{index}]"));
                    walk_value(item, offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// The whole stretch of text a value covers: the parser spans a `[table]` by its header
/// alone, so a table's extent also takes in every key and value below it.
fn extent(value: &Spanned<DeValue<'_>>) -> Range<usize> {
    let mut range = value.span();
    let mut widen = |other: Range<usize>| {
        range.start = range.start.min(other.start);
        range.end = range.end.max(other.end);
    };
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, inner) in table.iter() {
                widen(key.span());
                widen(extent(inner));
            }
        }
        DeValue::Array(array) => array.iter().for_each(|item| widen(extent(item))),
        _ => {}
    }
    range
}

/// The span of a dotted key path's value, or of its nearest ancestor that the file has.
pub(super) fn span_of(text: &str, key_path: &str) -> Option<Range<usize>> {
    let document = DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut best = None;
    let mut segments = key_path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some(mut value) = table
            .iter()
            .find(|(key, _)| key.get_ref() == name)
            .map(|(_, value)| value)
        else {
            break;
        };
        if let (Some(index), DeValue::Array(array)) = (index, value.get_ref()) {
            match array.get(index) {
                Some(item) => value = item,
                None => break,
            }
        }
        best = Some(value.span());
        match value.get_ref() {
            DeValue::Table(inner) if segments.peek().is_some() => table = inner,
            _ => break,
        }
    }
    best.filter(|span| span.start < text.len())
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}
