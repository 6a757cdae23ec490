"""CurveZMQ keys: making key pairs, and loading the agent's and an operator's keys.

Layout on the robot (`--curve-keys-dir DIR`):

    DIR/server.key           the agent's public key (give it to operators)
    DIR/server.key_secret    the agent's secret key (never leaves the robot)
    DIR/authorized/*.key     one public key per operator allowed to connect; the file name
                             (without .key) is the operator's name in logs and events

On the laptop: the agent's `server.key` and the operator's own `NAME.key_secret`.
Files are ZeroMQ certificates, as `zmq.auth.create_certificates` writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SERVER_KEY_NAME = "server"
AUTHORIZED_DIR = "authorized"


class KeyFileError(ValueError):
    """A key file or directory is missing or unusable (the message says what to do)."""


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized: dict[bytes, str] = field(default_factory=dict)  # public key -> operator name
    authorized_dir: Path | None = None


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes


def create_key_pair(directory: Path | str, name: str) -> tuple[Path, Path]:
    """Write NAME.key (public) and NAME.key_secret (secret, mode 0600) into `directory`.

    Refuses to overwrite an existing key: a replaced server key locks every operator out, a
    replaced operator key locks that operator out.
    """
    import zmq.auth

    if not name or "/" in name or name.startswith("."):
        raise KeyFileError(f"key name {name!r} must be a plain file name")
    directory = Path(directory)
    public_path, secret_path = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public_path, secret_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; remove it first or choose another --name")
    directory.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)  # the secret key file is created private, never world-readable
    try:
        public, secret = zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old_umask)
    os.chmod(public, 0o644)
    return Path(public), Path(secret)


def _load(path: Path, need_secret: bool, what: str) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise KeyFileError(f"{what} {path} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{what} {path} is not a ZeroMQ certificate: {exc}") from None
    if need_secret and not secret:
        raise KeyFileError(
            f"{what} {path} holds only a public key; give the .key_secret file instead"
        )
    return public, secret


def load_authorized_keys(directory: Path) -> dict[bytes, str]:
    """Public key -> operator name for every *.key file in `directory`."""
    if not directory.is_dir():
        raise KeyFileError(
            f"authorized operator keys directory {directory} does not exist; create it and copy "
            "each operator's NAME.key (public key) into it"
        )
    keys: dict[bytes, str] = {}
    for path in sorted(directory.glob("*.key")):
        public, _ = _load(path, need_secret=False, what="operator key")
        keys[public] = path.stem
    if not keys:
        raise KeyFileError(
            f"no operator keys (*.key) in {directory}: nobody could connect. Make one with "
            "`spot-agent keys --name OPERATOR` on the laptop and copy OPERATOR.key here"
        )
    return keys


def load_server_keys(keys_dir: Path | str) -> ServerKeys:
    keys_dir = Path(keys_dir)
    secret_path = keys_dir / f"{SERVER_KEY_NAME}.key_secret"
    if not secret_path.exists():
        raise KeyFileError(
            f"{secret_path} does not exist; make the agent's key pair with "
            f"`spot-agent keys --dir {keys_dir} --name {SERVER_KEY_NAME}`"
        )
    public, secret = _load(secret_path, need_secret=True, what="agent key")
    assert secret is not None
    authorized_dir = keys_dir / AUTHORIZED_DIR
    return ServerKeys(public, secret, load_authorized_keys(authorized_dir), authorized_dir)


def load_client_keys(server_key: Path | str, client_key: Path | str) -> ClientKeys:
    server_public, _ = _load(Path(server_key), need_secret=False, what="agent public key")
    public, secret = _load(Path(client_key), need_secret=True, what="operator key")
    assert secret is not None
    return ClientKeys(public, secret, server_public)
