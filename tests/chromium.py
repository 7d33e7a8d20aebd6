"""Debian's headless Chromium driven by selenium, for the page tests (the web chat, the report)."""

from __future__ import annotations

# without the background-networking flags Chromium keeps dialling hosts this closed network refuses
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def open_chromium(tmp_path_factory, window: str = "1280,800"):
    """Yields a driver with a fresh profile; quits it after. Use as a fixture body: `yield from`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [*FLAGS, f"--window-size={window}", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()
