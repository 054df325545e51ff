"""Applies the criteria of a confirmatory comparison's protocol (reports/compare/<profile>/<domain>/protocol.md; the
same for every target domain) to the run's files, as written:
`python reports/compare/criteria.py reports/compare/<profile>/<domain>`."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

out = Path(sys.argv[1])
runs = pd.read_csv(out / "runs.csv")
runs = runs[runs["group"] == "arms"]
summary = json.loads((out / "summary.json").read_text())
ARM = "acqsyn_learnability"
# The domains the student knew besides the target: those the runs measured forgetting on.
FORGETTING_DOMAINS = [column.removeprefix("forgetting_") for column in runs.columns if column.startswith("forgetting_")]

print("## per arm (accuracy %, mean ± CI95 over seeds)")
for arm, group in runs.groupby("arm", sort=False):
    acc = group["accuracy"].to_numpy() * 100
    half = stats.t.ppf(0.975, len(acc) - 1) * acc.std(ddof=1) / np.sqrt(len(acc))
    gain = acc.mean() - 100 * group["before"].mean()
    forgetting = ", ".join(f"{domain} {100 * group[f'forgetting_{domain}'].mean():.1f}"
                           for domain in FORGETTING_DOMAINS)
    print(f"{arm}: {acc.mean():.1f} ± {half:.1f} (n={len(acc)}), gain {gain:+.1f}; forgetting {forgetting}; "
          f"n_data {group['n_data'].mean():.0f}; verified {group['verified_rate'].mean():.3f}")

print("\n## primary (Holm)")
primary = {row["reference"]: row for row in summary["primary_comparisons"] if row["arm"] == ARM}
for reference, row in primary.items():
    low, high = row["interval"]
    print(f"{ARM} - {reference}: {100 * row['difference']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}] level "
          f"{row['interval_level']:.4f} p_holm {row['p_holm']:.4f} "
          f"detectable {100 * row['minimum_detectable_difference']:.1f}")


def forgetting_interval(domain):
    a = runs[runs["arm"] == ARM].set_index("seed")[f"forgetting_{domain}"]
    b = runs[runs["arm"] == "original"].set_index("seed")[f"forgetting_{domain}"]
    seeds = sorted(set(a.index) & set(b.index))
    d = (a.loc[seeds] - b.loc[seeds]).to_numpy() * 100
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half, len(d)


print("\n## forgetting: paired (learnability - original) drop, 95% t over seeds")
forgets_no_more = True
for domain in FORGETTING_DOMAINS:
    mean, low, high, n = forgetting_interval(domain)
    ok = low <= 0
    forgets_no_more &= ok
    print(f"{domain}: {mean:+.2f} [{low:+.2f}, {high:+.2f}] (n={n}) -> lower end <= 0: {ok}")

print("\n## criteria")
target = all(reference in primary and primary[reference]["difference"] >= 0.03
             and primary[reference]["interval"][0] > 0 for reference in ("original", "rejection_sampling"))
print(f"target (>= +3 over original and rejection_sampling, Holm intervals above 0, forgets no more): "
      f"{target and forgets_no_more} (accuracy part {target}, forgetting part {forgets_no_more})")
stretch = ("original" in primary and primary["original"]["difference"] >= 0.07 and "random_pool" in primary
           and primary["random_pool"]["interval"][0] > 0)
print(f"stretch (+7 over original and Holm interval vs random_pool above 0): {stretch}")
control = "verify_only" in primary and primary["verify_only"]["interval"][0] > 0
print(f"control (Holm interval vs verify_only above 0): {control}")
