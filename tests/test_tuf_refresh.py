"""Online TUF metadata re-signed before it expires: what is due (pure, from the mirror tree), and
the scheduler over a real mirror with an injected clock (the store commits at the same clock).
The end-to-end proof, a real server and python-tuf's Updater at shifted clocks, is in
``test_tuf_refresh_e2e.py``."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from asfaload.errors import ConfigError
from asfaload.replication.replay import verify_repository
from asfaload.rules.tree import DictTree
from asfaload.server.config import ServerConfig
from asfaload.server.tuf_api import refresh_policy
from asfaload.store import Mirror
from asfaload.tuf import expiry, repo
from asfaload.tuf._api import Metadata, Timestamp
from asfaload.tuf.documents import Expirations, utc
from asfaload.tuf.expiry import RefreshPolicy
from asfaload.tuf.online import OnlineKeyring
from asfaload.tuf.refresher import OnlineRefresher
from asfaload.tuf.service import TufService
from tests.support.tuf import NOW, REF, apply, key, make_root, signed_doc

H = 3600
DAY = 86400
EXP = Expirations(root=365, targets=90, snapshot=7, timestamp=1)
POLICY = RefreshPolicy(margin=6 * H, interval=DAY)


# --- what is due, from the tree -------------------------------------------------------------------
@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> OnlineKeyring:
    r = OnlineKeyring(tmp_path_factory.mktemp("private"))
    r.ensure()
    return r


@pytest.fixture(scope="module")
def tree(ring: OnlineKeyring) -> DictTree:
    signers = [key()]
    root = make_root(1, signers, 1, ring.ensure())
    out = repo.bootstrap(DictTree(), NOW, REF, signed_doc(root, signers), EXP, ring.signers())
    return apply(DictTree(), out.change)


def test_due_roles_follow_the_published_expiry(tree):
    # timestamp: 1 day, due 6 h before; snapshot: 7 days; targets: 90 days.
    assert expiry.due_roles(tree, REF, EXP, POLICY, NOW + 18 * H - 1) == []
    assert expiry.due_roles(tree, REF, EXP, POLICY, NOW + 18 * H) == ["timestamp"]
    assert expiry.due_roles(tree, REF, EXP, POLICY, NOW + 7 * DAY - 6 * H) == [
        "snapshot",
        "timestamp",
    ]
    assert expiry.due_roles(tree, REF, EXP, POLICY, NOW + 90 * DAY - 6 * H) == list(
        ("targets", "snapshot", "timestamp")
    )
    assert expiry.next_refresh(tree, REF, EXP, POLICY) == NOW + 18 * H


def test_a_margin_longer_than_half_the_lifetime_is_capped(tree):
    wide = RefreshPolicy(margin=3 * DAY, interval=60)
    # Half of the timestamp's day, half of the snapshot's week: never due again right away.
    assert expiry.due_times(tree, REF, EXP, wide) == {
        "targets": NOW + 87 * DAY,
        "snapshot": NOW + 7 * DAY - 3 * DAY,
        "timestamp": NOW + 12 * H,
    }


def test_expiries_show_every_role_and_when_it_is_re_signed(tree):
    rows = {r.role: r for r in expiry.expiries(tree, REF, EXP, POLICY)}
    assert list(rows) == ["root", "targets", "snapshot", "timestamp"]
    assert {r: (rows[r].version, rows[r].expires) for r in rows} == {
        "root": (1, NOW + 365 * DAY),
        "targets": (1, NOW + 90 * DAY),
        "snapshot": (1, NOW + 7 * DAY),
        "timestamp": (1, NOW + DAY),
    }
    assert rows["root"].refresh_at is None  # signed offline by its key holders
    assert rows["targets"].refresh_at == NOW + 90 * DAY - 6 * H
    # Any refresh re-signs snapshot and timestamp together, so both are due with the first.
    assert rows["snapshot"].refresh_at == rows["timestamp"].refresh_at == NOW + 18 * H
    shown = rows["timestamp"].to_dict(NOW + DAY)
    assert shown == {
        "role": "timestamp",
        "version": 1,
        "expires": "2026-01-02T00:00:00Z",
        "expired": True,
        "online": True,
        "refresh_at": "2026-01-01T18:00:00Z",
    }
    off = expiry.expiries(tree, REF, EXP, None)
    assert [r.refresh_at for r in off] == [None] * 4


def test_apps_lists_bootstrapped_apps_only(tree):
    files = tree.files()
    files["tuf/bob/draft-only/root.json.pending"] = b"{}"
    assert list(expiry.apps(DictTree(files))) == [REF]
    assert list(expiry.apps(DictTree())) == []


def test_policy_and_config_validation():
    with pytest.raises(ValueError):
        RefreshPolicy(margin=0, interval=60)
    with pytest.raises(ValueError):
        RefreshPolicy(margin=60, interval=-1)
    assert not RefreshPolicy(margin=60, interval=0).enabled
    default = ServerConfig()
    assert (default.tuf_refresh_margin, default.tuf_refresh_interval) == (6 * H, 300)
    env = {"ASFALOAD_TUF_REFRESH_MARGIN": "7200", "ASFALOAD_TUF_REFRESH_INTERVAL": "0"}
    loaded = ServerConfig.load(env=env)
    assert (loaded.tuf_refresh_margin, loaded.tuf_refresh_interval) == (7200, 0)
    for bad in ({"ASFALOAD_TUF_REFRESH_MARGIN": "0"}, {"ASFALOAD_TUF_REFRESH_INTERVAL": "-5"}):
        with pytest.raises(ConfigError):
            ServerConfig.load(env=bad)
    # A read-only mirror, or an interval of 0, never re-signs.
    assert refresh_policy(default) == RefreshPolicy(margin=6 * H, interval=300)
    assert refresh_policy(ServerConfig(read_only=True)) is None
    assert refresh_policy(loaded) is None


# --- the scheduler over a real mirror -------------------------------------------------------------
class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Repo:
    """A data dir: the mirror (committing at ``clock``), ``private/`` and one bootstrapped app."""

    def __init__(self, base: Path, clock: Clock) -> None:
        self.clock = clock
        self.private = base / "private"
        self.mirror = Mirror.init(str(base / "mirror.git"), clock=clock)
        self.service = TufService(self.mirror, self.private)
        online = self.service.keyring.ensure()
        signers = [key()]
        root = make_root(1, signers, 1, online, now=clock.now)
        self.service.bootstrap(REF, signed_doc(root, signers), EXP)

    def refresher(self, **kw: Any) -> OnlineRefresher:
        return OnlineRefresher(self.mirror, self.private, POLICY, clock=self.clock, **kw)

    def timestamp(self) -> Timestamp:
        raw = self.mirror.view().read(REF.timestamp)
        assert raw is not None
        return Metadata[Timestamp].from_bytes(raw).signed

    def commits(self) -> int:
        return sum(1 for _ in self.mirror.repo.walk(self.mirror.head()))


@pytest.fixture
def data(tmp_path: Path):
    r = Repo(tmp_path, Clock(NOW))
    try:
        yield r
    finally:
        r.mirror.close()


def test_the_scheduler_re_signs_once_when_due_and_a_restart_finds_it_done(data):
    first = data.refresher()
    data.clock.now = NOW + 17 * H
    commits = data.commits()
    # Not due yet: nothing written, and it sleeps until the timestamp falls due.
    assert first.run_once() == 1 * H
    assert data.commits() == commits and first.active

    data.clock.now = NOW + 20 * H
    first.run_once()
    assert data.commits() == commits + 1
    ts = data.timestamp()
    assert ts.version == 2
    assert ts.expires == utc(NOW + 20 * H + DAY)  # signed at the commit time
    assert repo.latest_version(data.mirror.view(), REF, "snapshot") == 2
    assert repo.latest_version(data.mirror.view(), REF, "targets") == 1  # not due

    # Looking again at the same time writes nothing; neither does a new process (a restart):
    # what is due is read from the mirror, not remembered.
    first.run_once()
    first.stop()
    again = data.refresher()
    assert again.run_once() == (NOW + 20 * H + 18 * H) - data.clock.now
    assert data.commits() == commits + 1
    again.stop()
    # The scheduled commit passes the replay every mirror runs (the TUF commit check).
    assert verify_repository(data.mirror.path).ok


def test_one_process_re_signs_others_wait_for_the_lock(data):
    a, b = data.refresher(), data.refresher()
    a.run_once()
    b.run_once()
    assert a.active and not b.active
    data.clock.now = NOW + 20 * H
    commits = data.commits()
    b.run_once()
    assert data.commits() == commits  # b never writes while a holds the lock
    a.run_once()
    assert data.commits() == commits + 1
    a.stop()  # the process that held it exits: the next one takes over
    data.clock.now = NOW + 20 * H + 18 * H
    b.run_once()
    assert b.active and data.commits() == commits + 2
    b.stop()


def test_a_refresh_already_made_elsewhere_is_not_made_twice(data):
    data.clock.now = NOW + 20 * H
    assert data.service.refresh_due(REF, POLICY) == ["snapshot", "timestamp"]
    commits = data.commits()
    assert data.service.refresh_due(REF, POLICY) == []
    assert data.commits() == commits


def test_failures_are_logged_and_retried_never_raised(data, caplog):
    log = logging.getLogger("tests.tuf_refresh")
    refresher = data.refresher(retry=60, log=log)
    keys_dir = data.private / "tuf" / "online-keys"
    hidden = data.private / "hidden-keys"
    shutil.move(keys_dir, hidden)  # the server lost its online keys
    data.clock.now = NOW + 20 * H
    commits = data.commits()
    with caplog.at_level(logging.INFO, logger="tests.tuf_refresh"):
        assert refresher.run_once() == 60
        assert data.commits() == commits
        failures = [r for r in caplog.records if "failed" in r.getMessage()]
        assert len(failures) == 1
        assert "alice/my-app" in failures[0].getMessage()
        assert "held by this server" in failures[0].getMessage()
        assert "retried in 60 s" in failures[0].getMessage()
        refresher.run_once()  # within the retry delay: not tried again
        assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1
        # Each further failure waits twice as long (up to an hour).
        data.clock.now += 60
        assert refresher.run_once() == 120
        data.clock.now += 120
        assert refresher.run_once() == 240
        failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert len(failures) == 3 and "retried in 240 s" in failures[-1]

        shutil.move(hidden, keys_dir)
        data.clock.now += 240
        refresher.run_once()
        assert data.commits() == commits + 1 and data.timestamp().version == 2
        assert any("re-signed snapshot, timestamp" in r.getMessage() for r in caplog.records)
    refresher.stop()


def test_the_thread_refreshes_on_its_own_and_stops(data):
    data.clock.now = NOW + 20 * H
    refresher = data.refresher().start()
    try:
        end = time.monotonic() + 60
        while data.timestamp().version < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert data.timestamp().version == 2
    finally:
        refresher.stop()
    assert not refresher.active
