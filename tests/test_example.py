"""The main job: examples/coffee.py runs end to end and reproduces the blog's checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_coffee_example_runs(tmp_path, coffee_fit):  # coffee_fit: the program is compiled and cached
    figure = tmp_path / "coffee.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "coffee.py"), "--figure", str(figure)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    out = result.stdout
    # the blog's plain regression, to its printed digits
    assert re.search(r"\(Intercept\)\s+3\.6933\s+\(SE 0\.2896\)", out)
    assert re.search(r"\bx\s+0\.5223\s+\(SE 0\.2759\)", out)
    assert "coef == fixef + ranef: True (posterior means); True (slope, draw by draw)" in out
    assert "Multilevel Hyperparameters:" in out and "No divergences" in out
    assert len(re.findall(r"simulated (10|1) \(inside the 95% interval\)", out)) == 2
    assert figure.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coffee.png", "coffee_pp_check.png"]
    assert (tmp_path / "coffee_pp_check.png").stat().st_size > 10_000
    assert re.search(r"PSIS-LOO: elpd_loo -\d+\.\d; Bayesian R2 0\.9\d\d", out)


@pytest.mark.slow
def test_readme_quickstart_runs(coffee_fit):  # same program structure as coffee: compiled and cached
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    lme4 = json.loads((ROOT / "tests" / "data" / "sleepstudy.json").read_text())
    days, days_se = lme4["fixef"]["Days"], lme4["fixef_se"]["Days"]
    code += (
        f"\nassert abs(fit.fixef().loc['Days', 'Estimate'] - {days}) < 0.5 * {days_se}  # lme4\n"
        "assert fit.ranef()['Subject'].index[0] == '308'\n"
        "assert {'Intercept', 'Days'} <= set(fit.coef()['Subject'].columns)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
