//! UPU S10 item identifiers: the tracking numbers printed on parcels and registered letters.

use std::fmt;
use std::str::FromStr;

use crate::rules::{Field, Violation};

/// The weights UPU S10 applies to the eight serial digits to compute the check digit.
const WEIGHTS: [u32; 8] = [8, 6, 4, 2, 3, 5, 9, 7];

/// A validated UPU S10 identifier such as `RR123456785FR`.
///
/// Holding one proves the format and check digit were verified, so item documents can be keyed by
/// it without re-checking.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct S10(String);

impl S10 {
    /// Parses and validates an identifier; lower-case letters are accepted and normalised.
    pub fn parse(raw: &str) -> Result<Self, Violation> {
        let bad = |reason: &str| Violation::new(Field::ItemId, reason);
        let id = raw.trim().to_ascii_uppercase();
        let bytes = id.as_bytes();
        if bytes.len() != 13 {
            return Err(bad(
                "an S10 identifier has 13 characters: 2 letters, 9 digits, 2 letters",
            ));
        }
        if !bytes[..2].iter().all(u8::is_ascii_uppercase) {
            return Err(bad(
                "an S10 identifier starts with two letters (the service indicator)",
            ));
        }
        if !bytes[2..11].iter().all(u8::is_ascii_digit) {
            return Err(bad(
                "an S10 identifier has an 8-digit serial number and a check digit",
            ));
        }
        if !bytes[11..].iter().all(u8::is_ascii_uppercase) {
            return Err(bad(
                "an S10 identifier ends with a two-letter ISO country code",
            ));
        }
        let serial: Vec<u32> = bytes[2..10].iter().map(|b| u32::from(b - b'0')).collect();
        let expected = check_digit(&serial);
        let found = u32::from(bytes[10] - b'0');
        if expected != found {
            return Err(bad(&format!(
                "check digit is {found}, the serial number gives {expected}"
            )));
        }
        Ok(Self(id))
    }

    /// The identifier as printed on the label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The S10 check digit of an 8-digit serial: 11 − (weighted sum mod 11), with 10 → 0 and 11 → 5.
pub fn check_digit(serial: &[u32]) -> u32 {
    let sum: u32 = serial.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        10 => 0,
        11 => 5,
        digit => digit,
    }
}

impl fmt::Display for S10 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for S10 {
    type Err = Violation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_good_identifiers() {
        for id in [
            "RR123456785FR",
            "EE123456785GB",
            "CP000000005FR",
            "rr123456785fr",
        ] {
            assert!(S10::parse(id).is_ok(), "{id} should be valid");
        }
        assert_eq!(
            S10::parse(" rr123456785fr ").unwrap().as_str(),
            "RR123456785FR"
        );
    }

    #[test]
    fn check_digit_special_cases() {
        // sum % 11 == 1 gives 10 -> 0; sum % 11 == 0 gives 11 -> 5.
        assert_eq!(check_digit(&[0, 0, 0, 0, 0, 0, 0, 0]), 5);
        // 1*8 = 8 -> 11 - 8 = 3
        assert_eq!(check_digit(&[1, 0, 0, 0, 0, 0, 0, 0]), 3);
        // find a serial with sum % 11 == 1: digit 4 at weight 3 (position 5) -> 12 % 11 = 1 -> 0
        assert_eq!(check_digit(&[0, 0, 0, 0, 4, 0, 0, 0]), 0);
    }

    #[test]
    fn every_mutated_check_digit_is_refused() {
        let good = "RR123456785FR";
        for d in 0..10u8 {
            let digit = char::from(b'0' + d);
            if digit == '5' {
                continue;
            }
            let mutated = format!("RR12345678{digit}FR");
            let err = S10::parse(&mutated).unwrap_err();
            assert_eq!(err.field, Field::ItemId);
            assert!(err.reason.contains("check digit"), "{err}");
        }
        assert!(S10::parse(good).is_ok());
    }

    #[test]
    fn malformed_identifiers_name_what_is_wrong() {
        assert!(S10::parse("RR12345678FR")
            .unwrap_err()
            .reason
            .contains("13 characters"));
        assert!(S10::parse("R1123456785FR")
            .unwrap_err()
            .reason
            .contains("two letters"));
        assert!(S10::parse("RR12345A785FR")
            .unwrap_err()
            .reason
            .contains("8-digit"));
        assert!(S10::parse("RR1234567851R")
            .unwrap_err()
            .reason
            .contains("country"));
        assert!(S10::parse("").is_err());
        assert!(S10::parse("RR123456785FRX").is_err());
    }
}
