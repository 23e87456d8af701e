"""The MLflow UI in a real browser: ``mlflow server`` over a store with mmbench runs, headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by selenium) opens the link mmbench logs and sees the runs table with
the Dataset column filled. Without Chromium it skips saying so; with ``MMBENCH_REQUIRE_SERVICES=1`` (CI) it fails.
``MMBENCH_UI_SCREENSHOT=<file.png>`` keeps the screenshot (README "Browsing in MLflow")."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.config import CONF_DIR, compose
from mmbench.tracking.mlflow_tracker import MLflowTracker
from tests.helpers.services import need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chrome():
    """Headless Chromium through selenium and the system's chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need("selenium is not installed (pip install -e '.[dev]')", False)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    need("no Chromium (Debian: apt-get install chromium chromium-driver)", bool(binary and driver))
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,720"):
        options.add_argument(arg)
    options.binary_location = binary
    browser = webdriver.Chrome(options=options, service=Service(driver))
    yield browser
    browser.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, list[pipeline.RunResult]]:
    """Two mmbench runs (Pop, Random) on synthetic data in a SQLite store, with the command line the CLI has."""
    tmp = tmp_path_factory.mktemp("ui")
    results = []
    mp = pytest.MonkeyPatch()
    for model in ("pop", "random"):
        mp.setattr(sys, "argv", ["/venv/bin/mmbench", "dataset=synthetic", f"model={model}"])
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                [
                    f"paths.work_dir={tmp}",
                    f"logger.tracking_uri=sqlite:///{tmp}/mlflow.db",
                    "dataset=synthetic",
                    f"model={model}",
                    "eval.progress=false",
                ]
            )
        results.append(pipeline.run(cfg))
    mp.undo()
    return tmp, results


@pytest.fixture(scope="module")
def server(store):
    """``mlflow server`` on 127.0.0.1 over the store; its base URL once /health answers (minutes at most)."""
    tmp, _ = store
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def page_text(browser, until: str, timeout: float = 90) -> str:
    """The page's text once it contains ``until`` (the UI renders client-side)."""
    deadline = time.monotonic() + timeout
    while True:
        text = browser.find_element("tag name", "body").text
        if until in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def column_headers(browser, needed: set[str], timeout: float = 90) -> list[str]:
    """The runs table's column headers once they include ``needed`` (they render after the run count)."""
    deadline = time.monotonic() + timeout
    while True:
        headers = [h.text for h in browser.find_elements("css selector", "[role=columnheader]")]
        if needed <= set(headers) or time.monotonic() > deadline:
            return headers
        time.sleep(0.5)


def close_assistant(browser) -> None:
    """Close the MLflow Assistant side panel when it is open (the screenshot shows the table instead)."""
    for button in browser.find_elements("css selector", "button[aria-label='Close']"):
        button.click()


def test_the_logged_link_opens_the_runs_table_with_datasets(chrome, store, server):
    tmp, results = store
    tracker = MLflowTracker(server, "mmbench")  # the link a run logged through this server would print
    tracker.experiment_id = MlflowClient(f"sqlite:///{tmp}/mlflow.db").get_experiment_by_name("mmbench").experiment_id
    link = tracker.browse_hint()
    assert link.startswith(server + "/#/experiments/")
    chrome.get(link)
    text = page_text(chrome, "2 matching runs")
    assert "2 matching runs" in text, text[:2000]
    assert "/runs" in chrome.current_url
    assert "Token Usage" not in text and "Overview" not in text  # not the GenAI overview
    headers = column_headers(chrome, {"Run Name", "Dataset"})
    assert {"Run Name", "Dataset"} <= set(headers), headers
    digest = results[0].split.fingerprint[:16]
    text = page_text(chrome, f"synthetic ({digest}-train)")  # the Dataset cells render after the rows
    assert f"synthetic ({digest}-train)" in text  # the Dataset column names the dataset
    close_assistant(chrome)
    time.sleep(1)
    chrome.save_screenshot(os.environ.get("MMBENCH_UI_SCREENSHOT") or str(tmp / "runs.png"))
    assert "pop-synthetic-seed0" in text and "random-synthetic-seed0" in text
    assert "mmbench dataset=synthetic model=pop" in text  # the Source column: the command line
    # MLflow 3.17 opens a bare experiment page by the browser's GenAI / Model training switch (default GenAI; the
    # URL parameter does not change the default); choosing "Model training" once is remembered
    bare = f"{server}/#/experiments/{tracker.experiment_id}"
    chrome.get(bare)
    page_text(chrome, "Model training")
    switch = chrome.find_element("xpath", "//*[normalize-space(text())='Model training']")
    chrome.execute_script("arguments[0].click()", switch)  # a GenAI popover may cover it
    page_text(chrome, "2 matching runs")
    chrome.get(server + "/#/")
    chrome.get(bare)
    page_text(chrome, "2 matching runs")
    assert "/runs" in chrome.current_url and "workflowType=machine_learning" in chrome.current_url
