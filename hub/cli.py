"""`lapor-hub`: the command line. Each command parses options and calls one function."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from hub.adapters import SOURCES, Fragment, RawMessage, Rejection, find_source
from hub.model import Complaint

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

cli = typer.Typer(
    help="LAPOR Hub: normalize, route and track SP4N-LAPOR! complaints over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _show_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"lapor-hub {version('lapor-hub')}")
        raise typer.Exit


@cli.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print the version and exit.",
    )] = False,
) -> None:
    """LAPOR Hub: normalize, route and track SP4N-LAPOR! complaints over Kafka."""


class _Chatter(logging.Filter):
    """Lines that tell an operator nothing: Alembic's dialect notes at every start, and
    FastStream's note on each of its tasks at every stop."""

    NOISE = ("Context impl ", "Will assume ", "callback for ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOISE)


class _Repeats(logging.Filter):
    """One line per kind of aiokafka complaint each `every` seconds, saying how many it stood
    for: with the broker away aiokafka logs "Unable connect to node" and "Unable to update
    metadata" for every connection attempt, about 190 lines a second."""

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every = every
        self.last: dict[tuple[str, str], tuple[float, int, float]] = {}
        """Per kind: when one was last shown, how many held since, when the first of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, str(record.msg))
        shown_at, held, since = self.last.get(key, (-self.every, 0, 0.0))
        if record.created - shown_at < self.every:
            self.last[key] = (shown_at, held + 1, since if held else record.created)
            return False
        self.last[key] = (record.created, 0, 0.0)
        if held:
            at = time.strftime("%H:%M:%S", time.localtime(since))
            record.msg = f"{record.msg} (and {held} more like it since {at})"
        return True


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    handlers = logging.getLogger().handlers
    if handlers and not any(isinstance(f, _Repeats) for h in handlers for f in h.filters):
        handlers[0].addFilter(_Repeats())  # the one basicConfig made
    for name in ("alembic.runtime.migration", "hub.kafka"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Chatter) for f in logger.filters):
            logger.addFilter(_Chatter())


@cli.command()
def broker(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, memory only) in the foreground."""
    from hub.embedded_broker import EmbeddedBroker

    _logging()
    # SIGTERM ends the start or the wait like Ctrl-C, and the broker is stopped on the way
    # out. Stopping in the handler itself deadlocked: it waited for the broker inside the
    # wait it had interrupted.
    # One `try` from the start on: a signal between two statements is caught too.
    signal.signal(signal.SIGTERM, _interrupt)
    b = EmbeddedBroker(port)
    try:
        try:
            b.start()
        except RuntimeError as exc:
            typer.echo(f"lapor-hub broker: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"broker ready: HUB_KAFKA_BOOTSTRAP={b.bootstrap} (Ctrl-C stops it)",
                   err=True)
        b.wait()
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@cli.command()
def run() -> None:
    """Run the hub against HUB_KAFKA_BOOTSTRAP and HUB_DATABASE_URL, HTTP on HUB_HTTP_PORT."""
    import uvicorn

    from hub.app import build, check_http_port, reach_dependencies
    from hub.settings import get_settings

    settings = get_settings()
    _logging(settings.log_level)
    check_http_port(settings)
    app, hub = build(settings)
    asyncio.run(reach_dependencies(hub, settings))
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")


@cli.command()
def dev(
    rate: Annotated[float, typer.Option(help="Demo complaints per second.")] = 5.0,
    port: Annotated[int, typer.Option(help="Embedded broker port.")] = 9092,
    leave: Annotated[list[str] | None, typer.Option(
        help="An agency the demo does not answer, for you to answer with `lapor-hub agency` "
        "(repeatable; default kota-bekasi-dinkes; --leave none answers all).")] = None,
) -> None:
    """Embedded broker + hub on SQLite under ./var + a demo stream, with progress."""
    from hub.app import check_http_port
    from hub.devserver import DEMO_LEFT, run_dev
    from hub.routing import Directory
    from hub.settings import Settings
    from hub.simulate import pace_problem

    if problem := pace_problem(rate=rate):
        _fail(problem)  # 0 ended the demo feeder in a ZeroDivisionError
    os.environ.setdefault("HUB_DATABASE_URL", "sqlite:///var/hub.db")
    _logging("WARNING")
    settings = Settings()
    check_http_port(settings)
    left = frozenset(leave or [DEMO_LEFT]) - {"none"}
    known = Directory.load(settings.agencies_file).agencies
    if unknown := sorted(left - set(known)):
        _fail(f"--leave: no agency {', '.join(unknown)} in the registry")
    asyncio.run(run_dev(rate, port, left))


@cli.command()
def normalize(
    file: Annotated[str, typer.Argument(help="Payload file, or - for standard input.")],
    channel: Annotated[str, typer.Option(
        help="web, mobile, sms, x, meta, whatsapp, open311, provincial; or a source name as "
        "in /intake/<source> (sms-twilio, prov-jakarta, ...)")] = "web",
    source: Annotated[str | None, typer.Option(help="Source variant, e.g. twilio.")] = None,
    content_type: Annotated[str | None, typer.Option(help="Defaults to the source's.")] = None,
) -> None:
    """Print the canonical JSON of one raw payload; bad input exits 2 with the reason."""
    try:
        src = find_source(channel, source)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    if content_type and content_type.split(";")[0].strip().lower() not in src.content_types:
        # As the ingress answers it (415): the adapters go by the source, not by this.
        _fail(f"content type {content_type!r} not accepted by {src.name}; "
              f"it takes {' or '.join(src.content_types)}")
    try:
        body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    raw = RawMessage(
        source=src.name,
        body=body,
        content_type=content_type or src.content_types[0],
        received_at=datetime.now(UTC),
    )
    outcomes = src.normalize(raw)
    complaints = [o.model_dump(mode="json") for o in outcomes if isinstance(o, Complaint)]
    rejections = [o for o in outcomes if isinstance(o, Rejection)]
    if not complaints:
        reason = rejections[0] if rejections else None
        part = next((o for o in outcomes if isinstance(o, Fragment)), None)
        said = (f"{reason.reason}: {reason.detail}" if reason
                else f"part {part.index} of {part.total} of a multi-part SMS: the hub makes "
                "the complaint when all its parts are in" if part
                else "no complaint in the payload")
        if source is None:  # the channel's first source was a guess: is it another's?
            # A part of a long SMS fits too: the gateway reads it, as a part.
            fits = [s.name for s in SOURCES.values() if s.channel == src.channel and s is not src
                    and any(isinstance(o, Complaint | Fragment) for o in s.normalize(raw))]
            if fits:
                said += f" (read as {src.name}; {' or '.join(fits)} reads it: --source)"
        _fail(said)
    for r in rejections:
        entry = f" {r.source_message_id}" if r.source_message_id else ""
        typer.echo(f"skipped entry{entry}: {r.reason}: {r.detail}", err=True)
    typer.echo(json.dumps(complaints[0] if len(complaints) == 1 else complaints, indent=2,
                          ensure_ascii=False))


@cli.command()
def schemas(
    folder: Annotated[Path, typer.Argument(help="Where the contract files go.")] = Path("schemas"),
) -> None:
    """Write the JSON Schema and AsyncAPI files generated from the models."""
    from hub.specs import write

    changed = write(folder)
    typer.echo(f"updated: {', '.join(changed)}" if changed else "schemas are up to date")


@cli.command()
def agency(
    code: Annotated[str, typer.Argument(help="Agency code from the registry.")],
    listen_only: Annotated[bool, typer.Option(help="Only show, take no input.")] = False,
) -> None:
    """Reference agency client: show routed complaints, post follow-ups from the terminal."""
    from hub.agency_client import run_agency
    from hub.routing import Directory, RegistryError
    from hub.settings import get_settings

    settings = get_settings()
    try:
        directory = Directory.load(settings.agencies_file)
    except RegistryError as exc:
        _fail(str(exc))
    known = directory.get(code)
    if known is None:
        _fail(f"unknown agency {code!r}")
    asyncio.run(run_agency(settings, known, directory.agencies.keys(), interactive=not listen_only,
                           national=known.code == directory.national.code))


@cli.command()
def simulate(
    minutes: Annotated[float, typer.Option(help="How long to run.")] = 2.0,
    rate: Annotated[float, typer.Option(help="Complaints per second over all channels.")] = 10.0,
    hub_url: Annotated[str | None, typer.Option(help="Ingress base URL.")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Same seed, same stream. Default: a new one each run, shown at the start (the "
             "hub takes a stream it has seen for complaints it already has).")] = None,
) -> None:
    """Realistic multi-channel load with agency responders (some late, some not_authority)."""
    from hub.settings import get_settings
    from hub.simulate import SimulationError, pace_problem, run_simulation

    if problem := pace_problem(minutes=minutes, rate=rate):
        _fail(problem)  # before the seed line: nothing will be sent
    settings = get_settings()
    url = hub_url or f"http://{settings.http_host}:{settings.http_port}"
    if seed is None:
        seed = int(time.time())
        typer.echo(f"seed {seed} (--seed {seed} sends this stream again)", err=True)
    try:
        asyncio.run(run_simulation(settings, url, minutes=minutes, rate=rate, seed=seed))
    except SimulationError as exc:
        _fail(str(exc))


@cli.command()
def report(
    date_from: Annotated[str, typer.Option("--from", help=(
        "First day, YYYY-MM-DD: a complaint counts on the day its agency received it, in the "
        "agency's time zone (WIB, WITA or WIT), not in UTC."))],
    date_to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    agency: Annotated[str | None, typer.Option(help="One agency code.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
    png: Annotated[Path | None, typer.Option(help="Also draw a chart as PNG.")] = None,
) -> None:
    """The evaluators' table per agency: follow-up and resolution rates, times, breaches."""
    from hub.report import ReportError, run_report
    from hub.settings import get_settings

    try:
        run_report(get_settings(), date_from, date_to, agency=agency, csv_path=csv, png_path=png)
    except ReportError as exc:
        _fail(str(exc))


db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
cli.add_typer(db_cli, name="db")


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Bring the database at HUB_DATABASE_URL to `revision` (default: the newest)."""
    from hub.migrate import upgrade
    from hub.settings import get_settings

    try:
        upgrade(get_settings().database_url, revision)
    except AssertionError:  # Alembic asserts on a step past the newest ("head+1")
        _fail(f"database migrations: no revision {revision!r} (the newest is head)")


dlq_cli = typer.Typer(help="Dead letters: list them, replay them after a fix.",
                     no_args_is_help=True)
cli.add_typer(dlq_cli, name="dlq")


@dlq_cli.command("list")
def dlq_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    replayed: Annotated[bool, typer.Option(help="Include ones already replayed.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Newest first, at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON object per line, each detail whole.")] = False,
) -> None:
    """Dead letters with their reason and what they are about (newest first): a follow-up's
    complaint, agency and event id, a raw record's own message id; original bytes stay
    sealed."""
    from rich.markup import escape
    from rich.table import Table

    from hub.dlq import count_letters, list_letters
    from hub.sealing import Sealer
    from hub.settings import get_settings
    from hub.terminal import print_whole, shortened, shown

    engine = _existing_database()
    letters = list_letters(engine, Sealer.from_settings(get_settings()), reason=reason,
                           include_replayed=replayed, limit=limit)
    if reason and not letters:
        _check_reason(engine, reason)
    if as_json:
        for dl in letters:
            typer.echo(json.dumps(dataclasses.asdict(dl), default=str, ensure_ascii=False))
        return
    table = Table("id", "at", "stage", "reason", "topic", "about")
    # The detail on one line, cut with a mark: narrower columns give way to it.
    table.add_column("detail", no_wrap=True)
    table.add_column("replayed")
    # A detail or an id may quote a payload: "[...]" must not be read as markup, nor a
    # terminal's controls obeyed.
    for dl in letters:
        table.add_row(str(dl.id), f"{dl.at:%Y-%m-%d %H:%M:%S}", dl.stage, escape(dl.reason),
                      escape(dl.topic), shown(dl.about()),
                      shown(shortened(dl.detail, SHOWN_DETAIL)),
                      f"{dl.replayed_at:%Y-%m-%d %H:%M}" if dl.replayed_at else "")
    print_whole(table)
    # The newest `limit` alone read as all there were: 50 rows of 3,000 letters said nothing.
    if len(letters) == limit and (held := count_letters(
            engine, reason=reason, include_replayed=replayed)) > limit:
        typer.echo(f"the newest {limit} of {held} shown (--limit N shows more)")


@dlq_cli.command("replay")
def dlq_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids.")] = None,
    reason: Annotated[str | None, typer.Option(help="Every one with this reason.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every one not yet replayed.")] = False,
) -> None:
    """Publish dead letters back to the topic they came from, to be processed again."""
    from hub.dlq import replay
    from hub.sealing import Sealer
    from hub.settings import get_settings

    if not (ids or reason or all_):
        _fail("say which: ids, --reason R or --all")
    settings = get_settings()
    engine = _existing_database()
    sent, found = asyncio.run(
        replay(settings, engine, Sealer.from_settings(settings), ids or [], reason))
    sealed, too_large = found.sealed_elsewhere, found.too_large
    if reason and not sent and not sealed and not too_large:
        _check_reason(engine, reason)
    typer.echo(f"replayed {len(sent)} dead letter(s)")
    left = []
    if sealed:
        left.append(f"{', '.join(map(str, sealed))}: sealed under a secret key not configured "
                    "(HUB_SECRET_KEY, HUB_PREVIOUS_SECRET_KEYS)")
    if too_large:
        left.append(f"{', '.join(map(str, too_large))}: at the broker's record limit, too "
                    "large to send again with the replay's header")
    if unknown := sorted(set(ids or []) - set(sent) - set(sealed) - set(too_large)):
        left.append(f"{', '.join(map(str, unknown))}: no such dead letter"
                    + (f" with reason {reason!r}" if reason else "")
                    + ", or replayed already (lapor-hub dlq list --replayed)")
    if left:
        _fail("not replayed: " + "; ".join(left) + ("; the rest went" if sent else ""))


SHOWN_DETAIL = 120
"""Characters of a dead letter's detail in `dlq list`'s table (--json gives all of it)."""



def _check_reason(engine: Engine, reason: str) -> None:
    """A --reason no dead letter has is a typo to say, not "nothing to do"."""
    from hub.dlq import reasons

    held = reasons(engine)
    if reason not in held:
        _fail(f"no dead letter has reason {reason!r}; reasons held: "
              + (", ".join(held) or "none"))


def _existing_database() -> Engine:
    """The engine of HUB_DATABASE_URL, which must be there: `dlq` on a mistyped SQLite path
    made an empty file and said "no such table: dead_letter"."""
    from hub.settings import get_settings
    from hub.store import make_engine, missing_sqlite_file

    url = get_settings().database_url
    if missing := missing_sqlite_file(url):
        _fail(f"no database at {missing} (HUB_DATABASE_URL)")
    return make_engine(url)


@db_cli.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the change is.")],
) -> None:
    """Autogenerate a migration from the models against HUB_DATABASE_URL (at head)."""
    from hub.migrate import new_revision
    from hub.settings import get_settings

    new_revision(get_settings().database_url, message)


@cli.command()
def bench(
    quick: Annotated[bool, typer.Option(help="A short smoke run.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    processes: Annotated[str | None, typer.Option(
        help="Only this: intake throughput of N hub processes sharing a group, e.g. 1,2,3."
    )] = None,
) -> None:
    """Measure throughput and latency against the broker's ceiling, on this machine."""
    # SIGTERM unwinds like Ctrl-C: the embedded broker, the hub processes and the temp
    # folder (a database per hub, 100+ MB in a full run) go with the bench, not after it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if processes is not None:
        from hub.bench_processes import run_processes

        try:
            counts = [int(n) for n in processes.split(",")]
        except ValueError:
            _fail(f"--processes wants counts like 1,2,3, not {processes!r}")
        if not counts or min(counts) < 1:
            _fail("--processes wants counts of at least 1")
        run_processes(counts)
        return
    from hub.bench import run_bench

    run_bench(quick=quick, as_json=as_json)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _fail(reason: str) -> NoReturn:
    typer.echo(f"lapor-hub: {reason.splitlines()[0] if reason else 'failed'}", err=True)
    raise typer.Exit(2)


def setting_errors(exc: ValidationError) -> str:
    """What is wrong with the HUB_ settings, by variable; never the values (secrets)."""
    return "; ".join(
        f"HUB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )


def operator_error(exc: Exception) -> str | None:
    """One line for what the operator must fix (a setting, a file, a database or broker out
    of reach), None for anything else (a bug keeps its traceback)."""
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
    from alembic.util.exc import CommandError
    from pydantic_settings import SettingsError
    from sqlalchemy.exc import DBAPIError

    from hub.operator_files import OperatorFileError
    from hub.outages import is_outage
    from hub.settings import CannotServe

    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return f"bad setting {setting_errors(exc)}"
    if isinstance(exc, SettingsError):  # a value meant as JSON that is none
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"HUB_{field[1].upper()}" if field else "a HUB_ setting"
        return f"bad setting {name}: not valid JSON"
    if isinstance(exc, OperatorFileError | CannotServe):
        return str(exc).splitlines()[0]
    # Away, a schema missing, read-only, ... (parameters are never shown)
    if isinstance(exc, DBAPIError) and is_outage(exc):
        said = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        if said.startswith("connection") and 'database "' in said and "does not exist" in said:
            said += " (the hub makes tables, not databases: CREATE DATABASE it first)"
        elif "no such table" in said or "does not exist" in said:
            said += " (lapor-hub db upgrade makes the tables)"
        return f"database: {said}"
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        return f"broker: {str(exc).splitlines()[0]}"
    if isinstance(exc, CommandError):  # a revision unknown: named, or the database's own
        return (f"database migrations: {str(exc).splitlines()[0]} (a database migrated by a "
                "newer lapor-hub, or a revision mistyped; `lapor-hub db upgrade` takes none)")
    return None


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        try:
            cli()
        except Exception as exc:
            reason = operator_error(exc)
            if reason is None:
                raise
            # Outside the command: click no longer turns typer.Exit into a status.
            typer.echo(f"lapor-hub: {reason}", err=True)
            raise SystemExit(2) from None
