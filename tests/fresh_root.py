"""A stock Debian 12 machine for the tests: a root file system made by debootstrap with only
what the README asks for (python3 with venv, git, make), entered with chroot.

The README's promise is checked there, where no tool of this machine can hide a missing
install step. What it shares with this machine, and why:
- the kernel, the network and the CA bundle (the network of a test machine may re-sign TLS);
- uv's package cache, bind-mounted: the two commands are timed with a warm package cache;
- the Python interpreters a rendering asks for that Debian 12 lacks, copied to the same path
  (uv would download them on a real machine; this one reaches the package registries only).

Unpacked anew for each session from a tarball built once (about a minute) and kept in
`~/.cache/copier-mlops/`. Needs root, Linux and debootstrap (installed with apt-get when
missing); `unavailable()` says why not otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from programs import apt_install, python_for
from rendering import ROOT

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "git", "make", "ca-certificates")
IMAGE = Path.home() / ".cache" / "copier-mlops" / f"debian-{SUITE}-{'-'.join(PACKAGES)}.tar"
MIRROR = "http://deb.debian.org/debian"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO")
UV_CACHE = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))


def unavailable() -> str | None:
    """Why no fresh root can be made on this machine, or None when it can."""
    if not Path("/proc/self/mountinfo").exists():
        return "this is not Linux"
    if os.geteuid() != 0:
        return "debootstrap, mount and chroot need root"
    if shutil.which("debootstrap") is None and (problem := apt_install("debootstrap")):
        return problem
    return None


def image() -> Path:
    """The tarball of a minimal Debian root, built with debootstrap when not there yet."""
    if IMAGE.exists():
        return IMAGE
    IMAGE.parent.mkdir(parents=True, exist_ok=True)
    staging = IMAGE.parent / f"building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
        SUITE, str(staging), MIRROR,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"debootstrap failed:\n{(result.stdout + result.stderr)[-3000:]}")
    for package in (staging / "var/cache/apt/archives").glob("*.deb"):
        package.unlink()  # what apt-get clean removes
    partial = IMAGE.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(staging), "-cf", str(partial), "."], check=True)
    partial.rename(IMAGE)  # whole or not at all
    shutil.rmtree(staging, ignore_errors=True)
    return IMAGE


class FreshRoot:
    """A Debian root unpacked under `folder`, with /proc, /sys, /dev and uv's cache mounted."""

    def __init__(self, folder: Path, pythons: tuple[str, ...] = ()) -> None:
        self.root = folder / "root"
        self.root.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(self.root), "-xf", str(image())], check=True)
        self._mounts: list[Path] = []
        self._mount(["-t", "proc", "proc"], "proc")
        self._mount(["-t", "sysfs", "-o", "ro", "sysfs"], "sys")
        self._mount(["--rbind", "/dev"], "dev")
        subprocess.run(["mount", "--make-rslave", str(self.root / "dev")], check=True)
        UV_CACHE.mkdir(parents=True, exist_ok=True)
        self._mount(["--bind", str(UV_CACHE)], "root/.cache/uv")
        shutil.copyfile(CA_BUNDLE, self.root / CA_BUNDLE.relative_to("/"))
        shutil.copyfile("/etc/resolv.conf", self.root / "etc/resolv.conf")
        for version in pythons:
            self._copy_python(version)

    def _mount(self, how: list[str], inside: str) -> None:
        target = self.root / inside
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *how, str(target)], check=True)
        self._mounts.append(target)

    def _copy_python(self, version: str) -> None:
        """This machine's Python `version`, at the same path, on PATH as `python<version>`."""
        found = python_for(version)
        if found is None:
            raise RuntimeError(f"no Python {version} on this machine to copy in")
        prefix = Path(found).resolve().parents[1]
        shutil.copytree(prefix, self.root / prefix.relative_to("/"), symlinks=True)
        link = self.root / "usr/local/bin" / f"python{version}"
        link.unlink(missing_ok=True)
        link.symlink_to(Path(found).resolve())

    def copy_repository(self, inside: str = "root/repo") -> str:
        """A clone of this repository with the working tree's changes on top (uncommitted
        and untracked files included, ignored ones left out); its path inside the root."""
        target = self.root / inside
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(target)], check=True)
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split("\0")  # fmt: skip
        for name in filter(None, listed):
            source = ROOT / name
            if source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
            else:  # deleted in the working tree
                (target / name).unlink(missing_ok=True)
        return f"/{inside}"

    def run(self, command: str, cwd: str, timeout: float = 1800) -> tuple[int, str, float]:
        """Run `command` with bash in `cwd` inside the root, in a clean login environment;
        its exit status, its output and the seconds it took."""
        env = ["HOME=/root", f"PATH={PATH}", "LANG=C.UTF-8", "TERM=dumb"]
        env += [f"{name}={CA_BUNDLE}" for name in CA_VARIABLES]
        # What .ci/run exports: no usage reports leave the test machine.
        env += ["MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true"]
        # uv's cache is a mount of its own: a hard link cannot cross it, so uv copies (and
        # would warn of it once per install).
        env += ["UV_LINK_MODE=copy"]
        inner = f"cd {cwd} && {command}"
        started = time.monotonic()
        result = subprocess.run(
            ["chroot", str(self.root), "/usr/bin/env", "-i", *env, "bash", "-lc", inner],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr, time.monotonic() - started

    def close(self) -> None:
        """Stop what still runs inside, unmount, remove the root."""
        self._kill_inside()
        for target in reversed(self._mounts):
            subprocess.run(["umount", "-R", str(target)], check=False, capture_output=True)
        left = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if f" {self.root}/" in line]  # fmt: skip
        if left:  # never delete through a mount
            raise RuntimeError(f"still mounted under {self.root}: {left}")
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_inside(self) -> None:
        for signal_name in ("TERM", "KILL"):
            inside = [pid for pid in _pids() if _root_of(pid).startswith(str(self.root))]
            if not inside:
                return
            subprocess.run(["kill", f"-{signal_name}", *inside], check=False, capture_output=True)
            time.sleep(2)


def _pids() -> list[str]:
    return [entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _root_of(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return ""
