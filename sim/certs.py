"""The sim's own certificate authority and TLS server certificate.

A Spot SDK client checks the server certificate against the CA it trusts and against the
*authority* of each service (`auth.spot.robot`, `api.spot.robot`, ...: the SDK sets the TLS
target name override per service). So the sim serves a certificate for `*.spot.robot` plus the
bootstrap authorities (and localhost names for other tools), signed by a CA it generates once and
caches, by default under `~/.cache/spot-cue-agent/sim-ca` (`$XDG_CACHE_HOME` honoured). Clients
trust it with `bosdyn.client.create_standard_sdk(name, cert_resource_glob=<ca.pem>)`.

Generation is guarded by a file lock so parallel test processes share one CA.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sim.services.common import ALL_AUTHORITIES

SERVER_DNS_NAMES = ("*.spot.robot", *ALL_AUTHORITIES, "localhost")
SERVER_IPS = ("127.0.0.1", "::1")
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 365
RENEW_BEFORE_DAYS = 7
_LAYOUT_VERSION = "1"  # bump when the names or key types change, to regenerate cached files

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server.key"
VERSION_FILE = "VERSION"


class CertificateError(RuntimeError):
    """The CA cache cannot be read or written."""


@dataclass(frozen=True)
class SimCertificates:
    directory: Path
    ca_pem: bytes
    server_cert_pem: bytes  # leaf followed by the CA
    server_key_pem: bytes

    @property
    def ca_path(self) -> Path:
        return self.directory / CA_CERT_FILE


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spot-cue-agent" / "sim-ca"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "spot-cue-agent"),
        x509.NameAttribute(NameOID.COMMON_NAME, "spot-cue-agent simulated robot CA"),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_server_cert(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = _now()
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.spot.robot")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) with the given permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_valid(directory: Path) -> SimCertificates | None:
    """The cached certificates if complete, current and not about to expire."""
    try:
        if (directory / VERSION_FILE).read_text().strip() != _LAYOUT_VERSION:
            return None
        ca_pem = (directory / CA_CERT_FILE).read_bytes()
        server_pem = (directory / SERVER_CERT_FILE).read_bytes()
        server_key = (directory / SERVER_KEY_FILE).read_bytes()
        ca = x509.load_pem_x509_certificate(ca_pem)
        leaf = x509.load_pem_x509_certificate(server_pem)
    except (OSError, ValueError):
        return None
    horizon = _now() + dt.timedelta(days=RENEW_BEFORE_DAYS)
    if ca.not_valid_after_utc < horizon or leaf.not_valid_after_utc < horizon or leaf.issuer != ca.subject:
        return None
    return SimCertificates(directory, ca_pem, server_pem, server_key)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """Reuse the cached CA (so clients keep trusting it) when only the server cert needs renewal."""
    try:
        ca = x509.load_pem_x509_certificate((directory / CA_CERT_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if ca.not_valid_after_utc < _now() + dt.timedelta(days=RENEW_BEFORE_DAYS):
        return None
    return ca, key


def ensure_certificates(cache_dir: str | Path | None = None) -> SimCertificates:
    """Load the cached CA and server certificate, generating (or renewing) them when needed."""
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        cached = _load_valid(directory)
        if cached is not None:
            return cached
        with open(directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be generating right now
            cached = _load_valid(directory)
            if cached is not None:
                return cached
            ca = _load_ca(directory)
            if ca is None:
                ca = _make_ca()
                _write_private(directory / CA_KEY_FILE, _key_pem(ca[1]), 0o600)
                _write_private(directory / CA_CERT_FILE, ca[0].public_bytes(serialization.Encoding.PEM), 0o644)
            leaf, leaf_key = _make_server_cert(*ca)
            chain = leaf.public_bytes(serialization.Encoding.PEM) + ca[0].public_bytes(serialization.Encoding.PEM)
            _write_private(directory / SERVER_KEY_FILE, _key_pem(leaf_key), 0o600)
            _write_private(directory / SERVER_CERT_FILE, chain, 0o644)
            _write_private(directory / VERSION_FILE, _LAYOUT_VERSION.encode(), 0o644)
    except OSError as exc:
        raise CertificateError(f"cannot prepare the sim CA in {directory}: {exc}") from exc
    loaded = _load_valid(directory)
    if loaded is None:
        raise CertificateError(f"generated certificates in {directory} do not load back")
    return loaded


def export_ca(certificates: SimCertificates, destination: str | Path) -> Path:
    """Copy the CA certificate (public) to `destination` (a file, or a directory to put ca.pem in)."""
    dest = Path(destination)
    if dest.is_dir():
        dest = dest / CA_CERT_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(certificates.ca_path, dest)
    return dest
