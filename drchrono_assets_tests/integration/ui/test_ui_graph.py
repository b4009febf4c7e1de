"""Headless Chromium on the asset graph page of the deployed webserver: every asset drawn,
named in full; a screenshot is kept in ``test-artifacts/asset-graph.png``."""

from __future__ import annotations

from pathlib import Path

import pytest

from drchrono_assets_tests.support.deployment import ALL_ASSETS, Deployment
from drchrono_assets_tests.support.paths import REPO
from drchrono_assets_tests.support.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.processes]

ARTIFACTS = REPO / "test-artifacts"
BROWSER_SECONDS = 60

# The text of each node of the asset graph (the SVG viewport's foreignObjects) whose box lies
# wholly inside the viewport: nodes cut off at its edges, or not drawn at all, do not count.
GRAPH_TEXT_SCRIPT = """
const viewport = document.querySelector('[data-svg-viewport]');
if (!viewport) return [];
const view = viewport.getBoundingClientRect();
return Array.from(viewport.querySelectorAll('svg foreignObject > *'))
  .filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.top >= view.top && box.bottom <= view.bottom
      && box.left >= view.left && box.right <= view.right;
  })
  .map((node) => node.innerText);
"""


def _label_for(name: str, lines: set[str]) -> str | None:
    """The graph label showing ``name``: the name, or the name with its middle cut to "…"."""
    if name in lines:
        return name
    for line in lines:
        head, cut, tail = line.partition("…")
        if cut and len(line) < len(name) and name.startswith(head) and name.endswith(tail):
            return line
    return None


def test_asset_graph_page_renders_every_asset(deployment: Deployment, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # What the first-visit "Join the Dagster community" dialog's Skip does on the server, so
    # the dialog does not cover the graph.
    deployment.graphql("mutation { setNuxSeen }")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1600,1200",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    screenshot = ARTIFACTS / "asset-graph.png"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        driver.set_page_load_timeout(BROWSER_SECONDS)
        driver.set_script_timeout(10)
        driver.get(f"{deployment.url}/asset-groups")

        def graph_lines() -> set[str]:
            """The text of the graph's nodes lying wholly inside its viewport (not the sidebar)."""
            texts = driver.execute_script(GRAPH_TEXT_SCRIPT)
            return {line.strip() for text in texts for line in text.splitlines()}

        def report() -> str:
            driver.save_screenshot(str(screenshot))
            return f"{driver.current_url}\ngraph text: {sorted(graph_lines())}"

        # Three groups: the graph first draws them collapsed, one box per group.
        wait_for(
            "the asset groups drawn in the graph",
            lambda: {"drchrono", "billing", "bi"} <= graph_lines(),
            BROWSER_SECONDS,
            report,
        )
        # The graph's own shortcut for "Expand all groups" (in its settings menu).
        ActionChains(driver).key_down(Keys.ALT).send_keys("e").key_up(Keys.ALT).perform()
        wait_for("the groups to expand", lambda: "expanded=" in driver.current_url, 10, report)

        wait_for(
            "the expanded groups' assets drawn in the graph",
            lambda: set(ALL_ASSETS) & graph_lines(),
            BROWSER_SECONDS,
            report,
        )

        # The page fits the graph to its width and draws only the nodes inside the view, so the
        # tall graph is cut off at first. Zoom out a step at a time (the viewport's own zoom-out
        # button) until every asset's node is wholly in view. At that scale the nodes
        # are minimal and a name over 18 characters is shown middle-truncated ("abc…_xyz").
        zoom_out = driver.find_element(
            By.XPATH, "//*[@data-svg-viewport]//button[.//*[@aria-label='zoom_out']]"
        )

        def labels() -> dict[str, str] | None:
            """Each asset's label in the graph, when every asset is drawn."""
            lines = graph_lines()
            found = {name: _label_for(name, lines) for name in ALL_ASSETS}
            return None if None in found.values() else found  # type: ignore[return-value]

        def every_asset_drawn() -> dict[str, str] | None:
            found = labels()
            if found is None:
                zoom_out.click()
            return found

        shown = wait_for(
            "every asset drawn in the graph", every_asset_drawn, BROWSER_SECONDS, report
        )
        assert driver.save_screenshot(str(screenshot))

        # A truncated label is the asset's minimal node: double-clicking a node zooms to it, and
        # at that scale the full node shows the whole name.
        for name, label in shown.items():
            if label == name:
                continue

            def full_name_drawn(name: str = name, label: str = label) -> bool:
                if name in graph_lines():
                    return True
                nodes = driver.find_elements(
                    By.XPATH,
                    "//*[@data-svg-viewport]//*[local-name()='foreignObject']"
                    f"//div[normalize-space(text())='{label}']",
                )
                if nodes:
                    ActionChains(driver).double_click(nodes[0]).perform()
                else:
                    zoom_out.click()
                return False

            wait_for(f"{name}'s full name in the graph", full_name_drawn, 30, report)
    finally:
        driver.quit()
    content = screenshot.read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 10_000
