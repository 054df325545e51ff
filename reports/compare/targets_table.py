"""The paper-style table of every target's confirmatory comparison: rows the arms; for each target domain its
in-domain accuracy and the forgetting on the other two, each a mean over seeds with its 95% t-interval.
`python reports/compare/targets_table.py` (reads reports/compare/tiny/<domain>/runs.csv for each domain that has
one)."""
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent / "tiny"
DOMAINS = ("math", "mcq", "code")


def interval(values: pd.Series) -> str:
    values = values.dropna().to_numpy() * 100
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.1f} ± {half:.1f}"


runs = {domain: pd.read_csv(HERE / domain / "runs.csv") for domain in DOMAINS if (HERE / domain / "runs.csv").is_file()}
runs = {domain: frame[frame["group"] == "arms"] for domain, frame in runs.items()}
columns = [(target, f"forgetting_{other}" if other != target else "accuracy")
           for target in runs for other in [target, *(d for d in DOMAINS if d != target)]]
header = [f"{target}: {'accuracy' if column == 'accuracy' else column.replace('_', ' ')}" for target, column in columns]
print("| arm | " + " | ".join(header) + " |")
print("|---|" + "---|" * len(header))
print("| base student | " + " | ".join(f"{100 * runs[target]['before'].iloc[0]:.1f}" if column == "accuracy" else "—"
                                       for target, column in columns) + " |")
arms = list(dict.fromkeys(arm for frame in runs.values() for arm in frame["arm"]))
for arm in arms:
    cells = [interval(runs[target].loc[runs[target]["arm"] == arm, column]) if arm in set(runs[target]["arm"]) else "—"
             for target, column in columns]
    print(f"| {arm} | " + " | ".join(cells) + " |")
