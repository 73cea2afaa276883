"""TLS for every listener: one certificate and key (``--tls-cert``/``--tls-key``), PEM files."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Tls:
    cert: Path
    """The certificate chain (PEM), the server's own first."""
    key: Path
    """Its private key (PEM, not encrypted)."""

    def context(self) -> ssl.SSLContext:
        """A server context (TLS 1.2 or later); ``ssl.SSLError`` or ``OSError`` says what is wrong with the files."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        return context



def certfile(tls: Tls | None) -> str | None:
    """uvicorn's ``ssl_certfile``."""
    return None if tls is None else str(tls.cert)


def keyfile(tls: Tls | None) -> str | None:
    """uvicorn's ``ssl_keyfile``."""
    return None if tls is None else str(tls.key)


def scheme(tls: Tls | None, plain: str) -> str:
    """``ws``/``http`` or, with TLS, ``wss``/``https``."""
    return plain if tls is None else plain + "s"
