"""Headless Chromium through Selenium, as the dashboard's browser tests use it.

Debian's ``chromium`` and ``chromium-driver`` (``./dev test`` installs them). The machine has
no network: every flag that would make the browser phone home is off, and each session gets a
fresh profile directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile; quit on exit."""
    with tempfile.TemporaryDirectory(prefix="foundry-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(20)
        try:
            yield driver
        finally:
            driver.quit()


def replaced(error: WebDriverException) -> bool:
    """Whether ``error`` says the element found was swapped out by the page's live refresh.

    Chromium reports it either as a stale element or, when the swap lands between the lookup
    and the read, as an inspector error about a node outside the document.
    """
    if isinstance(error, StaleElementReferenceException):
        return True
    return "does not belong to the document" in (error.msg or "")


def text(driver: webdriver.Chrome, by: str, value: str) -> str:
    """The text of an element that a live refresh may replace between finding and reading."""
    for _ in range(5):
        try:
            return str(driver.find_element(by, value).text)
        except WebDriverException as error:
            if not replaced(error):
                raise
    raise AssertionError(f"{value!r} kept being replaced by the page's refresh")


def wait_until(driver: webdriver.Chrome, check: Callable[[webdriver.Chrome], object]) -> None:
    """Wait up to 20 s for ``check`` to hold (pages refresh themselves every second)."""

    def holds(d: webdriver.Chrome) -> object:
        try:
            return check(d)
        except NoSuchElementException:
            return False
        except WebDriverException as error:
            if replaced(error):
                return False
            raise

    WebDriverWait(driver, 20, poll_frequency=0.1).until(holds)


def alert_opened(driver: webdriver.Chrome) -> bool:
    """Whether a JavaScript alert is showing."""
    try:
        driver.switch_to.alert  # noqa: B018 - the lookup itself is the probe
    except NoAlertPresentException:
        return False
    return True


def click(driver: webdriver.Chrome, by: str, value: str) -> None:
    """Click an element that a live refresh may replace between finding and clicking."""
    for _ in range(5):
        try:
            driver.find_element(by, value).click()
        except WebDriverException as error:
            if not replaced(error):
                raise
            continue
        return
    raise AssertionError(f"{value!r} kept being replaced by the page's refresh")
