"""fio's JSON output (--output-format=json)."""

from __future__ import annotations

import json
import re

from cli_ai.tactician.benchmarks.common import finite_only


def _fio_document(text: str) -> dict | None:
    """The fio JSON report inside an output that may start with notes or
    warnings (stderr is merged into stdout) and end with more text."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"^\{", text, re.M):
        try:
            doc, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("jobs"), list):
            return doc
    return None


def _fio_latency(stats: dict, key: str) -> tuple[dict, float] | None:
    """(latency block, factor to ms): fio 3 reports `<key>_ns`, fio 2 `<key>` in us."""
    if isinstance(stats.get(f"{key}_ns"), dict):
        return stats[f"{key}_ns"], 1e-6
    if isinstance(stats.get(key), dict):
        return stats[key], 1e-3
    return None


def parse_fio_json(text: str) -> dict[str, float]:
    """`fio --output-format=json`, aggregated over every job.

    Per direction (read, write; trim when it did I/O): `<dir>_iops` and
    `<dir>_bw_kib_s` summed over jobs, `<dir>_ios` (completed I/Os),
    `<dir>_clat_mean_ms` and `<dir>_lat_mean_ms` weighted by each job's sample
    count, and `<dir>_clat_p50_ms`/`p95`/`p99` as the largest job's value (an
    upper bound of the merged percentile; exact for one job or group_reporting).
    Overall: `iops`, `bw_kib_s` (sums over directions), `clat_mean_ms`,
    `lat_mean_ms` (sample-weighted) and `clat_pNN_ms` (largest direction)."""
    doc = _fio_document(text)
    if doc is None:
        return {}
    acc: dict[str, dict[str, float]] = {}
    for job in doc["jobs"]:
        if not isinstance(job, dict):
            continue
        for direction in ("read", "write", "trim"):
            stats = job.get(direction)
            if not isinstance(stats, dict):
                continue
            a = acc.setdefault(direction, {"iops": 0.0, "bw": 0.0, "ios": 0.0})
            a["iops"] += float(stats.get("iops", 0.0))
            a["bw"] += float(stats.get("bw", 0.0))
            a["ios"] += float(stats.get("total_ios", 0.0))
            for key in ("clat", "lat"):
                found = _fio_latency(stats, key)
                if not found:
                    continue
                block, to_ms = found
                n = float(block.get("N", 0) or 0)
                if n <= 0:
                    continue
                a[f"{key}_n"] = a.get(f"{key}_n", 0.0) + n
                a[f"{key}_sum"] = a.get(f"{key}_sum", 0.0) + n * float(block.get("mean", 0.0)) * to_ms
                for pct, value in (block.get("percentile") or {}).items():
                    try:
                        p = float(pct)
                    except ValueError:
                        continue
                    if p in (50.0, 95.0, 99.0):
                        name = f"{key}_p{int(p)}"
                        a[name] = max(a.get(name, 0.0), float(value) * to_ms)
    out: dict[str, float] = {"jobs": float(len(doc["jobs"]))}
    total_n = {"clat": 0.0, "lat": 0.0}
    total_sum = {"clat": 0.0, "lat": 0.0}
    for direction, a in acc.items():
        if direction == "trim" and a["ios"] == 0 and a["iops"] == 0:
            continue
        out[f"{direction}_iops"] = a["iops"]
        out[f"{direction}_bw_kib_s"] = a["bw"]
        out[f"{direction}_ios"] = a["ios"]
        out["iops"] = out.get("iops", 0.0) + a["iops"]
        out["bw_kib_s"] = out.get("bw_kib_s", 0.0) + a["bw"]
        for key in ("clat", "lat"):
            if a.get(f"{key}_n"):
                out[f"{direction}_{key}_mean_ms"] = a[f"{key}_sum"] / a[f"{key}_n"]
                total_n[key] += a[f"{key}_n"]
                total_sum[key] += a[f"{key}_sum"]
        for p in (50, 95, 99):
            if f"clat_p{p}" in a:
                out[f"{direction}_clat_p{p}_ms"] = a[f"clat_p{p}"]
                out[f"clat_p{p}_ms"] = max(out.get(f"clat_p{p}_ms", 0.0), a[f"clat_p{p}"])
    for key in ("clat", "lat"):
        if total_n[key]:
            out[f"{key}_mean_ms"] = total_sum[key] / total_n[key]
    return finite_only(out)
