"""A spec served over HTTPS by a server whose certificate a private CA signed: trusted once the operator
points SSL_CERT_FILE at that CA (every outbound client shares one TLS context, castproxy/tls.py), and
refused with a clear, one-line error without it. Real processes: `castproxy tools --spec URL`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.servers import run

from castproxy.testserver.app import create_app


def _certificate(subject: str, issuer: x509.Name | None, signer: ec.EllipticCurvePrivateKey | None,
                 key: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(hours=1)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(loopback, critical=False)
    return builder.sign(signer or key, hashes.SHA256())


@pytest.fixture(scope="module")
def https_spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL of the test server's OpenAPI document over HTTPS, the private CA's certificate file)."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("castproxy test CA", None, None, ca_key, ca=True)
    server = _certificate("127.0.0.1", ca.subject, ca_key, server_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    running = run(create_app("none"), ssl_certfile=str(folder / "server.pem"), ssl_keyfile=str(folder / "server.key"))
    yield running.url.replace("http://", "https://") + "/openapi.json", folder / "ca.pem"
    running.stop()


def _tools(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return subprocess.run([sys.executable, "-m", "castproxy", "tools", "--spec", url], capture_output=True, text=True,
                          timeout=60, env={**clean, **env})


def test_a_private_ca_named_by_ssl_cert_file_is_trusted(https_spec: tuple[str, Path]) -> None:
    url, ca = https_spec
    result = _tools(url, SSL_CERT_FILE=str(ca))
    assert result.returncode == 0, result.stderr
    assert "listItems" in result.stdout


def test_an_unknown_ca_is_one_clear_error(https_spec: tuple[str, Path]) -> None:
    url, _ = https_spec
    result = _tools(url)
    assert result.returncode == 1
    assert f"{url}: cannot fetch the spec" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert "Traceback" not in result.stderr
