//! The storage error type.

/// What can go wrong below the S3 rules.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata store: {0}")]
    Db(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("blob missing")]
    MissingBlob,
    #[error("commit batch aborted")]
    Aborted,
    #[error("store is shutting down")]
    Closed,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
