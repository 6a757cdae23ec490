"""What the CORE I/O Spot Extension is built from: Dockerfile, compose file, manifest, icon, pins.

Installed with the package, so `spot-agent package` finds its templates from any folder.
"""

from __future__ import annotations

from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
