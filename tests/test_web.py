"""The web pages (``GET /``, ``GET /projects/<id>``) on a real server, in a real headless Chromium.

The mirror is filled with the demo of ``examples/webpage.py`` (a signers update, releases
complete, pending and revoked) and with a project whose names are hostile: its id, a release
tag and a published file name carry markup, a source URL is a ``javascript:`` URL. The page must
show every state exactly as ``GET /v1/signatures/…`` does, load without a console message, show
the hostile text as text, and run no script at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from asfaload import layout
from asfaload.devtools.server import ServerProcess
from asfaload.devtools.webpage import (
    Demo,
    chromium,
    metadata,
    register_release,
    screenshot,
    seed_demo,
    sign,
    signers_file,
)
from asfaload.model.index import PublishedFile
from asfaload.rules.ops import Register
from asfaload.store import Mirror

HOSTILE_PROJECT = 'https/files.example.org/443/"><img src=x onerror="document.title=1">'
HOSTILE_TAG = '<script>document.title="pwned"</script>'
HOSTILE_NAME = '"><img src=x onerror="document.title=2">.tar.gz'
HOSTILE_SOURCE = "javascript:document.title=3"
CSP = "default-src 'none'; style-src 'self'; img-src 'self'"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Demo, str]]:
    server = ServerProcess(tmp_path_factory.mktemp("web") / "data").start()
    try:
        with Mirror.open(str(server.data_dir / layout.MIRROR_REPO_DIR)) as mirror:
            demo = seed_demo(mirror)
            hostile = _seed_hostile(mirror, demo)
        yield server, demo, hostile
    finally:
        server.stop()


def _seed_hostile(mirror: Mirror, demo: Demo) -> str:
    """A file-server project whose id, tag, file name and source are markup; returns the
    release index path."""
    from asfaload.devtools.webpage import metadata
    from asfaload.rules.ops import Register

    alice = demo.keys["alice"]
    raw = signers_file([alice], 1, admin=[alice], timestamp=1_700_000_000)
    url = "https://files.example.org/x/asfaload.signers.json"
    mirror.submit(
        Register(HOSTILE_PROJECT, raw, metadata(raw, url, 1_700_000_000), alice.public_key)
    )
    sign(mirror, layout.signers_file_path(HOSTILE_PROJECT, pending=True), alice)
    files = [PublishedFile(HOSTILE_NAME, "Sha256", HOSTILE_SOURCE, "ab" * 32)]
    return register_release(mirror, HOSTILE_PROJECT, HOSTILE_TAG, files, alice)


def _api_status(server: ServerProcess, path: str) -> str:
    r = requests.get(server.url("/v1/signatures/" + quote(path, safe="/")), timeout=30)
    assert r.status_code == 200, r.text
    status: str = r.json()["status"]
    return status


def _page_url(server: ServerProcess, project: str) -> str:
    return server.url("/projects/" + quote(project, safe="/"))


def _console(driver: WebDriver) -> list[dict]:
    entries: list[dict] = driver.get_log("browser")
    return entries


# --- plain HTTP: headers, listing, errors ------------------------------------------------------
def test_pages_carry_a_strict_csp_and_nosniff(site) -> None:
    server, demo, _ = site
    for target in ("/", "/projects/" + demo.project, "/static/web/web.css", "/projects/nope"):
        r = requests.get(server.url(target), timeout=30)
        assert r.headers["Content-Security-Policy"].startswith(CSP), target
        assert r.headers["X-Content-Type-Options"] == "nosniff", target
    assert (
        requests.get(server.url("/static/web/web.css"), timeout=30)
        .headers["Content-Type"]
        .startswith("text/css")
    )


def test_index_lists_every_project_escaped(site) -> None:
    server, demo, _ = site
    r = requests.get(server.url("/"), timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert f'href="/projects/{demo.project}"' in r.text
    assert "&#34;&gt;&lt;img src=x onerror=&#34;document.title=1&#34;&gt;" in r.text
    assert "<img" not in r.text


def test_index_follows_new_projects(site) -> None:
    # The listing is memoised by git tree id: a commit that adds a project must show it.
    server, demo, _ = site
    before = requests.get(server.url("/"), timeout=30).text
    extra = "https/gitlab.com/443/acme/group/other"
    assert extra not in before
    alice = demo.keys["alice"]
    raw = signers_file([alice], 1, admin=[alice], timestamp=1_700_000_000)
    url = "https://gitlab.com/acme/group/other/-/raw/main/asfaload.signers.json"
    with Mirror.open(str(server.data_dir / layout.MIRROR_REPO_DIR)) as mirror:
        mirror.submit(Register(extra, raw, metadata(raw, url, 1_700_000_000), alice.public_key))
    after = requests.get(server.url("/"), timeout=30).text
    assert re.findall(r'<a href="/projects/([^"]+)">', after) == sorted(
        [quote(p, safe="/") for p in (demo.project, extra, HOSTILE_PROJECT)]
    )


def test_errors_are_html_on_pages_and_json_on_the_api(site) -> None:
    server, demo, _ = site
    for target in ("/projects/https/github.com/443/nobody/here", "/projects/a/../b"):
        r = requests.get(server.url(target), timeout=30)
        assert r.status_code in (400, 404) and r.headers["Content-Type"].startswith("text/html")
        assert "<h1>Error" in r.text
    # A path inside a project is not a project.
    inner = requests.get(server.url("/projects/" + demo.project + "/releases"), timeout=30)
    assert inner.status_code == 404 and "No such project" in inner.text
    api = requests.get(server.url("/v1/signatures/" + demo.project + "/nothing"), timeout=30)
    assert api.status_code == 404 and api.json() == {"error": api.json()["error"]}


def test_project_page_links_every_file_to_the_raw_mirror(site) -> None:
    server, demo, _ = site
    html = requests.get(_page_url(server, demo.project), timeout=30).text
    links = set(re.findall(r'href="(/v1/files/[^"]+)"', html))
    for path in (demo.complete, demo.pending, demo.revoked, layout.history_path(demo.project)):
        assert "/v1/files/" + path in links
    for link in links:
        assert requests.get(server.url(link), timeout=30).status_code == 200, link


# --- the browser ---------------------------------------------------------------------------------
def test_project_page_shows_the_api_states_without_console_errors(site) -> None:
    server, demo, _ = site
    with chromium() as driver:
        assert isinstance(driver, WebDriver)
        driver.get(server.url("/"))
        link = driver.find_element(By.LINK_TEXT, demo.project)
        link.click()
        assert driver.current_url == _page_url(server, demo.project)
        cards = driver.find_elements(By.CSS_SELECTOR, ".release[data-path]")
        shown = {c.get_attribute("data-path"): c.get_attribute("data-status") for c in cards}
        assert shown == {
            demo.complete: "complete",
            demo.pending: "pending",
            demo.revoked: "revoked",
        }
        for path, status in shown.items():
            assert _api_status(server, path) == status
        # Who is still needed for the pending release: exactly the API's missing keys.
        pending = next(c for c in cards if c.get_attribute("data-path") == demo.pending)
        assert "1 more needed" in pending.text.lower()  # the badge is styled upper-case
        for name in ("bob", "carol"):
            assert demo.keys[name].public_key.key_id in pending.text
        revoked = next(c for c in cards if c.get_attribute("data-path") == demo.revoked)
        assert "build host compromised" in revoked.text
        assert demo.keys["dave"].public_key.key_id in revoked.text
        history = driver.find_element(By.ID, "history").text
        assert "replaced" in history
        # The stylesheet applied (a CSP refusal would leave the badge unstyled).
        badge = driver.find_element(By.CSS_SELECTOR, ".state-complete")
        assert badge.value_of_css_property("text-transform") == "uppercase"
        assert _console(driver) == []
        # Readable on a phone: at a narrow window nothing (keys, hashes, URLs) widens the page.
        driver.set_window_size(400, 900)
        wide, inner = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert wide <= inner, (wide, inner)


def test_hostile_names_are_shown_as_text_and_no_script_runs(site) -> None:
    server, _, index = site
    with chromium() as driver:
        assert isinstance(driver, WebDriver)
        driver.get(server.url("/"))
        driver.find_element(By.PARTIAL_LINK_TEXT, "onerror").click()
        title = driver.title
        assert title.startswith(HOSTILE_PROJECT)  # as text, and no handler changed it
        body = driver.find_element(By.TAG_NAME, "body").text
        assert HOSTILE_TAG in body and HOSTILE_NAME in body and HOSTILE_SOURCE in body
        assert driver.find_elements(By.CSS_SELECTOR, "main img, main script") == []
        # The javascript: source is not a link; every link is ours or http(s).
        for a in driver.find_elements(By.TAG_NAME, "a"):
            href = a.get_attribute("href") or ""
            assert href.startswith((server.base_url, "https://")), href
        card = driver.find_element(By.CSS_SELECTOR, ".release[data-path]")
        assert card.get_attribute("data-path") == index
        assert card.get_attribute("data-status") == _api_status(server, index) == "pending"
        assert _console(driver) == []


def test_read_only_mirror_serves_the_same_page(site, tmp_path: Path) -> None:
    server, demo, _ = site
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(server.data_dir / layout.MIRROR_REPO_DIR, data / layout.MIRROR_REPO_DIR)
    mirror = ServerProcess(data, env={"ASFALOAD_READ_ONLY": "1"}).start()
    try:
        with chromium() as driver:
            assert isinstance(driver, WebDriver)
            driver.get(_page_url(mirror, demo.project))
            assert "read-only mirror" in driver.find_element(By.TAG_NAME, "header").text.lower()
            cards = driver.find_elements(By.CSS_SELECTOR, ".release[data-path]")
            assert {
                c.get_attribute("data-path"): c.get_attribute("data-status") for c in cards
            } == {p: _api_status(server, p) for p in (demo.complete, demo.pending, demo.revoked)}
            assert _console(driver) == []
            shot = tmp_path / "shot.png"
            screenshot(driver, _page_url(mirror, demo.project), shot)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        mirror.stop()
