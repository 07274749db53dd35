//! Condition operators and the request context they read.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Malformed, bad, glob::wildcard};

/// The request context: condition keys (case-insensitive) to their values.
#[derive(Clone, Debug, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }
    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }
    /// Sets a multi-valued key.
    pub fn set_many(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }
    pub fn remove(&mut self, key: &str) {
        self.values.remove(&key.to_ascii_lowercase());
    }
    /// The values of a key, if present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.values.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
        } else {
            self.values.get(key).map(Vec::as_slice)
        }
    }
    /// The first value of a key.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.first()).map(String::as_str)
    }
    /// Adds every key of `other` (its values win).
    pub fn merge(&mut self, other: &Context) {
        for (k, v) in &other.values {
            self.values.insert(k.clone(), v.clone());
        }
    }
}

/// Operator families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// `ForAllValues:` / `ForAnyValue:` or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetQualifier {
    Single,
    ForAll,
    ForAny,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringNotEquals", Operator::StringNotEquals),
    ("StringEqualsIgnoreCase", Operator::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Operator::StringNotEqualsIgnoreCase),
    ("StringLike", Operator::StringLike),
    ("StringNotLike", Operator::StringNotLike),
    ("NumericEquals", Operator::NumericEquals),
    ("NumericNotEquals", Operator::NumericNotEquals),
    ("NumericLessThan", Operator::NumericLessThan),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals),
    ("NumericGreaterThan", Operator::NumericGreaterThan),
    ("NumericGreaterThanEquals", Operator::NumericGreaterThanEquals),
    ("DateEquals", Operator::DateEquals),
    ("DateNotEquals", Operator::DateNotEquals),
    ("DateLessThan", Operator::DateLessThan),
    ("DateLessThanEquals", Operator::DateLessThanEquals),
    ("DateGreaterThan", Operator::DateGreaterThan),
    ("DateGreaterThanEquals", Operator::DateGreaterThanEquals),
    ("Bool", Operator::Bool),
    ("BinaryEquals", Operator::BinaryEquals),
    ("IpAddress", Operator::IpAddress),
    ("NotIpAddress", Operator::NotIpAddress),
    ("ArnEquals", Operator::ArnEquals),
    ("ArnLike", Operator::ArnLike),
    ("ArnNotEquals", Operator::ArnNotEquals),
    ("ArnNotLike", Operator::ArnNotLike),
    ("Null", Operator::Null),
];

/// Parses `[ForAllValues:|ForAnyValue:]Operator[IfExists]`.
pub(super) fn parse_operator(name: &str) -> Result<(Operator, SetQualifier, bool), Malformed> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAll, r)
    } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAny, r)
    } else {
        (SetQualifier::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let op = OPERATORS
        .iter()
        .find(|(n, _)| *n == base)
        .map(|(_, o)| *o)
        .ok_or_else(|| Malformed(format!("Invalid Condition type : {name}")))?;
    if op == Operator::Null && (if_exists || set != SetQualifier::Single) {
        return bad(format!("Invalid Condition type : {name}"));
    }
    Ok((op, set, if_exists))
}

/// Values a policy gives must parse for their operator.
pub(super) fn validate_values(op: Operator, values: &[String]) -> Result<(), Malformed> {
    for v in values {
        let ok = match family(op) {
            Family::Numeric => v.parse::<f64>().is_ok(),
            Family::Date => parse_date(v).is_some(),
            Family::Bool => true,
            Family::Ip => parse_cidr(v).is_some(),
            Family::Null => matches!(v.to_ascii_lowercase().as_str(), "true" | "false"),
            Family::Binary => base64_simd::STANDARD.decode_to_vec(v).is_ok(),
            Family::String | Family::Arn => true,
        };
        if !ok {
            return bad(format!("Invalid value {v:?} for condition operator {op:?}"));
        }
    }
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

fn family(op: Operator) -> Family {
    use Operator::*;
    match op {
        StringEquals
        | StringNotEquals
        | StringEqualsIgnoreCase
        | StringNotEqualsIgnoreCase
        | StringLike
        | StringNotLike => Family::String,
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Family::Numeric,
        DateEquals | DateNotEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
            Family::Date
        }
        Bool => Family::Bool,
        BinaryEquals => Family::Binary,
        IpAddress | NotIpAddress => Family::Ip,
        ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Family::Arn,
        Null => Family::Null,
    }
}

/// Negated operators: absent key is a match, several values are a NOR.
fn negated(op: Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        StringNotEquals
            | StringNotEqualsIgnoreCase
            | StringNotLike
            | NumericNotEquals
            | DateNotEquals
            | NotIpAddress
            | ArnNotEquals
            | ArnNotLike
    )
}

/// ISO 8601 (with or without fraction, `Z` or offset, or a bare date) or
/// epoch seconds, as Unix seconds.
pub(crate) fn parse_date(s: &str) -> Option<f64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n as f64);
    }
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    // 2026-01-01T00:00:00 (no zone) or 2026-01-01
    let with_zone = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        format!("{s}Z")
    };
    time::OffsetDateTime::parse(&with_zone, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

/// An address or CIDR block.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    // an IPv4-mapped IPv6 peer is matched as IPv4
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Does the context value match one policy value (non-negated sense)?
fn matches_one(op: Operator, have: &str, want: &str) -> bool {
    use Operator::*;
    let num = || Some((have.parse::<f64>().ok()?, want.parse::<f64>().ok()?));
    let date = || Some((parse_date(have)?, parse_date(want)?));
    match op {
        StringEquals | StringNotEquals => have == want,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => have.eq_ignore_ascii_case(want),
        StringLike | StringNotLike => wildcard(want, have, false),
        NumericEquals | NumericNotEquals => num().is_some_and(|(a, b)| a == b),
        NumericLessThan => num().is_some_and(|(a, b)| a < b),
        NumericLessThanEquals => num().is_some_and(|(a, b)| a <= b),
        NumericGreaterThan => num().is_some_and(|(a, b)| a > b),
        NumericGreaterThanEquals => num().is_some_and(|(a, b)| a >= b),
        DateEquals | DateNotEquals => date().is_some_and(|(a, b)| a == b),
        DateLessThan => date().is_some_and(|(a, b)| a < b),
        DateLessThanEquals => date().is_some_and(|(a, b)| a <= b),
        DateGreaterThan => date().is_some_and(|(a, b)| a > b),
        DateGreaterThanEquals => date().is_some_and(|(a, b)| a >= b),
        Bool => have.eq_ignore_ascii_case(want),
        BinaryEquals => have == want,
        IpAddress | NotIpAddress => match (have.parse::<IpAddr>(), parse_cidr(want)) {
            (Ok(ip), Some(net)) => in_cidr(ip, net),
            _ => false,
        },
        ArnEquals | ArnNotEquals | ArnLike | ArnNotLike => arn_match(want, have),
        Null => false,
    }
}

/// ARN patterns match component by component (a `*` does not cross `:`
/// in the first five components).
fn arn_match(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    if p.len() != 6 || a.len() != 6 {
        return wildcard(pattern, arn, false);
    }
    p.iter().zip(&a).all(|(p, a)| wildcard(p, a, false))
}

/// Evaluates one condition against the context; `resolve` substitutes
/// policy variables in a policy value (None: an unknown variable, which
/// matches nothing).
pub(super) fn holds(c: &super::Condition, ctx: &Context, resolve: &dyn Fn(&str) -> Option<String>) -> bool {
    let have = ctx.get(&c.lkey);
    if c.op == Operator::Null {
        let want_absent = c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        let absent = have.is_none_or(<[String]>::is_empty);
        return want_absent == absent;
    }
    let values: Vec<String> = c.values.iter().filter_map(|v| resolve(v)).collect();
    let neg = negated(c.op);
    // does one context value satisfy the operator?
    let one = |h: &str| {
        let any = values.iter().any(|w| matches_one(c.op, h, w));
        if neg { !any } else { any }
    };
    match c.set {
        SetQualifier::Single => match have {
            None | Some([]) => c.if_exists || neg,
            Some(hs) => hs.iter().any(|h| one(h)),
        },
        SetQualifier::ForAll => match have {
            None | Some([]) => true,
            Some(hs) => hs.iter().all(|h| one(h)),
        },
        SetQualifier::ForAny => match have {
            None | Some([]) => c.if_exists,
            Some(hs) => hs.iter().any(|h| one(h)),
        },
    }
}

/// Keys that, compared with fixed values, make a grant to `*` non-public
/// (AWS's meaning of "public": fixed source IPs, source ARN/VPC/VPC
/// endpoint/owner/account, principal account/ARN/organization, user id, a
/// fixed KMS key, access points).
const PINNING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

/// True for a value with no wildcard; for `aws:userid` also the pattern
/// `ROLEID:*` (every session of one role), which AWS counts as fixed.
fn fixed(key: &str, v: &str) -> bool {
    let wild = |s: &str| s.contains('*') || s.contains('?');
    if !wild(v) {
        return true;
    }
    key == "aws:userid" && v.strip_suffix(":*").is_some_and(|id| !id.is_empty() && !wild(id))
}

/// True when a condition limits who the caller can be to fixed values.
/// Never for `...IfExists` (the key may be absent, and then it holds for
/// anyone), `ForAllValues` (holds for an empty set), negated operators, or
/// a value with a wildcard (ArnEquals matches wildcards as ArnLike does).
pub(super) fn pins_caller(c: &super::Condition) -> bool {
    use Operator::*;
    let key = c.key.to_ascii_lowercase();
    if !PINNING_KEYS.contains(&key.as_str()) || c.set == SetQualifier::ForAll || c.if_exists {
        return false;
    }
    match c.op {
        StringEquals | StringEqualsIgnoreCase => true,
        StringLike | ArnEquals | ArnLike => c.values.iter().all(|v| fixed(&key, v)),
        IpAddress => c.values.iter().all(|v| {
            parse_cidr(v).is_some_and(|(ip, bits)| {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                // AWS: a block wider than /8 (v4) or /32 (v6) is public
                bits >= if max == 32 { 8 } else { 32 }
            })
        }),
        _ => false,
    }
}
