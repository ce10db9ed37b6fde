"""Make the README's scorecard picture from a real seeded run (run with the test venv's Python:
`build/venvs/test/bin/python scripts/readme_scorecard.py`, after `make setup`).

The shipped mock profiles, the collector and the assistant as compose runs them (the shop agent
and evaluations on), 20 users x 10 requests from the load generator (seed 42), then
`python -m scorecard` on that run's archive and load summary, shown in headless Chromium: the top
of the page goes to docs/images/scorecard.png.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness.browser import chromium_browser  # noqa: E402
from harness.lab import lab  # noqa: E402
from harness.loadgen import run_loadgen_to_end  # noqa: E402
from harness.mock_llm import start_mock_llm  # noqa: E402

PICTURE = ROOT / "docs" / "images" / "scorecard.png"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="readme-scorecard-"))
    assistant_env = {"ASSISTANT_AGENT": "true", "ASSISTANT_EVALUATIONS": "true"}
    with (
        start_mock_llm(work / "mock") as mock,
        lab(work, mock, assistant_env=assistant_env) as (collector, assistant),
    ):
        load = run_loadgen_to_end(
            work, "load", timeout=1200, host=assistant.url, target="assistant", users=20,
            requests_per_user=10, spawn_rate=2, wait_seconds="0.5-3", seed=42, feedback_rate=0.3,
        )  # fmt: skip
        if load.exit_code != 0:
            sys.exit(f"the load run failed ({load.exit_code}):\n{load.process.log()[-3000:]}")
        time.sleep(5)  # the last evaluations and exports
    report = work / "report"
    subprocess.run(
        [sys.executable, "-m", "scorecard", "--archive", str(collector.archive),
         "--loadgen-summary", str(load.report_dir / "llm-summary.json"), "--out", str(report)],
        check=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "scorecard" / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    with chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto((report / "scorecard.html").as_uri())
        page.screenshot(path=str(PICTURE))
    print(f"{PICTURE} from {report / 'scorecard.html'}")


if __name__ == "__main__":
    main()
