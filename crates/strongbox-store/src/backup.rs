//! Whole-store export and import, for backups and restores: every table as rows of
//! typed cells, read from one consistent snapshot while the vault keeps serving
//! (an SQLite read transaction on its own connection; a PostgreSQL/MariaDB
//! transaction, whose reads all see one snapshot under REPEATABLE READ).
//!
//! What is exported is what the database holds: ciphertext, wrapped keys, index
//! digests, audit rows and links. The root key is never in the database, so never in
//! a backup.

/// The type of a column as backups carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bytes,
}

/// One value of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A table as backups see it: its columns in order, and the order rows are read in.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub order: &'static str,
}

use Kind::{Bytes as B, Int as I, Text as T};

/// Every table of schema version [`SCHEMA_VERSION`], in restore order.
pub const TABLES: &[Table] = &[
    Table {
        name: "meta",
        columns: &[("name", T), ("value", B)],
        order: "name",
    },
    Table {
        name: "key_ring",
        columns: &[
            ("tenant", T),
            ("kind", T),
            ("version", I),
            ("wrapped", B),
            ("created", I),
        ],
        order: "tenant, kind, version",
    },
    Table {
        name: "users",
        columns: &[
            ("tenant", T),
            ("token", T),
            ("kek_version", I),
            ("wrapped_dek", B),
            ("data", B),
            ("version", I),
            ("created", I),
            ("updated", I),
            ("erased", I),
        ],
        order: "tenant, token",
    },
    Table {
        name: "user_index",
        columns: &[
            ("tenant", T),
            ("name", T),
            ("digest", B),
            ("token", T),
            ("key_version", I),
        ],
        order: "tenant, name, digest",
    },
    Table {
        name: "records",
        columns: &[
            ("tenant", T),
            ("kind", T),
            ("id", T),
            ("owner", T),
            ("label", T),
            ("created", I),
            ("updated", I),
            ("expires", I),
            ("version", I),
            ("meta", B),
            ("body", B),
            ("kek_version", I),
            ("wrapped_dek", B),
        ],
        order: "tenant, kind, id",
    },
    Table {
        name: "audit",
        columns: &[
            ("id", I),
            ("atoken", T),
            ("tenant", T),
            ("at", I),
            ("actor", T),
            ("action", T),
            ("record", T),
            ("status", T),
            ("app", T),
            ("detail", B),
            ("classes", T),
            ("name", T),
        ],
        order: "id",
    },
    Table {
        name: "audit_seal",
        columns: &[("tenant", T), ("seq", I), ("audit_id", I), ("hash", B)],
        order: "tenant, seq",
    },
    Table {
        name: "audit_head",
        columns: &[
            ("tenant", T),
            ("seq", I),
            ("hash", B),
            ("max_id", I),
            ("gaps", T),
            ("version", I),
        ],
        order: "tenant",
    },
    Table {
        name: "audit_checkpoint",
        columns: &[
            ("tenant", T),
            ("seq", I),
            ("hash", B),
            ("at", I),
            ("signature", B),
        ],
        order: "tenant, seq",
    },
];

/// Tables of the audit log: history, which a restore over an existing store keeps
/// (the data tables are replaced; the events that happened since the backup — the
/// erasures among them — stay, and new events continue the same chain).
pub const AUDIT_TABLES: &[&str] = &["audit", "audit_seal", "audit_head", "audit_checkpoint"];

impl Table {
    /// Whether this is one of [`AUDIT_TABLES`].
    pub fn is_audit(&self) -> bool {
        AUDIT_TABLES.contains(&self.name)
    }
}

/// The schema version backups are written in and restored into.
pub const SCHEMA_VERSION: i64 = 5;

/// The oldest schema version whose backups restore: version 5 widened a column and
/// added `audit.name`, which a version-4 row lacks (it restores as NULL).
pub const OLDEST_RESTORED_SCHEMA: i64 = 4;

/// Columns added after the oldest schema whose backups restore: (table, column, the
/// version that added it). Each is its table's last column, nullable, and restores as
/// NULL from a backup written before it.
const ADDED: &[(&str, &str, i64)] = &[("audit", "name", 5)];

impl Table {
    /// How many values a row of this table has in a backup of schema `schema`.
    pub fn width_at(&self, schema: i64) -> usize {
        let newer = ADDED
            .iter()
            .filter(|(t, _, since)| *t == self.name && *since > schema)
            .count();
        self.columns.len() - newer
    }
}

/// The table named `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

impl Table {
    pub(crate) fn select(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|(c, _)| *c).collect();
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            cols.join(", "),
            self.name,
            self.order
        )
    }

    pub(crate) fn insert(&self, rows: usize) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|(c, _)| *c).collect();
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.name,
            cols.join(", "),
            crate::sql::values_list(rows, cols.len())
        )
    }
}

/// A row read during an export: which table, and its cells.
pub type ExportedRow = (&'static Table, Vec<Cell>);
