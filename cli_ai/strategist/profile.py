"""What the strategist knows about the machine: a small, JSON-serializable profile.

`gather_profile()` reads psutil, /proc and /sys; every source is optional, so a
missing file (a container, an unusual kernel) leaves a field empty instead of
failing. The roots are parameters so tests can point them at a fake tree.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

# Canonical service name -> process names that mean it runs.
SERVICE_PROCESSES: dict[str, tuple[str, ...]] = {
    "postgres": ("postgres", "postmaster"),
    "mysql": ("mysqld", "mariadbd", "mysqld_safe"),
    "nginx": ("nginx",),
    "httpd": ("httpd", "apache2"),
    "haproxy": ("haproxy",),
    "caddy": ("caddy",),
    "envoy": ("envoy",),
    "redis": ("redis-server",),
    "memcached": ("memcached",),
    "mosquitto": ("mosquitto",),
    "java": ("java",),
    "clickhouse": ("clickhouse-server", "clickhouse"),
    "mongodb": ("mongod",),
    "node": ("node",),
    "kubelet": ("kubelet",),
    "dockerd": ("dockerd",),
}
# Canonical service name -> programs whose presence on PATH means it is installed:
# the process names, except where the installed program is named differently.
SERVICE_PROGRAMS: dict[str, tuple[str, ...]] = {
    **SERVICE_PROCESSES,
    "postgres": ("postgres", "pg_ctl", "pg_ctlcluster"),
    "mysql": ("mysqld", "mariadbd"),
}
# Where packaged servers live off PATH (Debian's postgres binaries, for one).
SERVICE_GLOBS: dict[str, tuple[str, ...]] = {
    "postgres": ("/usr/lib/postgresql/*/bin/postgres",),
}
BENCHMARK_TOOLS = ("pgbench", "wrk", "sysbench", "redis-benchmark", "fio", "mosquitto_pub", "mosquitto_sub")
EXTRA_PATH = ("/usr/local/sbin", "/usr/sbin", "/sbin")


@dataclass(frozen=True)
class Disk:
    name: str
    rotational: bool | None
    size_gb: float | None = None


@dataclass(frozen=True)
class NetInterface:
    name: str
    speed_mbps: int | None
    up: bool | None = None


@dataclass
class SystemProfile:
    """The machine as the strategist sees it. Everything optional is None or empty."""

    cpu_count: int | None = None
    cpu_model: str | None = None
    memory_mb: int | None = None
    swap_mb: int | None = None
    kernel: str = ""
    distribution: str | None = None
    numa_nodes: int | None = None
    disks: list[Disk] = field(default_factory=list)
    interfaces: list[NetInterface] = field(default_factory=list)
    services_running: list[str] = field(default_factory=list)
    services_installed: list[str] = field(default_factory=list)
    benchmark_tools: list[str] = field(default_factory=list)
    absent_sysctls: list[str] | None = None
    congestion_controls: list[str] | None = None

    # ------------------------------------------------------------------ queries
    def runs(self, service: str) -> bool:
        return service in self.services_running

    def has_installed(self, service: str) -> bool:
        return service in self.services_installed or service in self.services_running

    def has_tool(self, tool: str) -> bool:
        return tool in self.benchmark_tools

    def sysctl_present(self, name: str) -> bool | None:
        """Whether the kernel has this sysctl (None: unknown, the catalogue was not probed)."""
        if self.absent_sysctls is None:
            return None
        return name not in self.absent_sysctls

    @property
    def rotational_disks(self) -> list[str]:
        return [d.name for d in self.disks if d.rotational]

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SystemProfile":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["disks"] = [Disk(**d) if isinstance(d, dict) else d for d in kwargs.get("disks", [])]
        kwargs["interfaces"] = [NetInterface(**n) if isinstance(n, dict) else n for n in kwargs.get("interfaces", [])]
        return cls(**kwargs)

    def summary_lines(self) -> list[str]:
        """A compact human description, one fact per line (used in the LLM prompt)."""
        out = []
        cpu = f"{self.cpu_count} CPUs" if self.cpu_count else "CPU count unknown"
        if self.cpu_model:
            cpu += f" ({self.cpu_model})"
        if self.numa_nodes and self.numa_nodes > 1:
            cpu += f", {self.numa_nodes} NUMA nodes"
        out.append(cpu)
        mem = f"memory {self.memory_mb} MiB" if self.memory_mb is not None else "memory unknown"
        if self.swap_mb is not None:
            mem += f", swap {self.swap_mb} MiB"
        out.append(mem)
        out.append(f"kernel {self.kernel or 'unknown'}" + (f", {self.distribution}" if self.distribution else ""))
        if self.disks:
            out.append(
                "disks: "
                + ", ".join(
                    f"{d.name} ({'rotational' if d.rotational else 'SSD/NVMe' if d.rotational is False else 'type unknown'}"
                    + (f", {d.size_gb:g} GB" if d.size_gb else "")
                    + ")"
                    for d in self.disks
                )
            )
        if self.interfaces:
            out.append(
                "network: "
                + ", ".join(
                    f"{n.name} ({f'{n.speed_mbps} Mb/s' if n.speed_mbps else 'speed unknown'})" for n in self.interfaces
                )
            )
        out.append("services running: " + (", ".join(self.services_running) or "none of the known ones"))
        installed = [s for s in self.services_installed if s not in self.services_running]
        if installed:
            out.append("services installed, not running: " + ", ".join(installed))
        out.append("benchmark tools on PATH: " + (", ".join(self.benchmark_tools) or "none"))
        if self.congestion_controls:
            out.append("TCP congestion controls available: " + ", ".join(self.congestion_controls))
        return out


# --------------------------------------------------------------------------- readers


def _read(path: str | Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (OSError, ValueError):
        return None


def _cpu_model(proc_root: str) -> str | None:
    text = _read(os.path.join(proc_root, "cpuinfo")) or ""
    for key in ("model name", "Hardware", "Processor", "cpu model", "cpu"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return " ".join(value.split())
    return platform.processor() or None


def _cpu_count(proc_root: str) -> int | None:
    if os.path.abspath(proc_root) == "/proc":
        try:
            import psutil

            n = psutil.cpu_count(logical=True)
            if n:
                return int(n)
        except Exception:
            pass
    text = _read(os.path.join(proc_root, "cpuinfo"))
    if text:
        n = sum(1 for line in text.splitlines() if line.startswith("processor"))
        if n:
            return n
    return os.cpu_count()


def _meminfo_mb(proc_root: str, key: str) -> int | None:
    text = _read(os.path.join(proc_root, "meminfo")) or ""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == key:
            parts = rest.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) // 1024
    return None


def _memory(proc_root: str) -> tuple[int | None, int | None]:
    mem = _meminfo_mb(proc_root, "MemTotal")
    swap = _meminfo_mb(proc_root, "SwapTotal")
    if mem is None and os.path.abspath(proc_root) == "/proc":
        try:
            import psutil

            mem = psutil.virtual_memory().total // (1024 * 1024)
            swap = psutil.swap_memory().total // (1024 * 1024)
        except Exception:
            pass
    return mem, swap


def _distribution(etc_root: str) -> str | None:
    for name in ("os-release", "../usr/lib/os-release"):
        text = _read(os.path.join(etc_root, name))
        if not text:
            continue
        values = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"')
        return values.get("PRETTY_NAME") or values.get("NAME")
    return None


def _disks(sys_root: str) -> list[Disk]:
    out = []
    for dev in sorted(glob.glob(os.path.join(sys_root, "block", "*"))):
        name = os.path.basename(dev)
        if name.startswith(("loop", "ram", "zram", "dm-", "sr", "fd", "md", "nbd")):
            continue
        rot = (_read(os.path.join(dev, "queue", "rotational")) or "").strip()
        size = (_read(os.path.join(dev, "size")) or "").strip()
        out.append(
            Disk(
                name=name,
                rotational=True if rot == "1" else False if rot == "0" else None,
                size_gb=round(int(size) * 512 / 1e9, 1) if size.isdigit() and int(size) > 0 else None,
            )
        )
    return out


def _interfaces(sys_root: str) -> list[NetInterface]:
    out = []
    for dev in sorted(glob.glob(os.path.join(sys_root, "class", "net", "*"))):
        name = os.path.basename(dev)
        if name == "lo":
            continue
        speed_text = (_read(os.path.join(dev, "speed")) or "").strip()
        try:
            speed = int(speed_text)
        except ValueError:
            speed = None
        if speed is not None and speed <= 0:
            speed = None
        state = (_read(os.path.join(dev, "operstate")) or "").strip()
        out.append(NetInterface(name=name, speed_mbps=speed, up=True if state == "up" else False if state == "down" else None))
    return out


def _numa_nodes(sys_root: str) -> int | None:
    nodes = glob.glob(os.path.join(sys_root, "devices", "system", "node", "node[0-9]*"))
    return len(nodes) or None


def running_services(process_names: Iterable[str] | None = None) -> list[str]:
    """Known services among the running processes (psutil when no names are given)."""
    if process_names is None:
        names: set[str] = set()
        try:
            import psutil

            for proc in psutil.process_iter(["name"]):
                try:
                    if proc.info.get("name"):
                        names.add(proc.info["name"])
                except Exception:
                    continue
        except Exception:
            return []
    else:
        names = set(process_names)
    return sorted(svc for svc, procs in SERVICE_PROCESSES.items() if names.intersection(procs))


def _search_path(path: str | None) -> str:
    """The given search path as is; else $PATH plus the sbin directories daemons live in."""
    if path is not None:
        return path
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    for extra in EXTRA_PATH:
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(parts)


def installed_services(path: str | None = None) -> list[str]:
    search = _search_path(path)
    out = []
    for svc, programs in SERVICE_PROGRAMS.items():
        if any(shutil.which(p, path=search) for p in programs) or (
            path is None and any(glob.glob(g) for g in SERVICE_GLOBS.get(svc, ()))
        ):
            out.append(svc)
    return sorted(out)


def benchmark_tools(path: str | None = None) -> list[str]:
    search = _search_path(path)
    return [t for t in BENCHMARK_TOOLS if shutil.which(t, path=search)]


def absent_sysctls(proc_root: str) -> list[str] | None:
    """Catalogue entries this kernel lacks (None when /proc/sys is not there at all)."""
    from cli_ai.safety.catalog import load_catalog

    sys_dir = os.path.join(proc_root, "sys")
    if not os.path.isdir(sys_dir):
        return None
    return sorted(
        name for name in load_catalog() if not os.path.isfile(os.path.join(sys_dir, *name.split(".")))
    )


def _congestion_controls(proc_root: str) -> list[str] | None:
    text = _read(os.path.join(proc_root, "sys", "net", "ipv4", "tcp_available_congestion_control"))
    return sorted(text.split()) if text and text.split() else None


def gather_profile(
    *,
    proc_root: str = "/proc",
    sys_root: str = "/sys",
    etc_root: str = "/etc",
    path: str | None = None,
    process_names: Iterable[str] | None = None,
) -> SystemProfile:
    """Profile this machine. Never raises for a missing or unreadable source."""
    mem, swap = _memory(proc_root)
    return SystemProfile(
        cpu_count=_cpu_count(proc_root),
        cpu_model=_cpu_model(proc_root),
        memory_mb=mem,
        swap_mb=swap,
        kernel=platform.release(),
        distribution=_distribution(etc_root),
        numa_nodes=_numa_nodes(sys_root),
        disks=_disks(sys_root),
        interfaces=_interfaces(sys_root),
        services_running=running_services(process_names),
        services_installed=installed_services(path),
        benchmark_tools=benchmark_tools(path),
        absent_sysctls=absent_sysctls(proc_root),
        congestion_controls=_congestion_controls(proc_root),
    )


__all__ = ["SystemProfile", "Disk", "NetInterface", "gather_profile", "running_services", "SERVICE_PROCESSES"]
