"""The simulator's private PKI: a CA, a TLS leaf certificate for the loopback names, and the
RSA key that signs its JWTs.

All of it lives in ``state_dir`` and is reused when present, so a browser or an app that was told
to trust ``ca.pem`` keeps trusting the simulator across restarts, and tokens signed before a
restart still verify after it.
"""

import datetime
import ipaddress
import os
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CA_FILE, CA_KEY_FILE = "ca.pem", "ca-key.pem"
LEAF_FILE, LEAF_KEY_FILE = "tls.pem", "tls-key.pem"
SIGNING_KEY_FILE = "signing-key.pem"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: str, data: bytes, private: bool = False) -> None:
    # Create keys 0600 from the start: a chmod afterwards leaves a window where others can read them.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load[T](path: str, loader: Callable[[bytes], T]) -> T | None:
    try:
        with open(path, "rb") as f:
            return loader(f.read())
    except (OSError, ValueError):
        return None


def _load_key(path: str) -> PrivateKey | None:
    return _load(path, lambda data: serialization.load_pem_private_key(data, None))


def ensure_ca(state_dir: str) -> tuple[x509.Certificate, PrivateKey]:
    """Return (certificate, key) of the simulator's CA, creating it on first use."""
    cert = _load(os.path.join(state_dir, CA_FILE), x509.load_pem_x509_certificate)
    key = _load_key(os.path.join(state_dir, CA_KEY_FILE))
    if cert and key and cert.not_valid_after_utc > _now() + datetime.timedelta(days=30):
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azuresim local CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(os.path.join(state_dir, CA_KEY_FILE), _key_pem(key), private=True)
    _write(os.path.join(state_dir, CA_FILE), cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _san_entries(hosts: list[str]) -> list[x509.GeneralName]:
    entries = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def _leaf_usable(cert: x509.Certificate, ca_cert: x509.Certificate, hosts: list[str]) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # noqa: BLE001 - any defect means "make a new one"
        return False
    have = set(san)
    return all(e in have for e in _san_entries(hosts)) and (
        cert.not_valid_after_utc > _now() + datetime.timedelta(days=7)
    )


def ensure_leaf(state_dir: str, ca_cert: x509.Certificate, ca_key: PrivateKey, hosts: list[str]) -> tuple[str, str]:
    """Return (cert_path, key_path) of a TLS certificate for ``hosts``, issued by the CA."""
    cert_path = os.path.join(state_dir, LEAF_FILE)
    key_path = os.path.join(state_dir, LEAF_KEY_FILE)
    cert = _load(cert_path, x509.load_pem_x509_certificate)
    if cert and _load_key(key_path) and _leaf_usable(cert, ca_cert, hosts):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        # Browsers refuse leaf certificates valid for more than 398 days.
        .not_valid_after(_now() + datetime.timedelta(days=397))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def ensure_signing_key(state_dir: str) -> rsa.RSAPrivateKey:
    """Return the RSA key that signs access and id tokens (RS256, as Entra does)."""
    path = os.path.join(state_dir, SIGNING_KEY_FILE)
    key = _load_key(path)
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(path, _key_pem(key), private=True)
    return key
