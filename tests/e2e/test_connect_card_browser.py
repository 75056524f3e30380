"""The Connect Card in a real browser: headless Chromium (Debian's, via `make browser`) driven by Selenium
against the local stack, a sample API with bearer auth, and a tiny server standing in for the app that
asked for the card."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from local.sample_api import SampleApi, example_config
from tests.support.local_stack import ROOT, LocalStackProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BUILD = ROOT / "build"
TIMEOUT = 30


class Landing:
    """The app behind redirect_uri: records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        landing = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                landing.requests.append(self.path)
                body = b"<!doctype html><title>Back in the app</title><h1>Back in the app</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1})

    def __enter__(self) -> Landing:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        # `make test` installs them (`make browser`); a missing browser is a failure, not a skip.
        pytest.fail("headless Chromium is not installed: run `make browser`")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def wait_for(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def replaced(element: Any) -> bool:
    """Whether the page holding `element` has been replaced by another one."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.tag_name  # noqa: B018 (touching it is the check)
    except StaleElementReferenceException:
        return True
    return False


def screenshot(driver: Any, name: str) -> Path:
    BUILD.mkdir(exist_ok=True)
    path = BUILD / name
    driver.set_window_size(1280, 800)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(path))
    return path


def make_card(
    stack: LocalStackProcess, config: dict[str, Any], redirect_uri: str, schema: str, run_tests: bool = True
) -> tuple[str, str]:
    api = stack.session()
    body = {
        "group_id": stack.group_id,
        "service": "rest_api",
        "config": {**config, "schema": schema},
        "run_setup_tests": run_tests,
    }
    created = api.post(f"{stack.url}/v1/connections", json=body, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    connection_id = created.json()["data"]["id"]
    card = api.post(
        f"{stack.url}/v1/connections/{connection_id}/connect-card",
        json={"connect_card_config": {"redirect_uri": redirect_uri, "hide_setup_guide": False}},
        timeout=TIMEOUT,
    )
    assert card.status_code == 200, card.text
    return connection_id, card.json()["data"]["connect_card"]["uri"]


def test_fixing_the_token_in_the_connect_card_connects_and_returns(
    stack: LocalStackProcess, browser: Any
) -> None:
    with SampleApi(rows=10, token="right") as source, Landing() as landing:
        config = example_config(source)
        config["auth"] = {"type": "bearer", "token": "wrong"}
        connection_id, uri = make_card(stack, config, f"{landing.url}/back?from=card", "browser_flow")
        api = stack.session()
        before = api.get(f"{stack.url}/v1/connections/{connection_id}", timeout=TIMEOUT).json()["data"]
        assert before["status"]["setup_state"] == "incomplete"  # the wrong token failed the tests on create
        assert uri.startswith(stack.url + "/connect-card/setup?")

        browser.get(uri)
        assert "Set up" in browser.find_element(By.TAG_NAME, "h1").text
        token_field = browser.find_element(By.NAME, "auth~bearer.token")
        # The chosen auth type's fields are shown (by CSS), the others hidden.
        assert token_field.is_displayed()
        assert not browser.find_element(By.NAME, "auth~basic.username").is_displayed()
        assert token_field.get_attribute("value") == ""
        assert "wrong" not in browser.page_source
        assert browser.find_element(By.NAME, "base_url").get_attribute("value") == source.url
        form_shot = screenshot(browser, "connect-card-form.png")

        token_field.send_keys("right")
        form_page = browser.find_element(By.TAG_NAME, "html")
        browser.find_element(By.ID, "save").click()
        # The form page shows the create's failed results too: wait for the page the POST answered.
        wait_for(lambda: replaced(form_page), "the page after Save & test")
        wait_for(lambda: browser.find_elements(By.ID, "setup-tests"), "the setup test results")
        assert "is connected" in browser.find_element(By.TAG_NAME, "h1").text
        badges = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#setup-tests .badge")]
        assert badges and set(badges) <= {"PASSED", "WARNING", "SKIPPED"}, badges
        results_shot = screenshot(browser, "connect-card-results.png")

        # The page would go on to redirect_uri by itself (after 600 s here); Continue goes at once.
        browser.find_element(By.ID, "continue").click()
        wait_for(lambda: landing.requests, "the redirect to redirect_uri", timeout=15)
        landed = urlsplit(landing.requests[0])
        assert landed.path == "/back"
        assert parse_qs(landed.query) == {"from": ["card"], "id": [connection_id]}
        wait_for(lambda: browser.current_url.startswith(landing.url), "the browser to land")

    after = api.get(f"{stack.url}/v1/connections/{connection_id}", timeout=TIMEOUT).json()["data"]
    assert after["status"]["setup_state"] == "connected"
    assert after["config"]["auth"] == {"type": "bearer", "token": "******"}
    assert [t["status"] for t in after["setup_tests"]] and "right" not in json.dumps(after)
    assert form_shot.stat().st_size > 10_000 and results_shot.stat().st_size > 10_000


def _expired_token(stack: LocalStackProcess, token: str) -> str:
    """The same claims, expired yesterday, signed with the stack's own key (read from its moto)."""
    import base64
    import hashlib
    import hmac

    import boto3

    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    secret_id = next(
        s["Name"] for s in secrets.list_secrets()["SecretList"] if "ConnectCardSecret" in s["Name"]
    )
    key = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])["signing_key"].encode()
    head, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["iat"], claims["exp"] = int(time.time()) - 2 * 86400, int(time.time()) - 86400
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def test_expired_and_tampered_links_show_the_error_page(stack: LocalStackProcess, browser: Any) -> None:
    config = {
        "base_url": "https://api.example.com",
        "tables": [{"name": "items", "path": "/items", "primary_key": ["id"]}],
    }
    connection_id, uri = make_card(
        stack, config, "https://app.example.com/done", "browser_errors", run_tests=False
    )
    token = parse_qs(urlsplit(uri).query)["auth"][0]
    head, payload, signature = token.split(".")
    flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]

    browser.get(uri.replace(token, f"{head}.{flipped}.{signature}"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "This setup link is not valid"
    assert not browser.find_elements(By.TAG_NAME, "form")
    screenshot(browser, "connect-card-error.png")

    browser.get(uri.replace(token, _expired_token(stack, token)))
    assert browser.find_element(By.TAG_NAME, "h1").text == "This setup link has expired"
    assert not browser.find_elements(By.TAG_NAME, "form")

    browser.get(f"{stack.url}/connect-card/setup")
    assert "no token" in browser.find_element(By.CSS_SELECTOR, ".message").text
    # Nothing was changed by any of it.
    after = stack.session().get(f"{stack.url}/v1/connections/{connection_id}", timeout=TIMEOUT).json()["data"]
    assert after["config"]["base_url"] == "https://api.example.com"
