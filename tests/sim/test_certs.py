"""The sim's CA and server certificate: the names Spot clients check, caching and renewal."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from sim.certs import SERVER_CERT_FILE, ensure_certificates, export_ca


def _leaf(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem)[0]


def test_server_cert_covers_spot_authorities_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    certs = ensure_certificates(tmp_path)
    ca = x509.load_pem_x509_certificate(certs.ca_pem)
    leaf = _leaf(certs.server_cert_pem)
    leaf.verify_directly_issued_by(ca)  # raises if not signed by the CA
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    for required in ("*.spot.robot", "api.spot.robot", "auth.spot.robot", "id.spot.robot", "payload-registration.spot.robot"):
        assert required in names
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0  # the CA key is private


def test_certificates_are_cached_and_a_broken_server_cert_is_reissued_by_the_same_ca(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    assert ensure_certificates(tmp_path) == first
    (tmp_path / SERVER_CERT_FILE).write_text("not a certificate")
    renewed = ensure_certificates(tmp_path)
    assert renewed.ca_pem == first.ca_pem  # clients that saved the CA keep working
    assert renewed.server_cert_pem != first.server_cert_pem
    _leaf(renewed.server_cert_pem).verify_directly_issued_by(x509.load_pem_x509_certificate(renewed.ca_pem))


def test_export_ca_writes_the_public_ca(tmp_path: Path) -> None:
    certs = ensure_certificates(tmp_path / "cache")
    written = export_ca(certs, tmp_path / "out" / "spot-sim-ca.pem")
    assert written.read_bytes() == certs.ca_pem
    assert b"PRIVATE KEY" not in written.read_bytes()
