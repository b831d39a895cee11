"""Build the node's storage backend from its config."""

from __future__ import annotations

from pathlib import Path

from appliance.config import Config
from appliance.crypto import SecretBox
from appliance.errors import StartupError
from appliance.storage.base import StorageBackend


def build_storage(config: Config, box: SecretBox) -> StorageBackend:
    cfg = config.storage
    if cfg.backend == "fs":
        from appliance.storage.fs import FsBackend

        root = Path(cfg.fs_root) if cfg.fs_root else config.state_dir / "storage"
        return FsBackend(root, signing_key=box.derive("storage-url-signing"), public_base_url=config.gateway.public_url)
    from appliance.storage.s3 import S3Backend

    secret = ""
    if cfg.s3_secret_key_file:
        try:
            secret = Path(cfg.s3_secret_key_file).read_text().strip()
        except OSError as exc:
            raise StartupError(f"storage.s3_secret_key_file {cfg.s3_secret_key_file}: {exc.strerror}") from None
    return S3Backend(
        cfg.s3_endpoint,
        cfg.s3_access_key,
        secret,
        region=cfg.s3_region,
        secure=cfg.s3_secure,
        public_endpoint=cfg.s3_public_endpoint or None,
    )
