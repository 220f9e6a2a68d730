//! Normalization of lookup values before they are blind-indexed, so that equivalent
//! spellings find the same subject. The same functions run on create, update and
//! lookup.
//!
//! The rule for text (login, email, custom id): trim Unicode white space at both
//! ends, then Unicode NFC, so a name typed precomposed (`josé`, U+00E9) and one typed
//! decomposed (`e` + U+0301) are the same value. Emails are then lower-cased with
//! Unicode's full lower-case mapping (`str::to_lowercase`) and put in NFC again; no
//! other folding (`ß` stays `ß`). Because NFC maps the Kelvin sign (U+212A) to `K`,
//! `\u{212A}elly@x.com` is `kelly@x.com`, on create and on lookup alike. Phone
//! numbers become E.164. Numbers used as logins or ids are indexed as the decimal
//! text of their integer part, exactly, so distinct integers never collide.

use phonenumber::country;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// The lookup indexes of a user profile, in the order Databunker checks them.
pub const USER_INDEXES: [&str; 4] = ["login", "email", "phone", "custom"];

/// Settings that change normalization.
#[derive(Clone, Copy, Debug)]
pub struct Normalizer {
    /// Region used for phone numbers written without a `+country` prefix.
    pub default_country: country::Id,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer {
            default_country: country::Id::GB,
        }
    }
}

/// Parses a two-letter region code such as `GB` or `us`.
pub fn parse_country(code: &str) -> Option<country::Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

impl Normalizer {
    /// The default region as its two-letter code.
    pub fn default_country_code(&self) -> String {
        format!("{:?}", self.default_country)
    }

    /// Normalizes `raw` for index `index`; `None` means "not indexable".
    pub fn normalize(&self, index: &str, raw: &str) -> Option<String> {
        let v = raw.trim();
        if v.is_empty() {
            return None;
        }
        // ASCII text is already in NFC: the common case skips the Unicode tables.
        match index {
            "email" if v.is_ascii() => Some(v.to_ascii_lowercase()),
            "email" => Some(v.nfc().collect::<String>().to_lowercase().nfc().collect()),
            "phone" => self.phone(v),
            _ if v.is_ascii() => Some(v.to_string()),
            _ => Some(v.nfc().collect()),
        }
    }

    /// E.164 form (`+447911123456`), or `None` if the text is not a phone number.
    ///
    /// The form is a fixed point: normalizing it again gives it back, so a lookup
    /// with the number as the vault shows it finds the record. One pass is not
    /// always one (fuzzing found `0001028033517` in the UK giving
    /// `+4401028033517`, which reads as `+441028033517`), so a second pass settles
    /// it; a number that does not settle then is not indexable.
    fn phone(&self, v: &str) -> Option<String> {
        let e164 = |text: &str| -> Option<String> {
            let parsed = phonenumber::parse(Some(self.default_country), text).ok()?;
            let out = phonenumber::format(&parsed)
                .mode(phonenumber::Mode::E164)
                .to_string();
            (out.len() > 1).then_some(out)
        };
        let first = e164(v)?;
        let second = e164(&first)?;
        if second == first {
            return Some(first);
        }
        (e164(&second)? == second).then_some(second)
    }

    /// The index value of a profile field: strings as they are, numbers as integer
    /// text (`1.9` → `"1"`, as Databunker does; `1e19` → `"10000000000000000000"`,
    /// never clamped); anything else is not indexed.
    pub fn field(&self, index: &str, value: Option<&Value>) -> Option<String> {
        let text = match value? {
            Value::String(s) => s.clone(),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                // The exact decimal expansion of the integer part: distinct values
                // stay distinct beyond the i64 range (no saturating cast).
                // (-0.5 truncates to -0, which is written 0.)
                (_, _, Some(f)) if f.is_finite() => format!("{:.0}", f.trunc() + 0.0),
                _ => return None,
            },
            _ => return None,
        };
        self.normalize(index, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn email_is_trimmed_and_case_insensitive() {
        let n = Normalizer::default();
        assert_eq!(
            n.normalize("email", "  John@Example.COM "),
            Some("john@example.com".into())
        );
        // No URL-unescaping: `+` stays a plus.
        assert_eq!(n.normalize("email", "a+b@x.com"), Some("a+b@x.com".into()));
        assert_eq!(n.normalize("email", "   "), None);
    }

    #[test]
    fn text_is_nfc_and_email_case_folds_once() {
        let n = Normalizer::default();
        let nfc = "jos\u{e9}@example.com";
        let nfd = "jose\u{301}@example.com";
        assert_eq!(n.normalize("email", nfd), n.normalize("email", nfc));
        assert_eq!(
            n.normalize("login", "Jose\u{301}"),
            Some("Jos\u{e9}".into())
        );
        assert_eq!(
            n.normalize("email", "\u{212A}elly@Example.com"),
            Some("kelly@example.com".into())
        );
        assert_eq!(
            n.normalize("email", "Stra\u{df}e@x.de"),
            Some("stra\u{df}e@x.de".into())
        );
    }

    #[test]
    fn big_numbers_never_collide() {
        let n = Normalizer::default();
        let v = [
            n.field("login", Some(&json!(1e308))),
            n.field("login", Some(&json!(1e19))),
            n.field("login", Some(&json!(i64::MAX))),
            n.field("login", Some(&json!(u64::MAX))),
            n.field("login", Some(&json!(-1e19))),
        ];
        for (i, a) in v.iter().enumerate() {
            assert!(a.is_some());
            for b in &v[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(v[1], Some("10000000000000000000".into()));
        assert_eq!(n.field("login", Some(&json!(-0.5))), Some("0".into()));
        assert_eq!(n.field("login", Some(&json!(-1.5))), Some("-1".into()));
    }

    #[test]
    fn phones_become_e164() {
        let n = Normalizer::default();
        for p in [
            "07911 123456",
            "07911123456",
            "+447911123456",
            " +44 7911 123456 ",
        ] {
            assert_eq!(n.normalize("phone", p), Some("+447911123456".into()), "{p}");
        }
        let us = Normalizer {
            default_country: parse_country("us").unwrap(),
        };
        assert_eq!(
            us.normalize("phone", "(415) 555-2671"),
            Some("+14155552671".into())
        );
        assert_eq!(n.normalize("phone", "not a phone"), None);
    }

    #[test]
    fn phone_form_is_a_fixed_point() {
        // Found by the normalize fuzz target: one pass gave `+4401028033517`.
        let n = Normalizer::default();
        let once = n.normalize("phone", "0001028033517");
        assert_eq!(once.as_deref(), Some("+441028033517"));
        assert_eq!(n.normalize("phone", "+441028033517"), once);
        assert_eq!(n.normalize("phone", "+4401028033517"), once);
    }

    #[test]
    fn fields_follow_databunker_rules() {
        let n = Normalizer::default();
        assert_eq!(n.field("login", Some(&json!(" bob "))), Some("bob".into()));
        assert_eq!(n.field("login", Some(&json!(1.9))), Some("1".into()));
        assert_eq!(n.field("custom", Some(&json!(42))), Some("42".into()));
        assert_eq!(n.field("login", Some(&json!(true))), None);
        assert_eq!(n.field("login", Some(&json!({"a": 1}))), None);
        assert_eq!(n.field("login", Some(&Value::Null)), None);
        assert_eq!(n.field("login", None), None);
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(s in "\\PC{0,40}", idx in 0usize..4) {
            let n = Normalizer::default();
            let index = USER_INDEXES[idx];
            if let Some(once) = n.normalize(index, &s) {
                prop_assert_eq!(n.normalize(index, &once), Some(once.clone()));
            }
        }

        #[test]
        fn email_case_never_matters(local in "[a-zA-Z0-9._]{1,20}", domain in "[a-zA-Z]{1,10}") {
            let n = Normalizer::default();
            let e = format!("{local}@{domain}.com");
            prop_assert_eq!(n.normalize("email", &e.to_uppercase()), n.normalize("email", &e.to_lowercase()));
        }

        #[test]
        fn uk_mobile_spellings_agree(d in "[0-9]{6}") {
            let n = Normalizer::default();
            let a = n.normalize("phone", &format!("07911 {d}"));
            let b = n.normalize("phone", &format!("+44 7911{d}"));
            prop_assert!(a.is_some());
            prop_assert_eq!(a, b);
        }
    }
}
