//! The deterministic ClientToken: one per (object UID, incarnation).
//!
//! A create retried after a timeout, a crash or a failed status write carries the same token,
//! so the VPC API returns the peer it already created instead of a second one. The incarnation
//! changes only when the peer vanished from the cloud and must legitimately be created anew.

/// Prefix that marks tokens made by this operator.
pub const TOKEN_PREFIX: &str = "abo-";

/// The ClientToken for `uid` at `incarnation`: `abo-<uid>` then `-<n>` for n > 0. At most 4 +
/// 36 + 11 = 51 ASCII characters for a Kubernetes UID, within the API's 64.
pub fn client_token_for(uid: &str, incarnation: u32) -> String {
    let uid: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    if incarnation == 0 {
        format!("{TOKEN_PREFIX}{uid}")
    } else {
        format!("{TOKEN_PREFIX}{uid}-{incarnation}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "4f6a2b1c-3d4e-4f50-9a1b-2c3d4e5f6a7b";

    #[test]
    fn same_uid_same_token() {
        assert_eq!(client_token_for(UID, 0), client_token_for(UID, 0));
        assert_eq!(client_token_for(UID, 0), format!("abo-{UID}"));
    }

    #[test]
    fn incarnation_changes_the_token() {
        assert_ne!(client_token_for(UID, 0), client_token_for(UID, 1));
        assert_eq!(client_token_for(UID, 2), format!("abo-{UID}-2"));
    }

    #[test]
    fn different_uids_differ() {
        assert_ne!(
            client_token_for(UID, 0),
            client_token_for("00000000-3d4e-4f50-9a1b-2c3d4e5f6a7b", 0)
        );
    }

    #[test]
    fn always_within_api_limits() {
        let long = "x".repeat(500);
        for uid in [UID, long.as_str(), "ünïcode-uid", ""] {
            let token = client_token_for(uid, u32::MAX);
            assert!(token.len() <= 64, "{token}");
            assert!(token.is_ascii());
        }
    }
}
