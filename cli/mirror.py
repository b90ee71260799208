"""``asfaload mirror``: create a mirror repository, replay its history through the rules, and
sync a read-only mirror from its primary (verified before main moves)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from asfaload.errors import AsfaloadError, StoreError
from asfaload.layout import DEFAULT_DATA_DIR
from asfaload.layout import MIRROR_REPO_DIR as MIRROR_DIR

from ._common import DATA_DIR_ENV, dumps_compact, json_option


def _repo_path(target: Path | None, data_dir: Path | None, repo: Path | None) -> Path:
    """The bare repository to act on: ``--repo``, ``--data-dir``/mirror.git, or DIR (a repo or
    a data dir), else the default data dir."""
    given = [x for x in (target, data_dir, repo) if x is not None]
    if len(given) > 1:
        raise click.UsageError("Give only one of DIR, --data-dir and --repo.")
    if repo is not None:
        return repo
    if target is not None:
        inner = target / MIRROR_DIR
        return inner if inner.is_dir() else target
    base = (
        data_dir if data_dir is not None else Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    )
    return base / MIRROR_DIR


@click.group("mirror")
def mirror_group() -> None:
    """Manage and check the git mirror repository.

    \b
    Examples:
      asfaload mirror verify --data-dir /srv/asfaload-data
      asfaload mirror sync --from https://asfaload.example/mirror.git --data-dir /srv/ro-data
    """


@mirror_group.command("init")
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=None
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Create DATA_DIR/{MIRROR_DIR} (env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR}) "
    "when no DIRECTORY is given.",
)
@json_option
def init_command(directory: Path | None, data_dir: Path | None, json_output: bool) -> None:
    """Create a bare mirror repository (branch main, hooks, config) in DIRECTORY, or in the
    data dir's mirror.git (`asfaload serve` also creates it on first start).

    \b
    Examples:
      asfaload mirror init /srv/git/mirror.git
      asfaload mirror init --data-dir /srv/asfaload-data --json
    """
    import pygit2

    from asfaload.store import Mirror

    if directory is not None and data_dir is not None:
        raise click.UsageError("Give only one of DIRECTORY and --data-dir.")
    path = directory if directory is not None else _repo_path(None, data_dir, None)
    try:
        Mirror.init(str(path)).close()
    except (AsfaloadError, pygit2.GitError, ValueError) as exc:
        # pygit2 says "directory exists" (a ValueError) when a parent is a file.
        raise click.ClickException(f"Cannot create a mirror at {path}: {exc}") from exc
    if json_output:
        click.echo(dumps_compact({"repo": str(path)}))
    else:
        click.echo(f"Initialised mirror in {path}")


@mirror_group.command("install-hooks")
@click.argument("repo", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--python",
    "python",
    default=None,
    metavar="PATH",
    help="Interpreter the hooks run (default: this one, which has asfaload installed).",
)
@json_option
def install_hooks_command(repo: Path, python: str | None, json_output: bool) -> None:
    """Install or refresh asfaload's hooks in an existing bare repository REPO.

    The hooks record the interpreter's absolute path, so they run under any git server's
    environment (git daemon, ssh, a forge's hook runner). Where the host keeps per-kind hook
    directories (Gitea/Forgejo hooks/pre-receive.d, GitLab custom_hooks/pre-receive.d), the
    hook goes in them beside the host's own.

    \b
    Examples:
      asfaload mirror install-hooks /srv/git/mirror.git
      asfaload mirror install-hooks /var/lib/gitea/repos/acme/mirror.git --json
    """
    import pygit2

    from asfaload.store import install_hooks

    try:
        if not pygit2.Repository(str(repo)).is_bare:
            raise click.ClickException(f"Not a bare repository: {repo}")
    except pygit2.GitError as exc:
        raise click.ClickException(f"Not a git repository: {repo}") from exc
    written = install_hooks(str(repo), python)
    if json_output:
        click.echo(dumps_compact({"repo": str(repo), "hooks": written}))
    else:
        for rel in written:
            click.echo(f"Installed {rel}")


def _local_target(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    from asfaload.replication.sync import is_url

    if value is None:
        return None
    if is_url(value):
        raise click.BadParameter(
            "takes a local mirror; to check one served at a URL, sync it "
            "(asfaload mirror sync --from URL --data-dir DIR replays every commit)",
            ctx=ctx,
            param=param,
        )
    path = Path(value)
    if not path.is_dir():
        raise click.BadParameter(f"no such directory: {value}", ctx=ctx, param=param)
    return path


@mirror_group.command("verify")
@click.argument("target", required=False, callback=_local_target)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help=f"Server data dir holding {MIRROR_DIR} (env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR}).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Path of the bare mirror repository itself.",
)
@json_option
def verify_command(
    target: Path | None, data_dir: Path | None, repo: Path | None, json_output: bool
) -> None:
    """Replay the whole history of main through the rules engine.

    TARGET is a local mirror: a server data dir (holding mirror.git) or the repository itself
    (same as --data-dir or --repo). To check a mirror served over HTTP, sync it first (`mirror
    sync --from URL` replays every new commit the same way).

    Every commit must be exactly what the rules derive from its parent. Reports the first bad
    commit and exits 1 if there is one. The outcome is recorded for `mirror status`.

    \b
    Examples:
      asfaload mirror verify /srv/asfaload-data
      asfaload mirror verify --data-dir /srv/asfaload-data
      asfaload mirror verify --repo /srv/git/mirror.git --json
    """
    from asfaload.replication.replay import verify_repository
    from asfaload.replication.status import record_error, record_verified

    path = _repo_path(target, data_dir, repo)
    if not path.is_dir():
        raise click.ClickException(f"No mirror repository at {path}")
    try:
        report = verify_repository(str(path))
    except AsfaloadError as exc:
        raise click.ClickException(f"{exc}: {path}") from exc
    bad = report.bad
    where = ""
    if bad is None:
        record_verified(str(path), report.head, "verify")
    else:
        record_error(str(path), f"commit {bad.commit or '(none)'}: {bad.reason}", "verify")
        where = f"commit {bad.commit} (#{bad.position}, {bad.message!r})" if bad.commit else "main"
    if json_output:
        click.echo(dumps_compact(report.to_dict()))
        if bad is not None:
            # The report (stdout) names the commit; the error object (stderr) says it failed,
            # as every command's --json does.
            click.echo(dumps_compact({"error": f"{where}: {bad.reason}"}), err=True)
    elif bad is None:
        click.echo(
            f"OK: {report.checked} commits of main replayed, each derived by the rules "
            f"(head {report.head})"
        )
    else:
        click.echo(f"FAILED: {where}: {bad.reason}")
        click.echo(f"{report.checked} commits before it verified.")
    if report.bad is not None:
        raise SystemExit(1)


@mirror_group.command("sync")
@click.option(
    "--from",
    "source",
    default=None,
    metavar="URL-OR-PATH",
    help="The primary mirror: a git URL (http, https, file, ssh, git) or a local path. "
    "Recorded on first use; later syncs default to it.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Data dir of the read-only server, holding {MIRROR_DIR} "
    f"(env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR}).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Path of the local bare mirror repository itself.",
)
@click.option(
    "--watch",
    "interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Keep syncing every SECONDS; failures are reported and retried (Ctrl-C stops).",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Emit the outcome as one JSON object (with --watch: one object per line, per outcome); "
    "failures on stderr.",
)
def sync_command(
    source: str | None,
    data_dir: Path | None,
    repo: Path | None,
    interval: float | None,
    json_output: bool,
) -> None:
    """Pull the primary's main into a read-only mirror, verifying every new commit first.

    New commits are fetched into a quarantine ref and replayed through the rules engine; main
    fast-forwards only when all of them pass. A commit the rules do not derive, or a primary
    whose history was rewritten or rolled back, is refused: main stays unchanged, one line
    names the first bad commit, exit 1. Creates the mirror (the primary's history, root
    included) on first use. The primary may itself be a read-only mirror (its /mirror.git), so
    mirrors chain. Each outcome is recorded for `mirror status`.

    With --watch, syncs every SECONDS until interrupted and prints only changes and errors
    (nothing while up to date). With --json, each outcome is one JSON object per line: results
    on stdout, failures on stderr.

    \b
    Examples:
      asfaload mirror sync --from https://asfaload.example/mirror.git --data-dir /srv/ro-data
      asfaload mirror sync --data-dir /srv/ro-data --json
      asfaload mirror sync --data-dir /srv/ro-data --watch 60
    """
    from asfaload.replication import sync as mirror_sync

    path = _repo_path(None, data_dir, repo)
    watching = interval is not None

    def report(result: mirror_sync.SyncResult) -> None:
        if watching and result.status == "up-to-date":
            return
        if json_output:
            click.echo(dumps_compact(result.to_dict()))
        elif result.status == "up-to-date":
            click.echo(f"Up to date: main at {result.new}")
        elif result.status == "created":
            click.echo(
                f"Created read-only mirror {path} from {result.source}: "
                f"{result.commits} commits verified, main at {result.new}"
            )
        else:
            click.echo(
                f"Synced {result.commits} new commit(s) from {result.source}, each verified: "
                f"main {result.old} -> {result.new}"
            )

    def failure(exc: AsfaloadError) -> None:
        if json_output:
            click.echo(dumps_compact(_failure_dict(exc)), err=True)
        else:
            click.echo(_failure_line(exc), err=True)

    if watching:
        assert interval is not None
        try:
            mirror_sync.watch(str(path), source, interval, report, failure)
        except KeyboardInterrupt:
            return
        except AsfaloadError as exc:
            failure(exc)
            raise SystemExit(1) from exc
        return
    try:
        result = mirror_sync.sync(str(path), source)
    except AsfaloadError as exc:
        failure(exc)
        raise SystemExit(1) from exc
    report(result)


def _failure_line(exc: AsfaloadError) -> str:
    """One line for a failed sync: the first bad commit and where main stayed, or the error."""
    from asfaload.errors import one_line
    from asfaload.replication.sync import RejectedHistoryError

    if isinstance(exc, RejectedHistoryError):
        bad = exc.bad
        where = f"commit {bad.commit}" if bad.commit else "the upstream's main"
        if bad.message:
            where += f" ({one_line(bad.message)!r})"
        kept = exc.local or "(none: nothing synced yet)"
        return f"REFUSED: {where}: {one_line(bad.reason)}; main unchanged at {kept}"
    return f"Error: {one_line(str(exc))}"


def _failure_dict(exc: AsfaloadError) -> dict[str, object]:
    from asfaload.errors import one_line
    from asfaload.replication.sync import HistoryRewriteError, RejectedHistoryError

    # An error object as every command's: "error" first, then what a script needs to act on.
    out: dict[str, object] = {"error": one_line(str(exc))}
    if isinstance(exc, RejectedHistoryError):
        out["status"] = "rewrite-refused" if isinstance(exc, HistoryRewriteError) else "refused"
        out["main"] = exc.local
        out["fetched"] = exc.fetched
        out["first_bad_commit"] = exc.bad.to_dict()
    else:
        out["status"] = "failed"
    return out


@mirror_group.command("status")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Server data dir holding {MIRROR_DIR} (env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR}).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Path of the bare mirror repository itself.",
)
@json_option
def status_command(data_dir: Path | None, repo: Path | None, json_output: bool) -> None:
    """Show a mirror's tip, its primary and the outcome of its last sync or verify.

    Fields: tip (main's commit id), upstream (the primary a read-only mirror syncs from; null
    on a primary), read_only, commits (on main), last_verified (when, by which command and at
    which tip the last successful `mirror sync` or `mirror verify` found main valid; null if
    never) and last_error (the last failed sync or verify and when; null if none: a later
    success does not erase it, compare the times).

    \b
    Examples:
      asfaload mirror status --data-dir /srv/ro-data
      asfaload mirror status --repo /srv/git/mirror.git --json
    """
    from asfaload.replication.status import mirror_status

    path = _repo_path(None, data_dir, repo)
    try:
        if not path.is_dir():
            raise StoreError(f"No mirror repository at {path}")
        status = mirror_status(str(path))
    except AsfaloadError as exc:
        if json_output:
            click.echo(dumps_compact({"error": str(exc)}), err=True)
        else:
            click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from exc
    if json_output:
        click.echo(dumps_compact(status))
        return
    verified, error = status["last_verified"], status["last_error"]
    lines = {
        "repo": status["repo"],
        "tip": status["tip"] or "(none: no commits)",
        "upstream": status["upstream"] or "(none: a primary)",
        "read_only": "yes" if status["read_only"] else "no",
        "commits": str(status["commits"]),
        "last_verified": (
            f"{verified['at']} by {verified['by']}, main at {verified['tip']}"
            if verified
            else "never"
        ),
        "last_error": f"{error['at']} by {error['by']}: {error['message']}" if error else "none",
    }
    for key, value in lines.items():
        click.echo(f"{key}: {value}")


def register(group: click.Group) -> None:
    group.add_command(mirror_group)
