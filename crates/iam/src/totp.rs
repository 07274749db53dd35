//! TOTP (RFC 6238): HMAC-SHA-1, 30-second steps, 6 digits, as AWS virtual
//! MFA devices. Verification accepts one step of clock drift either way
//! and reports the step that matched, so a caller can refuse a replay.

use ring::hmac;

/// Seconds a code lives.
pub const STEP_SECS: u64 = 30;

/// The 6-digit code of `secret` for time step `step`.
pub fn code(secret: &[u8], step: u64) -> u32 {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret),
        &step.to_be_bytes(),
    );
    let h = tag.as_ref();
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    bin % 1_000_000
}

/// The step of a code valid at `now_secs` (± one step), compared in
/// constant time; None when it matches none.
pub fn verify(secret: &[u8], given: &str, now_secs: u64) -> Option<u64> {
    if given.len() != 6 || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_secs / STEP_SECS;
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let want = format!("{:06}", code(secret, step));
        if subtle::ConstantTimeEq::ct_eq(want.as_bytes(), given.as_bytes()).into() && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the RFC prints 8 digits; AWS
    /// devices use the last 6).
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(code(secret, t / STEP_SECS), eight % 1_000_000, "T={t}");
        }
    }

    #[test]
    fn drift_of_one_step_and_no_more() {
        let s = b"12345678901234567890";
        let c = format!("{:06}", code(s, 100));
        assert_eq!(verify(s, &c, 100 * 30), Some(100));
        assert_eq!(verify(s, &c, 101 * 30 + 5), Some(100));
        assert_eq!(verify(s, &c, 99 * 30), Some(100));
        assert_eq!(verify(s, &c, 102 * 30), None);
        assert_eq!(verify(s, "12345", 100 * 30), None);
        assert_eq!(verify(s, "abcdef", 100 * 30), None);
    }
}
