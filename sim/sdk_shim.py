"""Run stock Spot SDK programs (hello_spot.py, get_image.py, ...) unmodified against the sim.

A stock program trusts only the CA bundled with the SDK and connects to port 443; the SDK reads
no environment variable for either. So the sim writes a tiny `sitecustomize.py` that Python
runs at start-up when its directory is on PYTHONPATH. It acts only if the variables are set:

- `SPOT_SIM_CA=<ca.pem>`: the bundled robot CA *plus* the sim's CA are trusted (so the same shell
  can still reach a real robot);
- `SPOT_SIM_PORT=<port>`: new `Robot`s use this port instead of 443 (not needed if the sim
  listens on 443).

    PYTHONPATH=<shim dir> SPOT_SIM_CA=<ca.pem> SPOT_SIM_PORT=44443 \\
    BOSDYN_CLIENT_USERNAME=spot BOSDYN_CLIENT_PASSWORD=spot python hello_spot.py 127.0.0.1
"""

from __future__ import annotations

import os
from pathlib import Path

CA_ENV = "SPOT_SIM_CA"
PORT_ENV = "SPOT_SIM_PORT"

SITECUSTOMIZE = '''\
"""Written by spot-cue-agent's sim (sim/sdk_shim.py): lets stock Spot SDK programs reach the sim.

Trusts $SPOT_SIM_CA in addition to the SDK's robot CA, and makes new Robots use $SPOT_SIM_PORT.
Does nothing unless those variables are set.
"""
import os as _os

_ca = _os.environ.get("SPOT_SIM_CA")
_port = _os.environ.get("SPOT_SIM_PORT")
if _ca or _port:
    try:
        import bosdyn.client.robot as _robot
        import bosdyn.client.sdk as _sdk
    except ImportError:  # not a Spot SDK environment: nothing to do
        pass
    else:
        if _port:
            _robot._DEFAULT_SECURE_CHANNEL_PORT = int(_port)
        if _ca:
            _load = _sdk.Sdk.load_robot_cert

            def _load_robot_cert(self, resource_path_glob=None):
                _load(self, resource_path_glob)
                if resource_path_glob is None:
                    with open(_ca, "rb") as _f:
                        self.cert = self.cert + b"\\n" + _f.read()

            _sdk.Sdk.load_robot_cert = _load_robot_cert
'''


def default_shim_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spot-cue-agent" / "sdk-shim"


def write_shim(directory: str | Path | None = None) -> Path:
    """Write sitecustomize.py into `directory` (default: the cache) and return the directory."""
    target = Path(directory) if directory is not None else default_shim_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = target / "sitecustomize.py"
    if not path.exists() or path.read_text() != SITECUSTOMIZE:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(SITECUSTOMIZE)
        tmp.replace(path)
    return target


def example_env(shim_dir: Path, ca_path: Path, port: int, user: str, password: str) -> dict[str, str]:
    """Environment for running a stock SDK example against the sim."""
    return {
        "PYTHONPATH": str(shim_dir),
        CA_ENV: str(ca_path),
        PORT_ENV: str(port),
        "BOSDYN_CLIENT_USERNAME": user,
        "BOSDYN_CLIENT_PASSWORD": password,
    }
