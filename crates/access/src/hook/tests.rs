//! Every per-operation method of s3s's `S3Access` is written out by us:
//! its defaults allow, so one we missed would be an operation nobody
//! decides. The list is compared with the trait's source as cargo has it.

use super::OPERATIONS;

/// The methods of s3s's generated `S3Access` trait, read from its source.
fn s3s_operations() -> Vec<String> {
    let home = std::env::var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .unwrap_or_default();
    let registry = home.join("registry").join("src");
    let mut found = None;
    for index in std::fs::read_dir(&registry).into_iter().flatten().flatten() {
        let p = index.path().join("s3s-0.14.1/src/access/generated.rs");
        if p.exists() {
            found = Some(p);
        }
    }
    let Some(path) = found else {
        panic!("s3s 0.14.1 source not found under {}", registry.display());
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut ops: Vec<String> = text
        .split("async fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(str::trim)
        .filter(|name| *name != "check")
        .map(str::to_owned)
        .collect();
    ops.sort();
    ops
}

#[test]
fn every_s3s_operation_is_decided_by_us() {
    let theirs = s3s_operations();
    let mut ours: Vec<String> = OPERATIONS.iter().map(|s| (*s).to_owned()).collect();
    ours.sort();
    let missing: Vec<&String> = theirs.iter().filter(|o| !ours.contains(o)).collect();
    assert!(missing.is_empty(), "s3s operations without our decision: {missing:?}");
    assert_eq!(theirs.len(), 99, "s3s 0.14.1 has 99 per-operation methods");
    assert_eq!(ours.len(), theirs.len());
}
