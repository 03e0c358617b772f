"""Per-campaign TLS for the Dask engine: certificates made for one campaign, readable by its owner only.

On a shared login node anyone can connect to an open port, and a Dask worker runs whatever it
is sent. So whenever the scheduler or workers listen beyond loopback, every connection uses
TLS with a certificate made for this campaign (Dask's ``Security.temporary()``, written to
files so that the scheduler and worker processes, pilots included, can read them from a
shared file system). A client without them fails the TLS handshake.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}


def write_certificates(directory: str | os.PathLike[str]) -> dict[str, str]:
    """A new key and self-signed certificate (its own CA) in ``directory`` (mode 0700, files 0600).

    Returns the paths: ``{"ca": …, "cert": …, "key": …}``, for ``dask scheduler/worker
    --tls-ca-file/--tls-cert/--tls-key`` and for `security_for`.
    """
    from distributed.security import Security

    temp = Security.temporary()  # PEM contents in memory; needs the `cryptography` package
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    paths = {}
    for role, content in (("ca", temp.tls_ca_file), ("cert", temp.tls_scheduler_cert),
                          ("key", temp.tls_scheduler_key)):
        path = directory / FILES[role]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        paths[role] = str(path)
    return paths


def security_for(directory: str | os.PathLike[str]) -> Any:
    """The ``Security`` of a campaign whose certificates `write_certificates` put in ``directory``."""
    from distributed.security import Security

    d = Path(directory)
    files = {role: str(d / name) for role, name in FILES.items()}
    return Security(tls_ca_file=files["ca"], tls_client_cert=files["cert"], tls_client_key=files["key"],
                    tls_scheduler_cert=files["cert"], tls_scheduler_key=files["key"],
                    tls_worker_cert=files["cert"], tls_worker_key=files["key"], require_encryption=True)
