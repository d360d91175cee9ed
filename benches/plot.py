"""Plots benches/results/ready-<topology>-<model>-n<N>.csv (Ready count over time) into
ready-over-time.png (results of the current benchmark, which name a topology).

Left: Ready objects over seconds since the first create, one line per N, with each run's
floor as a dashed line. Right: the same as a share of N over time / floor, so the runs
compare on one scale (1.0 on the x axis is the floor).
Usage: python benches/plot.py [results-dir]
"""
import csv
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "benches/results")
    runs = []
    for js in sorted(out.glob("scale-*.json")):
        result = json.loads(js.read_text())
        if not result.get("topology"):
            continue
        n = result["n"]
        csv_path = out / js.name.replace("scale-", "ready-").replace(".json", ".csv")
        if not csv_path.exists():
            continue
        with csv_path.open() as f:
            rows = [(float(r["seconds"]), int(r["ready"])) for r in csv.DictReader(f)]
        runs.append((n, result, rows))
    if not runs:
        sys.exit(f"no results in {out}")
    runs.sort(key=lambda r: r[0])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for n, result, rows in runs:
        xs = [t for t, _ in rows]
        ys = [c for _, c in rows]
        (line,) = ax1.step(xs, ys, where="post", label=f"N = {n:,} {result['topology']} {result['quota_model']}")
        ax1.axvline(result["floor_s"], color=line.get_color(), linestyle="--", linewidth=0.8)
        floor = result["floor_s"]
        ax2.step([x / floor for x in xs], [y / n for y in ys], where="post",
                 color=line.get_color(),
                 label=f"N = {n:,}: all Ready at {result['all_ready_s'] / floor:.2f}× floor")
    ax1.set_xlabel("seconds since the first create")
    ax1.set_ylabel("BgpPeers Ready")
    ax1.set_yscale("log")
    ax1.set_title("Ready count over time (dashed: floor)")
    ax1.grid(True, alpha=0.3)
    ax1.legend()
    ax2.axvline(1.0, color="black", linestyle="--", linewidth=0.8)
    ax2.axvline(1.2, color="grey", linestyle=":", linewidth=0.8)
    ax2.set_xlabel("time / floor  (floor = (N + Σ⌈n_g/50⌉) / QPS limit + Pending)")
    ax2.set_ylabel("share Ready")
    ax2.set_title("Normalised (dotted: target 1.2× floor)")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="lower right")
    r0 = runs[0][1]
    fig.suptitle(
        f"alicloud-bgp-operator: {r0['groups']} groups, account limit {r0['account_qps']} calls/s, "
        f"--cloud-qps {r0['cloud_qps']:g}, latency {r0['latency_ms'][0]}–{r0['latency_ms'][1]} ms, "
        f"Pending {r0['pending_s']:g} s"
    )
    fig.tight_layout()
    target = out / "ready-over-time.png"
    fig.savefig(target, dpi=110)
    print(target)


if __name__ == "__main__":
    main()
