"""The `aidraw` command: the whole system (`run`) or any single role, plus replay tools.

    aidraw run                      everything, embedded servers under AIDRAW_DATA_DIR
    aidraw migrate                  create every schema in PostgreSQL (run, projector and api need it)
    aidraw api                      the HTTP API (command + query routes)
    aidraw projector [NAME ...]     the projectors (all by default)
    aidraw runner                   a generation runner (AIDRAW_RUNNER_*, docs/tasks.md)
    aidraw rebuild PROJECTION       rebuild a read model from sequence 0, then swap it in
                                    (search_images: the Elasticsearch index, swapped by alias)
    aidraw audit AGGREGATE ID       an object's history from the event log
    aidraw user create [--admin] NAME EMAIL
                                    make an account (the first admin); the password comes from
                                    AIDRAW_ADMIN_PASSWORD or a prompt, never from an argument
    aidraw base register --name NAME --capability CAP --base-model SD1.5|SD2 [--trigger-words W]
                                    show a configured base model as a public, system-owned ckp
                                    model served by the runners of CAP (docs/generation.md)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from infra.logging import configure_logging
from infra.settings import Settings, SettingsError, ensure_data_dir

# The one-shot tools (audit, rebuild) give up on an unreachable NATS sooner than the services do.
TOOL_CONNECT_TIMEOUT_S = 4.0


def _api(settings: Settings) -> int:
    import uvicorn

    from aidraw.app import create_app
    from aidraw.endpoints import resolve

    ends = resolve(settings)
    app = create_app(settings, ends.nats_url, ends.database_url)
    # proxy_headers=False: uvicorn would take X-Forwarded-For from any loopback peer; infra/proxies.py decides.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10, proxy_headers=False)
    return 0


def _projector(settings: Settings, names: list[str]) -> int:
    from aidraw.endpoints import resolve
    from aidraw.image_tasks import run_image_tasks
    from aidraw.migrate import migrate_sync
    from aidraw.process_tasks import run_process_managers
    from aidraw.roles import PROJECTORS, projector_named, search_projectors, sink_of
    from events.store.bridge import NatsBridge
    from events.store.stream import ensure_stream
    from projectors.loop import ProjectionLoop, Target

    try:
        known = [*PROJECTORS, *search_projectors(settings)]
        chosen = [projector_named(n, known) for n in names] if names else known
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    ends = resolve(settings)
    bridge = NatsBridge(ends.nats_url)
    ensure_stream(bridge, settings.stream_name, settings.subject_prefix, settings.duplicate_window_s,
                  settings.stream_replicas)
    bridge.close()
    migrate_sync(ends.database_url)
    target = Target(ends.nats_url, settings.stream_name, ends.database_url, announce_prefix=settings.subject_prefix)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_soon() -> None:
            stop.set()
            # A supervisor's kill timeout, here: a part that cannot finish (its servers gone with a killed
            # `aidraw run`, a worker thread in a blocking call) must not keep the process alive.
            loop.call_later(SHUTDOWN_GRACE_S, _exit_now)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_soon)
        runners = [ProjectionLoop(p, target, batch_size=settings.projector_batch,
                                  sink=sink_of(p, ends.database_url)) for p in chosen]
        # Views, the blob reaper and the process manager run beside the full set only (not named projections).
        extra = [] if names else [run_image_tasks(settings, ends.nats_url, ends.database_url, stop),
                                  run_process_managers(settings, ends.nats_url, ends.database_url, stop)]
        await asyncio.gather(*(runner.run(stop) for runner in runners), *extra)

    asyncio.run(main())
    return 0


SHUTDOWN_GRACE_S = 15.0


def _exit_now() -> None:
    logging.getLogger("aidraw.projector").error(
        "still stopping %gs after the signal: exiting now (what was not committed is projected again)",
        SHUTDOWN_GRACE_S)
    os._exit(1)


def _migrate(settings: Settings) -> int:
    from aidraw.endpoints import resolve
    from aidraw.migrate import migrate_sync

    migrate_sync(resolve(settings).database_url)
    print("migrated: every schema exists.")
    return 0


def _rebuild(settings: Settings, name: str) -> int:
    from tqdm import tqdm

    from aidraw import search_rebuild
    from aidraw.endpoints import resolve
    from aidraw.roles import projector_named
    from events.store.bridge import NatsBridge
    from events.store.stream import stream_last_sequence
    from projectors.loop import Target
    from projectors.rebuild import rebuild

    try:
        projector = None if name == "search_images" else projector_named(name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    ends = resolve(settings)
    bridge = NatsBridge(ends.nats_url, connect_timeout=TOOL_CONNECT_TIMEOUT_S)
    end = stream_last_sequence(bridge, settings.stream_name)
    bridge.close()
    bar = tqdm(total=end, unit="ev", desc=f"rebuild {name}", unit_scale=True)

    def progress(position: int) -> None:
        bar.update(max(0, min(position, end) - bar.n))

    if projector is None:  # the Elasticsearch index: a new index, then the alias (docs/search.md)
        return search_rebuild.rebuild_index(settings, ends.database_url, ends.nats_url, end, progress)

    report = asyncio.run(rebuild(projector, Target(ends.nats_url, settings.stream_name, ends.database_url), end,
                                 progress))
    bar.close()
    if report.reshaped:
        print(f"{name}: rebuilt to sequence {report.position} in its new shape (changed tables: "
              f"{', '.join(report.reshaped)}) and swapped in.")
    elif not report.compared:
        print(f"{name}: rebuilt to sequence {report.position} and swapped in (the live copy was behind; not "
              "compared).")
    elif report.identical:
        print(f"{name}: rebuilt to sequence {report.position}; identical to the live copy; swapped in.")
    else:
        print(f"{name}: rebuilt to sequence {report.position}; DIFFERED from the live copy "
              f"(rows per table: {report.differences}); the rebuilt copy, made from the log, is now live.")
    if report.deferred_s:
        print(f"{name}: its deferred indexes were built in {report.deferred_s:.1f} s after the replay.")
    if name == "images":  # the search read model's check: which embedding recipe the rows carry
        print(search_rebuild.coverage(ends.database_url, settings.clip_model_path))
    return 0


def _audit(settings: Settings, aggregate: str, number: str) -> int:
    from aidraw.endpoints import resolve
    from events.ids import KINDS
    from events.store.bridge import NatsBridge
    from events.store.jetstream import JetStreamApplicationRecorder
    from query.filters import read_id
    from query.routes.audit import COLLECTIONS, history

    kind = COLLECTIONS.get(aggregate, aggregate)
    if kind not in KINDS:
        print(f"error: no kind of object named {aggregate!r}; use one of {', '.join(sorted(KINDS))}.",
              file=sys.stderr)
        return 2
    try:
        object_id = read_id(number)  # the HTTP API's rule: 1 to 2^53-1, plain digits
    except ValueError as exc:
        print(f"error: {exc}.", file=sys.stderr)
        return 2
    ends = resolve(settings)
    bridge = NatsBridge(ends.nats_url, connect_timeout=TOOL_CONNECT_TIMEOUT_S)
    recorder = JetStreamApplicationRecorder(bridge, settings.stream_name, settings.subject_prefix)
    events = history(recorder, settings.subject_prefix, kind, object_id)
    bridge.close()
    if not events:
        print(f"error: no {kind} with id {object_id} in the log.", file=sys.stderr)
        return 1
    for e in events:
        print(f"#{e.sequence:<8} v{e.version:<3} {e.timestamp.isoformat()}  {e.type}")
        for key, value in e.data.items():
            print(f"{'':14}{key}: {value}")
    return 0


def _read_password(settings: Settings) -> str | None:
    import getpass

    password = settings.admin_password
    if password:
        return password
    if not sys.stdin.isatty():
        print("error: set AIDRAW_ADMIN_PASSWORD or run this in a terminal to type the password.", file=sys.stderr)
        return None
    first = getpass.getpass("password: ")
    if first != getpass.getpass("password again: "):
        print("error: the two passwords differ.", file=sys.stderr)
        return None
    return first


def _user_create(settings: Settings, name: str, email: str, admin: bool) -> int:
    import psycopg

    from aidraw.endpoints import resolve
    from command.accounts import register_user
    from command.app import CommandApp
    from command.personal import PersonalData
    from infra.actor import ANONYMOUS
    from infra.errors import ServiceError
    from infra.keys import PostgresKeyStore

    ends = resolve(settings)  # before the password prompt: a system that is not running is said first
    try:
        psycopg.connect(ends.database_url, connect_timeout=int(TOOL_CONNECT_TIMEOUT_S)).close()
    except psycopg.OperationalError as exc:
        print(f"error: cannot reach PostgreSQL: {' '.join(str(exc).split())} Start the server, or set "
              "AIDRAW_DATABASE_URL to one that runs.", file=sys.stderr)
        return 1
    password = _read_password(settings)
    if password is None:
        return 2
    app = CommandApp(settings, ends.nats_url)
    keys = PostgresKeyStore(ends.database_url, max_size=2).open()
    try:
        user, _ = register_user(app, PersonalData(keys, settings.subject_prefix), ANONYMOUS, name, email, password,
                                role="admin" if admin else "user", trusted=True)
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        keys.close()
        app.close()
    print(f"created {user.role} {user.name} (id {user.id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aidraw", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="start the whole system")
    sub.add_parser("api", help="the HTTP API")
    sub.add_parser("migrate", help="create every schema in PostgreSQL")
    sub.add_parser("runner", help="a generation runner")
    proj = sub.add_parser("projector", help="run projectors")
    proj.add_argument("names", nargs="*")
    reb = sub.add_parser("rebuild", help="rebuild a read model from the log")
    reb.add_argument("projection")
    aud = sub.add_parser("audit", help="an object's history")
    aud.add_argument("aggregate")
    aud.add_argument("id")
    users = sub.add_parser("user", help="accounts").add_subparsers(dest="user_cmd", required=True)
    create = users.add_parser("create", help="make an account (--admin: an admin)")
    create.add_argument("--admin", action="store_true")
    create.add_argument("name")
    create.add_argument("email")
    bases = sub.add_parser("base", help="base models").add_subparsers(dest="base_cmd", required=True)
    register = bases.add_parser("register", help="a public, system-owned ckp model served by a capability")
    register.add_argument("--name", required=True)
    register.add_argument("--capability", required=True)
    register.add_argument("--base-model", required=True, choices=("SD1.5", "SD2"))
    register.add_argument("--trigger-words", default="")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if _uses_data_dir(args, settings):
            ensure_data_dir(settings.data_dir)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    from aidraw.stackdump import install_stack_dump

    install_stack_dump()  # `kill -USR1 <pid>`: where this process is, into its log
    from aidraw.endpoints import EndpointsError
    from events.store.bridge import NatsConnectError
    from infra.storage.factory import StorageSettingsError

    try:
        return _dispatch(args, settings)
    except StorageSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (EndpointsError, NatsConnectError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _uses_data_dir(args: argparse.Namespace, settings: Settings) -> bool:
    """`run` keeps everything in the data folder; the API and the full projector set keep local blobs there."""
    from infra.storage.factory import uses_local_blobs

    local_blobs = uses_local_blobs(settings.storage)
    return args.cmd in ("run", "runner") or (
        local_blobs and (args.cmd == "api" or (args.cmd == "projector" and not args.names)))


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.cmd == "run":
        from aidraw.supervisor import run_all

        return run_all(settings)
    if args.cmd == "api":
        return _api(settings)
    if args.cmd == "migrate":
        return _migrate(settings)
    if args.cmd == "projector":
        return _projector(settings, args.names)
    if args.cmd == "runner":
        from aidraw.endpoints import resolve
        from aidraw.runner_role import run_runner

        try:
            return run_runner(settings, settings.nats_url or resolve(settings).nats_url)
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.cmd == "rebuild":
        return _rebuild(settings, args.projection)
    if args.cmd == "audit":
        return _audit(settings, args.aggregate, args.id)
    if args.cmd == "user":
        return _user_create(settings, args.name, args.email, args.admin)
    if args.cmd == "base":
        from aidraw.base_cli import base_register

        return base_register(settings, args.name, args.capability, args.base_model, args.trigger_words)
    return 2


if __name__ == "__main__":
    sys.exit(main())
