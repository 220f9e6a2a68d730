//! The shapes of format-preserving tokens, as pure functions of the value and a
//! source of random digits: nothing here is derived from the value by a formula
//! that could be reversed. The value only decides the token's *shape* (its length,
//! where the separators sit, which digits a caller asked to keep); every other
//! character comes from the random source.

/// Fewest and most digits of a card number (ISO/IEC 7812 allows up to 19).
pub const CARD_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;
/// Most leading and trailing digits a card token may keep (the BIN and the last
/// four: what PCI DSS lets a masked number show).
pub const MAX_KEEP_FIRST: usize = 6;
pub const MAX_KEEP_LAST: usize = 4;
/// Digits a card token draws at least (one of them fixed by Luhn): a 16-digit
/// card keeping its first 6 and last 4 draws exactly these, 100,000 tokens apart.
pub const MIN_FREE_DIGITS: usize = 6;
/// Length of an email token's local part: that of the address, within these bounds.
const EMAIL_LOCAL: std::ops::RangeInclusive<usize> = 8..=64;
/// The domain of every email token: `.invalid` is reserved (RFC 2606), so a token
/// used as an address by mistake reaches no mailbox, and the person's domain (an
/// employer, a small provider) is not shown.
pub const EMAIL_TOKEN_DOMAIN: &str = "token.invalid";

/// Whether `digits` (ASCII digits only) passes the Luhn check.
pub fn luhn_valid(digits: &[u8]) -> bool {
    luhn_sum(digits).is_multiple_of(10)
}

/// The Luhn sum of ASCII digits.
fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| luhn_weight(i, u32::from(c - b'0')))
        .sum()
}

/// What digit `d` at position `i` (from the right, 0-based) adds to the Luhn sum.
fn luhn_weight(i: usize, d: u32) -> u32 {
    if i % 2 == 1 {
        let twice = d * 2;
        if twice > 9 { twice - 9 } else { twice }
    } else {
        d
    }
}

/// A card number's digits, if `value` is one: 12–19 ASCII digits, with single
/// spaces or dashes allowed between them. Luhn is not required (clients tokenize
/// test numbers that fail it).
pub fn card_digits(value: &str) -> Option<Vec<u8>> {
    let b = value.as_bytes();
    if b.first().is_none_or(|c| !c.is_ascii_digit()) || b.last().is_none_or(|c| !c.is_ascii_digit())
    {
        return None;
    }
    let mut digits = Vec::with_capacity(b.len());
    let mut after_separator = false;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                digits.push(c);
                after_separator = false;
            }
            b' ' | b'-' if !after_separator => after_separator = true,
            _ => return None,
        }
    }
    CARD_DIGITS.contains(&digits.len()).then_some(digits)
}

/// A card token for card number `value` (see [`card_digits`]): the same length,
/// the separators where they were, Luhn-valid, the first `keep_first` and last
/// `keep_last` digits kept, every other digit drawn from `digit` (which must
/// return uniformly random digits 0–9). `None` when the result would equal the
/// card itself (the caller draws again).
pub fn card_token(
    value: &str,
    keep_first: usize,
    keep_last: usize,
    digit: &mut impl FnMut() -> u8,
) -> Option<String> {
    let digits = card_digits(value)?;
    let n = digits.len();
    let keep_first = keep_first.min(MAX_KEEP_FIRST);
    let keep_last = keep_last.min(MAX_KEEP_LAST);
    let mut out = digits.clone();
    // The free positions: random, except one that makes the Luhn sum come out even.
    // That one is the check digit when it is free, else the last free position.
    let free: Vec<usize> = (keep_first..n - keep_last).collect();
    let fixer = *free.last()?;
    for &i in &free {
        out[i] = b'0' + digit() % 10;
    }
    out[fixer] = b'0';
    let from_right = n - 1 - fixer;
    let rest = luhn_sum(&out);
    let need = (10 - rest % 10) % 10;
    let d = (0..10u8).find(|d| luhn_weight(from_right, u32::from(*d)) == need)?;
    out[fixer] = b'0' + d;
    if out == digits {
        return None;
    }
    // Put the separators back where the card had them.
    let mut next = out.into_iter();
    let token: String = value
        .bytes()
        .map(|c| {
            if c.is_ascii_digit() {
                next.next().map_or('0', char::from)
            } else {
                char::from(c)
            }
        })
        .collect();
    Some(token)
}

/// Whether `value` has the shape of an email address: one `@` with text on both
/// sides, a dot in the domain, no spaces.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !value.chars().any(char::is_whitespace)
}

/// An email token for address `value`: a random local part of lower-case letters
/// and digits, as long as the address's (within 8–64), at [`EMAIL_TOKEN_DOMAIN`].
/// `symbol` returns uniformly random values 0–35.
pub fn email_token(value: &str, symbol: &mut impl FnMut() -> u8) -> Option<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let (local, _) = value.split_once('@')?;
    let len = local
        .chars()
        .count()
        .clamp(*EMAIL_LOCAL.start(), *EMAIL_LOCAL.end());
    let mut out = String::with_capacity(len + 1 + EMAIL_TOKEN_DOMAIN.len());
    for _ in 0..len {
        out.push(char::from(ALPHABET[usize::from(symbol() % 36)]));
    }
    out.push('@');
    out.push_str(EMAIL_TOKEN_DOMAIN);
    (out != value).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counter(seed: u64) -> impl FnMut() -> u8 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8 % 10
        }
    }

    #[test]
    fn luhn_of_known_numbers() {
        assert!(luhn_valid(b"4532015112830366"));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"4716182333661234"));
    }

    #[test]
    fn card_shapes() {
        assert!(card_digits("4532015112830366").is_some());
        assert!(card_digits("4532 0151 1283 0366").is_some());
        assert!(card_digits("4532-0151-1283-0366").is_some());
        assert!(
            card_digits("4532  0151 1283 0366").is_none(),
            "double separator"
        );
        assert!(card_digits(" 4532015112830366").is_none());
        assert!(card_digits("45320151128").is_none(), "11 digits");
        assert!(card_digits("45320151128303661234").is_none(), "20 digits");
        assert!(card_digits("4532O15112830366").is_none());
        assert!(card_digits("").is_none());
    }

    #[test]
    fn a_token_keeps_what_was_asked_and_the_separators() {
        let mut d = counter(7);
        let t = card_token("4532 0151 1283 0366", 6, 4, &mut d).expect("token");
        assert_eq!(t.len(), 19);
        assert!(t.starts_with("4532 01"));
        assert!(t.ends_with(" 0366"));
        assert_eq!(&t[4..5], " ");
        let digits: Vec<u8> = t.bytes().filter(u8::is_ascii_digit).collect();
        assert!(luhn_valid(&digits));
    }

    #[test]
    fn the_smallest_free_space_still_works() {
        // 12 digits keeping 6 and 4 leaves two: one random, one fixing the sum.
        let mut seen = std::collections::HashSet::new();
        let mut d = counter(3);
        for _ in 0..200 {
            if let Some(t) = card_token("123456789012", 6, 4, &mut d) {
                assert!(luhn_valid(t.as_bytes()));
                assert_ne!(t, "123456789012");
                seen.insert(t);
            }
        }
        assert!(seen.len() >= 8, "{seen:?}");
    }

    #[test]
    fn email_tokens_are_addresses_at_the_reserved_domain() {
        let mut s = counter(11);
        let t = email_token("jo@example.com", &mut s).expect("token");
        assert!(is_email(&t));
        assert!(t.ends_with("@token.invalid"));
        assert_eq!(t.split_once('@').map(|(l, _)| l.len()), Some(8));
        let long = format!("{}@x.org", "a".repeat(80));
        let t = email_token(&long, &mut s).expect("token");
        assert_eq!(t.split_once('@').map(|(l, _)| l.len()), Some(64));
        assert!(!is_email("no-at-sign"));
        assert!(!is_email("a@nodot"));
        assert!(!is_email("a b@x.org"));
        assert!(!is_email("@x.org"));
    }

    proptest! {
        #[test]
        fn card_tokens_are_luhn_valid_same_length_and_never_the_card(
            len in 12usize..=19,
            seed in any::<u64>(),
            card_seed in any::<u64>(),
            keep_first in 0usize..=6,
            keep_last in 0usize..=4,
        ) {
            let mut c = counter(card_seed);
            let card: String = (0..len).map(|_| char::from(b'0' + c())).collect();
            let mut d = counter(seed);
            if let Some(t) = card_token(&card, keep_first, keep_last, &mut d) {
                prop_assert_eq!(t.len(), card.len());
                prop_assert!(luhn_valid(t.as_bytes()));
                prop_assert_ne!(&t, &card);
                prop_assert_eq!(&t[..keep_first], &card[..keep_first]);
                prop_assert_eq!(&t[len - keep_last..], &card[len - keep_last..]);
            }
        }
    }
}
