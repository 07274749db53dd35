//! Records the store's contract tests share.

use std::collections::BTreeMap;

use strongroom_store::BucketRecord;

/// A bucket record of account 000000000001 with no configuration.
pub fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        id: String::new(),
        owner: "000000000001".into(),
        created_ms: 0,
        location: None,
        tags: None,
        configs: BTreeMap::new(),
    }
}
