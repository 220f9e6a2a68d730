//! Shamir secret sharing of the root key over GF(2^8), byte by byte.
//!
//! Each byte of the secret is the constant term of a random polynomial of degree
//! `threshold - 1`; share `x` (1..=255) holds the polynomials' values at `x`. Any
//! `threshold` shares give the secret back by Lagrange interpolation at 0; fewer reveal
//! nothing about it. Field arithmetic is branch-free and uses no tables indexed by
//! secret data (multiplication by shift-and-mask, inversion as `a^254`), so timing
//! does not depend on the secret.
//!
//! A share in text form is `sbx1-<threshold>-<x>-<64 hex>-<8 hex checksum>`; the
//! checksum catches a mistyped or truncated share before it is combined. A share that
//! was altered consistently (checksum recomputed) combines into a wrong key, which the
//! root-key canary then refuses: a wrong key is never used.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes};

/// `a · b` in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// `a^-1` (0 for 0) as `a^254`.
fn inv(a: u8) -> u8 {
    let a2 = mul(a, a);
    let a4 = mul(a2, a2);
    let a8 = mul(a4, a4);
    let a16 = mul(a8, a8);
    let a32 = mul(a16, a16);
    let a64 = mul(a32, a32);
    let a128 = mul(a64, a64);
    // 254 = 128 + 64 + 32 + 16 + 8 + 4 + 2
    mul(mul(mul(mul(mul(mul(a128, a64), a32), a16), a8), a4), a2)
}

/// One share: its x coordinate and the 32 y values.
pub struct Share {
    pub threshold: u8,
    pub x: u8,
    pub y: Zeroizing<[u8; 32]>,
}

impl Share {
    fn checksum(threshold: u8, x: u8, y: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(b"strongbox/v1/share");
        h.update([threshold, x]);
        h.update(y);
        hex::encode(&h.finalize()[..4])
    }

    /// The share as text, to print once and hand to one person.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "sbx1-{}-{}-{}-{}",
            self.threshold,
            self.x,
            hex::encode(&self.y[..]),
            Self::checksum(self.threshold, self.x, &self.y[..])
        ))
    }

    /// Parses a share's text form, checking its checksum.
    pub fn parse(text: &str) -> Result<Share, CryptoError> {
        let parts: Vec<&str> = text.trim().split('-').collect();
        let [tag, threshold, x, y, sum] = parts.as_slice() else {
            return Err(CryptoError::BadShare);
        };
        if *tag != "sbx1" {
            return Err(CryptoError::BadShare);
        }
        let threshold: u8 = threshold.parse().map_err(|_| CryptoError::BadShare)?;
        let x: u8 = x.parse().map_err(|_| CryptoError::BadShare)?;
        let mut buf = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(y, &mut buf[..]).map_err(|_| CryptoError::BadShare)?;
        if x == 0 || threshold < 2 || Self::checksum(threshold, x, &buf[..]) != *sum {
            return Err(CryptoError::BadShare);
        }
        Ok(Share {
            threshold,
            x,
            y: buf,
        })
    }
}

/// Splits `secret` into `shares` shares of which any `threshold` recombine it.
pub fn split(secret: &[u8; 32], shares: u8, threshold: u8) -> Result<Vec<Share>, CryptoError> {
    if threshold < 2 || shares < threshold {
        return Err(CryptoError::BadShare);
    }
    // coefficients[i][j]: coefficient of x^(j+1) for byte i.
    let mut coefficients = Zeroizing::new(vec![0u8; 32 * (threshold as usize - 1)]);
    random_bytes(&mut coefficients)?;
    let degree = threshold as usize - 1;
    let mut out = Vec::with_capacity(shares as usize);
    for x in 1..=shares {
        let mut y = Zeroizing::new([0u8; 32]);
        for (i, byte) in secret.iter().enumerate() {
            // Horner: ((c_d·x + c_{d-1})·x + …)·x + secret
            let mut acc = 0u8;
            for j in (0..degree).rev() {
                acc = mul(acc, x) ^ coefficients[i * degree + j];
            }
            y[i] = mul(acc, x) ^ byte;
        }
        out.push(Share { threshold, x, y });
    }
    Ok(out)
}

/// Recombines a secret from at least `threshold` distinct shares (all of the same
/// threshold). With a wrong share the result is a wrong secret, never an error: the
/// caller checks it (the root-key canary).
pub fn combine(shares: &[Share]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let threshold = shares.first().ok_or(CryptoError::BadShare)?.threshold;
    if shares.iter().any(|s| s.threshold != threshold) || shares.len() < threshold as usize {
        return Err(CryptoError::BadShare);
    }
    let used = &shares[..threshold as usize];
    for (i, a) in used.iter().enumerate() {
        if used[i + 1..].iter().any(|b| b.x == a.x) {
            return Err(CryptoError::BadShare);
        }
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    for (i, si) in used.iter().enumerate() {
        // Lagrange basis at 0: Π x_j / (x_j - x_i), and subtraction is xor.
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, sj) in used.iter().enumerate() {
            if i != j {
                num = mul(num, sj.x);
                den = mul(den, sj.x ^ si.x);
            }
        }
        let l = mul(num, inv(den));
        for (k, byte) in secret.iter_mut().enumerate() {
            *byte ^= mul(si.y[k], l);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
        assert_eq!(mul(0x57, 0x83), 0xc1); // FIPS-197 example
    }

    proptest! {
        #[test]
        fn any_threshold_subset_recombines(secret in any::<[u8; 32]>(), n in 2u8..8, pick in any::<u64>()) {
            let t = 2 + (pick % (n as u64 - 1)) as u8;
            let shares = split(&secret, n, t).unwrap();
            // A rotation of the shares, then the first t of them.
            let start = (pick as usize) % shares.len();
            let mut chosen: Vec<Share> = shares.into_iter().collect();
            chosen.rotate_left(start);
            chosen.truncate(t as usize);
            let back = combine(&chosen).unwrap();
            prop_assert_eq!(&back[..], &secret[..]);
        }
    }

    #[test]
    fn too_few_or_duplicate_or_damaged_shares_fail() {
        let secret = [7u8; 32];
        let shares = split(&secret, 5, 3).unwrap();
        let text: Vec<String> = shares.iter().map(|s| s.to_text().to_string()).collect();
        let parse = |i: usize| Share::parse(&text[i]).unwrap();
        assert!(combine(&[parse(0), parse(1)]).is_err());
        assert!(combine(&[parse(0), parse(0), parse(1)]).is_err());
        // A typo is caught by the checksum.
        let mut bad = text[2].clone().into_bytes();
        bad[12] = if bad[12] == b'a' { b'b' } else { b'a' };
        assert!(Share::parse(std::str::from_utf8(&bad).unwrap()).is_err());
        // A consistently altered share gives another secret (the canary catches it).
        let mut altered = parse(2);
        altered.y[0] ^= 1;
        let wrong = combine(&[parse(0), parse(1), altered]).unwrap();
        assert_ne!(&wrong[..], &secret[..]);
        assert_eq!(
            &combine(&[parse(4), parse(1), parse(3)]).unwrap()[..],
            &secret[..]
        );
    }
}
