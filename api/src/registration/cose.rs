//! Writes a credential public key as a COSE_Key (RFC 9052), the format
//! WebAuthn authenticators produce, so that the directory can hand it to
//! any verifier rather than in this library's own serialisation.

use webauthn_rs::prelude::{COSEKey, COSEKeyType};

/// COSE key parameter labels (RFC 9052 section 7.1, RFC 9053).
const KTY: i64 = 1;
const ALG: i64 = 3;
const CRV_OR_N: i64 = -1;
const X_OR_E: i64 = -2;
const Y: i64 = -3;

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;

enum Item<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

/// The COSE_Key bytes, with the map in CTAP2 canonical order (1, 3, -1,
/// -2, -3), as authenticators write it.
pub fn encode(key: &COSEKey) -> Vec<u8> {
    let alg = key.type_ as i64;
    let entries: Vec<(i64, Item<'_>)> = match &key.key {
        COSEKeyType::EC_EC2(ec) => vec![
            (KTY, Item::Int(KTY_EC2)),
            (ALG, Item::Int(alg)),
            (CRV_OR_N, Item::Int(ec.curve.clone() as i64)),
            (X_OR_E, Item::Bytes(&ec.x)),
            (Y, Item::Bytes(&ec.y)),
        ],
        COSEKeyType::EC_OKP(okp) => vec![
            (KTY, Item::Int(KTY_OKP)),
            (ALG, Item::Int(alg)),
            (CRV_OR_N, Item::Int(okp.curve.clone() as i64)),
            (X_OR_E, Item::Bytes(&okp.x)),
        ],
        COSEKeyType::RSA(rsa) => vec![
            (KTY, Item::Int(KTY_RSA)),
            (ALG, Item::Int(alg)),
            (CRV_OR_N, Item::Bytes(&rsa.n)),
            (X_OR_E, Item::Bytes(&rsa.e)),
        ],
    };

    let mut out = Vec::with_capacity(80);
    head(&mut out, 5, entries.len() as u64);
    for (label, value) in &entries {
        int(&mut out, *label);
        match value {
            Item::Int(n) => int(&mut out, *n),
            Item::Bytes(b) => {
                head(&mut out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

fn int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        head(out, 0, n as u64);
    } else {
        // CBOR writes -1 - n as the argument of major type 1.
        head(out, 1, (-1 - n) as u64);
    }
}

/// A CBOR data item head: major type and argument, shortest form.
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    match arg {
        0..=23 => out.push(major | arg as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webauthn_rs::prelude::{COSEAlgorithm, COSEEC2Key, COSERSAKey, ECDSACurve};

    fn round_trip(key: &COSEKey) -> COSEKey {
        let bytes = encode(key);
        let value: serde_cbor_2::Value = serde_cbor_2::from_slice(&bytes).expect("valid CBOR");
        COSEKey::try_from(&value).expect("a COSE key the library reads back")
    }

    #[test]
    fn ec2_keys_round_trip_in_canonical_order() {
        // The P-256 base point: a valid public key anyone can check.
        let key = COSEKey {
            type_: COSEAlgorithm::ES256,
            key: COSEKeyType::EC_EC2(COSEEC2Key {
                curve: ECDSACurve::SECP256R1,
                x: hex::decode("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")
                    .unwrap(),
                y: hex::decode("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
                    .unwrap(),
            }),
        };
        assert_eq!(round_trip(&key), key);
        let bytes = encode(&key);
        // map(5), 1: 2, 3: -7, -1: 1, -2: bytes(32)
        assert_eq!(
            &bytes[..8],
            &[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]
        );
        assert_eq!(bytes[8], 0x58);
        assert_eq!(bytes[9], 32);
        assert_eq!(bytes.len(), 77);
    }

    #[test]
    fn rsa_keys_round_trip() {
        let key = COSEKey {
            type_: COSEAlgorithm::RS256,
            key: COSEKeyType::RSA(COSERSAKey {
                n: vec![0xc5; 256],
                e: [1, 0, 1],
            }),
        };
        assert_eq!(round_trip(&key), key);
    }
}
