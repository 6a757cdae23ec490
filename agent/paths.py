"""Where the project's shipped files live (configs, model), for source checkouts and images."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("SPOT_AGENT_CONFIGS", PROJECT_ROOT / "configs"))
