//! The one seam between Strongbox's SQL and the two drivers (rusqlite for SQLite,
//! sqlx for PostgreSQL and MySQL/MariaDB).
//!
//! Every statement of [`crate::sql`] is run through [`Exec`] with its parameters as a
//! list of [`Arg`]s, and every result row is read through [`Row`] by one mapper per
//! row type, so each store operation ([`crate::ops`]) and each read (`Store`'s
//! methods) is written once. A backend supplies only what really differs: how a
//! statement reaches its driver, its transactions and its dialect.

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::schema::Dialect;
use crate::{Result, StoreError};

/// One bound parameter. Nulls carry their type: PostgreSQL needs it for a bind.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
}

/// A reference to a value that binds as one [`Arg`] borrowing from it.
pub(crate) trait ToArg<'a> {
    fn arg(self) -> Arg<'a>;
}

impl<'a> ToArg<'a> for &'a i64 {
    fn arg(self) -> Arg<'a> {
        Arg::Int(Some(*self))
    }
}
impl<'a> ToArg<'a> for &'a Option<i64> {
    fn arg(self) -> Arg<'a> {
        Arg::Int(*self)
    }
}
impl<'a> ToArg<'a> for &'a str {
    fn arg(self) -> Arg<'a> {
        Arg::Text(Some(self))
    }
}
impl<'a> ToArg<'a> for &'a String {
    fn arg(self) -> Arg<'a> {
        Arg::Text(Some(self))
    }
}
impl<'a> ToArg<'a> for &'a Option<String> {
    fn arg(self) -> Arg<'a> {
        Arg::Text(self.as_deref())
    }
}
impl<'a> ToArg<'a> for &'a [u8] {
    fn arg(self) -> Arg<'a> {
        Arg::Bytes(Some(self))
    }
}
impl<'a> ToArg<'a> for &'a Vec<u8> {
    fn arg(self) -> Arg<'a> {
        Arg::Bytes(Some(self))
    }
}
impl<'a> ToArg<'a> for &'a Option<Vec<u8>> {
    fn arg(self) -> Arg<'a> {
        Arg::Bytes(self.as_deref())
    }
}
/// A reference held in a variable binds as what it points to.
impl<'a, T: ?Sized> ToArg<'a> for &&'a T
where
    &'a T: ToArg<'a>,
{
    fn arg(self) -> Arg<'a> {
        (*self).arg()
    }
}

/// The parameter list of one statement: `args![tenant, token, version]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        [$($crate::exec::ToArg::arg(&$a)),*]
    };
}
pub(crate) use args;

/// A statement's text, in `?` form (PostgreSQL's `$n` is derived by its executor).
pub(crate) type Sql = Cow<'static, str>;

/// A column type both drivers can read.
pub(crate) trait Col:
    rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>
{
}
impl<T> Col for T where
    T: rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>
{
}

/// One result row of either driver.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Any(&'a sqlx::any::AnyRow),
}

impl Row<'_> {
    pub(crate) fn get<T: Col>(&self, i: usize) -> Result<T> {
        match self {
            Row::Sqlite(r) => r.get(i).map_err(backend),
            Row::Any(r) => sqlx::Row::try_get(*r, i).map_err(backend),
        }
    }
}

/// Turns a row into a value; one per row type (see `rows`).
pub(crate) type Map<T> = fn(&Row<'_>) -> Result<T>;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A failed statement, telling a unique-key violation apart: operations decide what
/// one means (a taken index, a lost race, nothing to do).
#[derive(Debug)]
pub(crate) enum DbError {
    Unique(StoreError),
    Other(StoreError),
}

impl DbError {
    pub(crate) fn is_unique(&self) -> bool {
        matches!(self, DbError::Unique(_))
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique(e) | DbError::Other(e) => e,
        }
    }
}

/// Runs statements inside one transaction (a write). Both methods take the
/// statement in `?` form. The futures are `Send` by declaration, so that an
/// operation written against this trait can run on any tokio worker.
pub(crate) trait Exec: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; returns the rows it changed.
    fn execute(
        &mut self,
        sql: Sql,
        args: &[Arg<'_>],
    ) -> impl Future<Output = std::result::Result<u64, DbError>> + Send;

    /// Runs a query and maps every row.
    fn query<T: Send>(
        &mut self,
        sql: Sql,
        args: &[Arg<'_>],
        map: Map<T>,
    ) -> impl Future<Output = Result<Vec<T>>> + Send;
}

/// Runs a future that never waits (one driven by SQLite's synchronous executor)
/// to completion on the calling thread.
pub(crate) fn run_ready<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StoreError::Backend(
            "internal error: a SQLite operation waited".into(),
        )),
    }
}
