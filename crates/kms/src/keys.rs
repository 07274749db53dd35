//! Key records and their persistence (the store's system table, under
//! `kms/key/<id>` and `kms/alias/<account>/<name>`). Key material is kept
//! only sealed under the server master key.

use serde::{Deserialize, Serialize};

/// One version of a key's material (rotation adds one; all stay usable
/// for decryption).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Material {
    pub version: u32,
    /// Id of the master key that seals it.
    pub master: String,
    /// base64 of the sealed material.
    pub sealed: String,
    pub created: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub account: String,
    pub arn: String,
    pub description: String,
    /// Enabled, Disabled or PendingDeletion.
    pub state: String,
    pub created: i64,
    pub deletion_date: Option<i64>,
    /// CUSTOMER or AWS.
    pub manager: String,
    pub rotation_enabled: bool,
    pub rotation_period_days: u32,
    pub next_rotation: Option<i64>,
    pub rotations: Vec<i64>,
    pub materials: Vec<Material>,
    pub policy: String,
    pub tags: Vec<(String, String)>,
}

impl KeyRecord {
    pub fn current(&self) -> Option<&Material> {
        self.materials.iter().max_by_key(|m| m.version)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub account: String,
    pub target: String,
    pub created: i64,
    pub updated: i64,
}

pub fn key_name(id: &str) -> String {
    format!("kms/key/{id}")
}

pub fn alias_name(account: &str, name: &str) -> String {
    format!("kms/alias/{account}/{name}")
}
