//! The release key as an X.509 SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), the form
//! DSSE verifiers load (`slsa-verifier verify-vsa --public-key-path`, cosign, Python
//! `cryptography`). `ssh-keygen -e -m PKCS8` cannot export Ed25519 keys, so relgate writes it:
//! RFC 8410 for Ed25519, RFC 5480 for ECDSA (uncompressed point), RFC 3279 for RSA.

use ssh_key::public::KeyData;
use ssh_key::{EcdsaCurve, PublicKey};

use super::der;

/// id-Ed25519 (1.3.101.112).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 (1.3.132.0.34).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The DER SubjectPublicKeyInfo of `key`; security keys (whose signatures no DSSE verifier
/// checks) and types relgate does not sign with have none.
pub fn der(key: &PublicKey) -> Result<Vec<u8>, String> {
    match key.key_data() {
        KeyData::Ed25519(k) => Ok(der::sequence(&[
            &der::sequence(&[&der::oid(OID_ED25519)]),
            &der::bit_string(&k.0),
        ])),
        KeyData::Ecdsa(k) => {
            let curve = match k.curve() {
                EcdsaCurve::NistP256 => OID_P256,
                EcdsaCurve::NistP384 => OID_P384,
                EcdsaCurve::NistP521 => return Err("nistp521 keys are not supported".into()),
            };
            let point = k.as_sec1_bytes();
            if point.first() != Some(&0x04) {
                return Err("the ECDSA key is not an uncompressed point".into());
            }
            Ok(der::sequence(&[
                &der::sequence(&[&der::oid(OID_EC_PUBLIC_KEY), &der::oid(curve)]),
                &der::bit_string(point),
            ]))
        }
        KeyData::Rsa(k) => {
            let n =
                k.n.as_positive_bytes()
                    .ok_or("the RSA modulus is not positive")?;
            let e =
                k.e.as_positive_bytes()
                    .ok_or("the RSA exponent is not positive")?;
            let rsa_key = der::sequence(&[&der::uint(n), &der::uint(e)]);
            Ok(der::sequence(&[
                &der::sequence(&[&der::oid(OID_RSA), der::NULL]),
                &der::bit_string(&rsa_key),
            ]))
        }
        other => Err(format!(
            "a {} key has no SubjectPublicKeyInfo DSSE verifiers use",
            other.algorithm()
        )),
    }
}

/// The PEM text of [`der`]: 64 base64 characters a line, LF line ends.
pub fn pem(key: &PublicKey) -> Result<String, String> {
    use base64ct::Encoding;
    let b64 = base64ct::Base64::encode_string(&der(key)?);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).map_err(|e| e.to_string())?);
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn ed25519_is_the_fixed_twelve_byte_prefix_and_the_key() {
        let key = crate::sshsig::throwaway_key().unwrap();
        let d = der(key.public_key()).unwrap();
        assert_eq!(hex::encode(&d[..12]), "302a300506032b6570032100");
        assert_eq!(d.len(), 44);
        assert_eq!(&d[12..], key.public_key().key_data().ed25519().unwrap().0);
    }

    /// ECDSA and RSA: byte for byte what `ssh-keygen -e -m PKCS8` exports.
    #[test]
    fn ecdsa_and_rsa_match_ssh_keygen_export() {
        let t = tempfile::tempdir().unwrap();
        for (kind, bits) in [("ecdsa", "256"), ("ecdsa", "384"), ("rsa", "2048")] {
            let path = t.path().join(format!("{kind}{bits}"));
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-b", bits, "-N", "", "-f"])
                .arg(&path)
                .status()
                .unwrap();
            assert!(ok.success());
            let public = path.with_extension("pub");
            let out = Command::new("ssh-keygen")
                .args(["-e", "-m", "PKCS8", "-f"])
                .arg(&public)
                .output()
                .unwrap();
            assert!(out.status.success());
            let key = PublicKey::read_openssh_file(&public).unwrap();
            assert_eq!(
                pem(&key).unwrap(),
                String::from_utf8(out.stdout).unwrap(),
                "{kind} {bits}"
            );
        }
    }
}
