"""Check a DSSE envelope the way the ecosystem's own tools do, independently of relgate.

Usage: vsa_check.py ENVELOPE SSH_PUBLIC_KEY_FILE PEM_FILE KEYID

ENVELOPE is a JSON Lines file whose first line is the envelope; SSH_PUBLIC_KEY_FILE holds an
OpenSSH public key line; PEM_FILE the SPKI PEM published beside the release. Prints one JSON
object:

  {"sslib": bool, "crypto": bool, "pem_matches_ssh": bool, "scheme": str,
   "payload_type": str, "statement": object or null, "errors": [str]}

- sslib: securesystemslib's Envelope.verify accepts it with an SSlibKey built from the SSH
  public key, whose keyid is KEYID (the key's OpenSSH SHA256: fingerprint);
- crypto: PAE recomputed here from the DSSE spec, and the signature checked with Python
  `cryptography` loading PEM_FILE.
"""

import base64
import copy
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def b64decode(s):
    # DSSE verifiers must accept standard and URL-safe base64, padded or not.
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4))


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def scheme_of(key):
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-sha2-nistp256", "secp384r1": "ecdsa-sha2-nistp384"}[
            key.curve.name
        ]
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa-pkcs1v15-sha256"
    raise ValueError("unsupported key %r" % key)


def crypto_verify(key, sig, data):
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(sig, data)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        h = hashes.SHA256() if key.curve.name == "secp256r1" else hashes.SHA384()
        key.verify(sig, data, ec.ECDSA(h))
    else:
        key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())


def raw(key):
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def main():
    env_path, ssh_path, pem_path, keyid = sys.argv[1:5]
    out = {"sslib": False, "crypto": False, "errors": [], "statement": None}
    with open(env_path, "rb") as f:
        env = json.loads(f.read().split(b"\n")[0])
    ssh_key = serialization.load_ssh_public_key(open(ssh_path, "rb").read().strip())
    pem_key = serialization.load_pem_public_key(open(pem_path, "rb").read())
    out["pem_matches_ssh"] = raw(ssh_key) == raw(pem_key)
    out["scheme"] = scheme_of(ssh_key)
    out["payload_type"] = env.get("payloadType")

    try:
        key = SSlibKey.from_crypto(ssh_key, keyid=keyid, scheme=out["scheme"])
        # from_dict takes the dict apart: give it a copy.
        Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)
        out["sslib"] = True
    except Exception as e:  # noqa: BLE001 - every refusal is reported, not raised
        out["errors"].append("securesystemslib: %s: %s" % (type(e).__name__, e))

    try:
        payload = b64decode(env["payload"])
        sigs = env["signatures"]
        if len(sigs) != 1:
            raise ValueError("expected one signature, found %d" % len(sigs))
        crypto_verify(pem_key, b64decode(sigs[0]["sig"]), pae(env["payloadType"], payload))
        out["crypto"] = True
        out["statement"] = json.loads(payload)
    except (InvalidSignature, ValueError, KeyError) as e:
        out["errors"].append("cryptography: %s: %s" % (type(e).__name__, e))

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
