//! The signature of a webhook request, so a receiver can tell our batches from forged ones and
//! refuse replays: `X-Metaflow-Signature: sha256=<hex>` is HMAC-SHA256, keyed with
//! `webhook-secret`, of `<timestamp>.<body>`, where `<timestamp>` is the Unix time in seconds
//! sent in `X-Metaflow-Timestamp` and `<body>` the exact bytes of the request body.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature, `sha256=<lowercase hex>`.
pub const SIGNATURE_HEADER: &str = "x-metaflow-signature";
/// Header carrying the Unix time (seconds) that is part of the signed string.
pub const TIMESTAMP_HEADER: &str = "x-metaflow-timestamp";

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot be taken.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether `header` is the signature of `body` at `timestamp`, compared in constant time: what
/// a receiver does (the tests' receiver uses it).
pub fn verify(secret: &[u8], timestamp: u64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 checks the HMAC itself; the signed string is `<ts>.<body>`.
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Split as "<ts>.<body>": the same bytes give the same MAC.
        let signed = signature(b"Jefe", 1, b"what do ya want for nothing?");
        assert_ne!(signed, format!("sha256={hex}"));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1.what do ya want for nothing?");
        let whole: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signed, format!("sha256={whole}"));
    }

    #[test]
    fn verify_accepts_the_signature_and_refuses_any_change() {
        let body = br#"[{"event":"call_started"}]"#;
        let header = signature(b"s3cret", 1_700_000_000, body);
        assert!(verify(b"s3cret", 1_700_000_000, body, &header));
        assert!(!verify(b"other", 1_700_000_000, body, &header));
        assert!(!verify(b"s3cret", 1_700_000_001, body, &header));
        assert!(!verify(b"s3cret", 1_700_000_000, b"[]", &header));
        assert!(!verify(b"s3cret", 1_700_000_000, body, "sha256=zz"));
        assert!(!verify(b"s3cret", 1_700_000_000, body, "md5=00"));
    }
}
