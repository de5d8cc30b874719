"""A private Docker engine and the base image to build from, made on this machine: no
registry can be reached, so Debian bookworm's root file system is made by debootstrap."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from deployment import CACHE, run

BASE_TARBALL = CACHE / "debian-bookworm-python3-rootfs.tar"


class DockerEngine:
    """A private dockerd: own data root, socket and pid file; no bridge, no iptables."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{folder}/docker.sock"}
        self.env["DOCKER_BUILDKIT"] = "0"  # the classic builder: `--network host` needs no setup
        self.process: subprocess.Popen | None = None

    def start(self) -> str | None:
        """Start dockerd; None when it answers, else why it did not."""
        log = open(self.folder / "dockerd.log", "w")  # noqa: SIM115 (lives as long as dockerd)
        self.process = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={self.folder}/data",
                f"--exec-root={self.folder}/exec",
                f"--pidfile={self.folder}/docker.pid",
                f"--host=unix://{self.folder}/docker.sock",
                # Never the defaults: they would rewrite this machine's network.
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.docker("info", check=False).returncode == 0:
                return None
            time.sleep(1)
        self.stop()
        return (self.folder / "dockerd.log").read_text()[-2000:]

    def docker(self, *args, check: bool = True, timeout: float = 120):
        result = subprocess.run(
            ["docker", *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"docker {' '.join(map(str, args))}:\n{(result.stdout + result.stderr)[-6000:]}"
            )
        return result

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # dockerd leaves its network namespace file mounted under the exec root.
        prefix = f"{self.folder}/"
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            mount_point = line.split()[1]
            if mount_point.startswith(prefix):
                subprocess.run(["umount", mount_point], capture_output=True, check=False)


def base_image_tarball() -> Path:
    """A Debian bookworm root file system with python3, made once by debootstrap and cached.

    The machine's CA bundle goes in too: package downloads in the build may pass a proxy that
    this machine trusts.
    """
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    assert shutil.which("debootstrap"), "debootstrap is not installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,python3-pip",
                "bookworm",
                rootfs,
                "http://deb.debian.org/debian",
            ],
            timeout=1200,
        )
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/")
        partial = BASE_TARBALL.with_suffix(".partial")
        run(["tar", "-C", rootfs, "-cf", partial, "."], timeout=600)
        partial.rename(BASE_TARBALL)
    return BASE_TARBALL


def import_base_image(engine: DockerEngine, name: str) -> None:
    """The Dockerfile's base image, made here (no registry can be reached), under its name."""
    started = time.monotonic()
    changes = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    changes.append("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
    with open(base_image_tarball(), "rb") as tarball:
        imported = subprocess.run(
            ["docker", "import", *(f"--change=ENV {c}" for c in changes), "-", name],
            stdin=tarball,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert imported.returncode == 0, imported.stderr
    print(f"\nbase image {name} (debootstrap, imported): {time.monotonic() - started:.0f} s")
