//! The SQL of `verify`'s chunks on MariaDB: the application's tables as information_schema
//! describes them, key values carried exactly from one chunk to the next, key ranges
//! written out for the range optimizer, and each row's hash.

use std::collections::HashMap;

use anyhow::bail;

use super::{client, layout};
use crate::host::Host;

/// MariaDB's own schemas: never compared (nor is ha-setup's).
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// A column of a table, as information_schema describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) column_type: String,
    pub(super) data_type: String,
    pub(super) charset: String,
    pub(super) collation: String,
    /// Its place in the primary key (1-based), or 0.
    pub(super) key_seq: u32,
    /// Only a prefix of it is in the key.
    pub(super) prefix: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableInfo {
    pub(super) schema: String,
    pub(super) name: String,
    pub(super) rows: u64,
    /// Its storage engine (`InnoDB`, `Aria`…), as information_schema names it.
    pub(super) engine: String,
    pub(super) columns: Vec<Column>,
}

impl TableInfo {
    pub(super) fn key(&self) -> Vec<&Column> {
        let mut key: Vec<&Column> = self.columns.iter().filter(|c| c.key_seq > 0).collect();
        key.sort_by_key(|c| c.key_seq);
        key
    }

    pub(super) fn from(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    /// The columns as `name type`, to tell whether two nodes' tables are alike.
    pub(super) fn shape(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.column_type))
            .collect()
    }
}

/// How a key column's values are carried from one chunk to the next, exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Number,
    Text { charset: String, collation: String },
    Binary,
    Temporal,
    Bit,
}

pub(super) fn kind(column: &Column) -> Result<Kind, String> {
    match column.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal" => Ok(Kind::Number),
        "char" | "varchar" if !column.charset.is_empty() => Ok(Kind::Text {
            charset: column.charset.clone(),
            collation: column.collation.clone(),
        }),
        "binary" | "varbinary" | "char" | "varchar" => Ok(Kind::Binary),
        "date" | "datetime" | "timestamp" | "time" | "year" => Ok(Kind::Temporal),
        "bit" => Ok(Kind::Bit),
        "enum" | "set" => Err(format!(
            "its primary key column {} is an {}, which sorts by its list rather than its text",
            column.name,
            column.data_type.to_uppercase()
        )),
        other => Err(format!(
            "its primary key column {} is of type {other}, whose values cannot be carried exactly from chunk to chunk",
            column.name
        )),
    }
}

/// What a key column is selected as: shown to people, and exact (to continue from).
pub(super) fn key_select(column: &Column, kind: &Kind) -> (String, String) {
    let c = ident(&column.name);
    match kind {
        Kind::Number | Kind::Temporal => (c.clone(), c),
        Kind::Text { .. } => (c.clone(), format!("HEX({c})")),
        Kind::Binary => (format!("CONCAT('0x', HEX({c}))"), format!("HEX({c})")),
        Kind::Bit => {
            let n = format!("CAST({c} AS UNSIGNED)");
            (n.clone(), n)
        }
    }
}

/// A key value as an SQL literal of its column's kind; refuses anything that is not what
/// the kind's select makes.
pub(super) fn literal(kind: &Kind, exact: &str) -> anyhow::Result<String> {
    let plain = |ok: &dyn Fn(char) -> bool| !exact.is_empty() && exact.chars().all(ok);
    let hex = exact.chars().all(|c| c.is_ascii_hexdigit());
    let name = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match kind {
        Kind::Number | Kind::Bit if plain(&|c| c.is_ascii_digit() || c == '-' || c == '.') => {
            Ok(exact.to_owned())
        }
        Kind::Temporal if plain(&|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | ' ')) => {
            Ok(format!("'{exact}'"))
        }
        Kind::Text { charset, collation } if hex && name(charset) && name(collation) => {
            Ok(format!("_{charset} X'{exact}' COLLATE {collation}"))
        }
        Kind::Binary if hex => Ok(format!("X'{exact}'")),
        _ => bail!("unexpected key value {exact:?} for a {kind:?} column"),
    }
}

/// `(c1, c2) > (v1, v2)` spelled out so that the range optimizer sees the range.
pub(super) fn after_sql(columns: &[String], values: &[String]) -> String {
    fn gt(columns: &[String], values: &[String]) -> String {
        match (columns, values) {
            ([c], [v]) => format!("{c} > {v}"),
            ([c, rest @ ..], [v, more @ ..]) => {
                format!("({c} > {v} OR ({c} = {v} AND {}))", gt(rest, more))
            }
            _ => unreachable!("as many values as columns"),
        }
    }
    if columns.len() == 1 {
        gt(columns, values)
    } else {
        format!(
            "{} >= {} AND {}",
            columns[0],
            values[0],
            gt(columns, values)
        )
    }
}

/// `(c1, c2) <= (v1, v2)`, spelled out.
pub(super) fn up_to_sql(columns: &[String], values: &[String]) -> String {
    fn le(columns: &[String], values: &[String]) -> String {
        match (columns, values) {
            ([c], [v]) => format!("{c} <= {v}"),
            ([c, rest @ ..], [v, more @ ..]) => {
                format!("({c} < {v} OR ({c} = {v} AND {}))", le(rest, more))
            }
            _ => unreachable!("as many values as columns"),
        }
    }
    if columns.len() == 1 {
        le(columns, values)
    } else {
        format!(
            "{} <= {} AND {}",
            columns[0],
            values[0],
            le(columns, values)
        )
    }
}

/// A row's 64-bit hash: the first 16 hex digits of the MD5 of every column, each as its
/// length and bytes (so no value can spill into the next) or `N` for NULL.
pub(super) fn row_hash(columns: &[Column]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let c = ident(&c.name);
            format!("IFNULL(CONCAT(LENGTH({c}), ':', CAST({c} AS BINARY)), 'N')")
        })
        .collect();
    format!(
        "CAST(CONV(LEFT(MD5(CONCAT({})), 16), 16, 10) AS UNSIGNED)",
        parts.join(", ")
    )
}

pub(super) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Lists the application's tables on a node, with their columns and primary keys.
pub(super) fn list_tables(host: &mut dyn Host) -> anyhow::Result<Vec<TableInfo>> {
    let excluded = SYSTEM_SCHEMAS
        .iter()
        .copied()
        .chain([layout::SCHEMA])
        .map(client::literal)
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT 'table', TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0), IFNULL(ENGINE, '') \
         FROM information_schema.TABLES \
         WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA NOT IN ({excluded}) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME;\n\
         SELECT 'column', c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.DATA_TYPE, \
         IFNULL(c.CHARACTER_SET_NAME, ''), IFNULL(c.COLLATION_NAME, ''), IFNULL(s.SEQ_IN_INDEX, 0), \
         IF(s.SUB_PART IS NULL, 0, 1) \
         FROM information_schema.COLUMNS c \
         JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
         LEFT JOIN information_schema.STATISTICS s ON s.TABLE_SCHEMA = c.TABLE_SCHEMA \
         AND s.TABLE_NAME = c.TABLE_NAME AND s.COLUMN_NAME = c.COLUMN_NAME AND s.INDEX_NAME = 'PRIMARY' \
         WHERE t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND c.TABLE_SCHEMA NOT IN ({excluded}) \
         ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION;\n"
    );
    let rows = client::rows(host, &sql)?;
    parse_tables(&rows)
}

pub(super) fn parse_tables(rows: &[Vec<Option<String>>]) -> anyhow::Result<Vec<TableInfo>> {
    let mut tables: Vec<TableInfo> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for row in rows {
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        match field(0).as_str() {
            "table" => {
                index.insert((field(1), field(2)), tables.len());
                tables.push(TableInfo {
                    schema: field(1),
                    name: field(2),
                    rows: field(3).parse().unwrap_or(0),
                    engine: field(4),
                    columns: Vec::new(),
                });
            }
            "column" => {
                let Some(&at) = index.get(&(field(1), field(2))) else {
                    continue;
                };
                tables[at].columns.push(Column {
                    name: field(3),
                    column_type: field(4),
                    data_type: field(5).to_lowercase(),
                    charset: field(6),
                    collation: field(7),
                    key_seq: field(8).parse().unwrap_or(0),
                    prefix: field(9) == "1",
                });
            }
            other => bail!("unexpected line from information_schema: {other:?}"),
        }
    }
    Ok(tables)
}

/// How `mine` differs on a replica (`theirs`, that replica's tables), when it does.
pub(super) fn differs_on(mine: &TableInfo, theirs: &[TableInfo]) -> Option<String> {
    match theirs
        .iter()
        .find(|t| t.schema == mine.schema && t.name == mine.name)
    {
        None => Some("the table is missing there".into()),
        Some(other) if other.shape() != mine.shape() => Some(format!(
            "its columns differ: ({}) on the primary, ({}) there",
            mine.shape().join(", "),
            other.shape().join(", ")
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, key_seq: u32) -> Column {
        Column {
            name: name.into(),
            column_type: data_type.into(),
            data_type: data_type.into(),
            charset: if data_type == "varchar" {
                "utf8mb4".into()
            } else {
                String::new()
            },
            collation: if data_type == "varchar" {
                "utf8mb4_general_ci".into()
            } else {
                String::new()
            },
            key_seq,
            prefix: false,
        }
    }

    #[test]
    fn composite_keys_are_compared_as_rows() {
        let columns = ["`a`".to_string(), "`b`".to_string(), "`c`".to_string()];
        let values = ["1".to_string(), "2".to_string(), "3".to_string()];
        assert_eq!(
            after_sql(&columns, &values),
            "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND (`b` > 2 OR (`b` = 2 AND `c` > 3))))"
        );
        assert_eq!(
            up_to_sql(&columns[..2], &values[..2]),
            "`a` <= 1 AND (`a` < 1 OR (`a` = 1 AND `b` <= 2))"
        );
        assert_eq!(after_sql(&columns[..1], &values[..1]), "`a` > 1");
    }

    #[test]
    fn key_values_go_back_exactly_and_nothing_else_does() {
        let text = kind(&column("name", "varchar", 1)).unwrap();
        assert_eq!(
            literal(&text, "6974277320").unwrap(),
            "_utf8mb4 X'6974277320' COLLATE utf8mb4_general_ci"
        );
        assert!(literal(&text, "41' OR 1=1 --").is_err());
        assert_eq!(literal(&Kind::Number, "-12.50").unwrap(), "-12.50");
        assert!(literal(&Kind::Number, "1; DROP").is_err());
        assert_eq!(
            literal(&Kind::Temporal, "2026-11-29 02:00:00.5").unwrap(),
            "'2026-11-29 02:00:00.5'"
        );
        assert_eq!(literal(&Kind::Binary, "00ff").unwrap(), "X'00ff'");
        assert!(kind(&column("e", "enum", 1)).unwrap_err().contains("ENUM"));
        assert!(kind(&column("f", "double", 1)).is_err());
    }

    #[test]
    fn a_null_differs_from_every_value() {
        let hash = row_hash(&[column("a", "int", 1), column("b", "varchar", 0)]);
        assert_eq!(
            hash,
            "CAST(CONV(LEFT(MD5(CONCAT(IFNULL(CONCAT(LENGTH(`a`), ':', CAST(`a` AS BINARY)), 'N'), \
             IFNULL(CONCAT(LENGTH(`b`), ':', CAST(`b` AS BINARY)), 'N'))), 16), 16, 10) AS UNSIGNED)"
        );
    }
}
