"""Every fixture and the marker, through pytester runs on the configured backend."""

from __future__ import annotations

import pytest

from .conftest import Backend, needs_real_db

pytestmark = pytest.mark.usefixtures("backend")


def test_redis_is_empty_before_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(3))
        def test_starts_empty(cachesync_redis, i):
            assert cachesync_redis.keys("*") == []
            cachesync_redis.set(f"user:{i}", "x")
            cachesync_redis.set("shared", i)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_fixtures_of_one_test_share_its_stores_and_reset_them_once(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import sqlalchemy as sa
        from conftest import ITEM

        COUNT = sa.select(sa.func.count()).select_from(ITEM)

        @pytest.mark.parametrize("i", range(2))
        def test_shared(cachesync, request, i):
            assert cachesync.redis.dbsize() == 0
            assert cachesync.db.execute(COUNT).scalar() == 0
            cachesync.redis.set("written-before", i)
            cachesync.db.execute(ITEM.insert().values(id=i + 1))
            # Asked for later in the test: the same stores, not emptied a second time.
            assert request.getfixturevalue("cachesync_redis") is cachesync.redis
            assert request.getfixturevalue("cachesync_db") is cachesync.db
            assert cachesync.redis.get("written-before") == str(i).encode()
            assert cachesync.db.execute(COUNT).scalar() == 1


        @pytest.mark.parametrize("i", range(2))
        def test_separate_fixtures_first(cachesync_redis, cachesync_db, cachesync, i):
            assert cachesync.redis is cachesync_redis
            assert cachesync.db is cachesync_db
            assert cachesync_redis.dbsize() == 0
            cachesync_redis.set("k", i)
        """
    )
    pytester.makeconftest(
        """
        import pytest
        import sqlalchemy as sa

        METADATA = sa.MetaData()
        ITEM = sa.Table("item", METADATA, sa.Column("id", sa.Integer, primary_key=True))


        @pytest.fixture(scope="session")
        def cachesync_metadata():
            return METADATA
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_embedded_redis_is_private_to_each_session(
    pytester: pytest.Pytester, default_backend: None
) -> None:
    pytester.makepyfile(
        """
        import fakeredis

        def test_private(cachesync_redis):
            assert isinstance(cachesync_redis, fakeredis.FakeRedis)
            # A client on fakeredis' shared default server sees nothing of the test's keys.
            cachesync_redis.set("k", "v")
            assert fakeredis.FakeRedis().get("k") is None
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.usefixtures("models")
def test_rollback_discards_commits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from models import items, tags, count

        @pytest.mark.parametrize("i", range(3))
        def test_write(cachesync_db, i):
            assert count(cachesync_db) == 0
            cachesync_db.execute(items.insert().values(id=1, name="a"))
            cachesync_db.execute(tags.insert().values(item_id=1))
            cachesync_db.commit()
            cachesync_db.rollback()
            assert count(cachesync_db) == 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


@pytest.mark.usefixtures("models")
def test_truncate_deletes_rows_committed_by_the_app_and_restarts_ids(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import sqlalchemy as sa
        from sqlalchemy.orm import Session
        from models import items, tags, count

        @pytest.mark.parametrize("i", range(3))
        def test_app_commits(cachesync, i):
            assert cachesync.bind is cachesync.engine
            with cachesync.engine.connect() as conn:
                assert count(conn) == 0 and count(conn, tags) == 0
            with Session(cachesync.bind) as app_session:  # the app's own session
                app_session.execute(items.insert().values(name="a"))
                app_session.execute(tags.insert().values(item_id=1))
                app_session.commit()
            ids = cachesync.db.execute(sa.select(items.c.id)).scalars().all()
            assert ids == [1]
        """
    )
    pytester.runpytest("--cachesync-db-reset=truncate").assert_outcomes(passed=3)


@pytest.mark.usefixtures("models")
def test_truncate_tests_in_a_row_each_start_empty(pytester: pytest.Pytester) -> None:
    # The deletions go through one connection kept for the session: each test must still
    # find its tables empty and its ids restarted.
    pytester.makepyfile(
        """
        import pytest
        from models import items, count

        pytestmark = pytest.mark.cachesync(db_reset="truncate")

        @pytest.mark.parametrize("n", range(12))
        def test_writes_after_a_clean_start(cachesync, n):
            assert count(cachesync.db) == 0
            with cachesync.engine.begin() as conn:
                ids = [
                    conn.execute(items.insert().values(name=f"row {i}")).inserted_primary_key[0]
                    for i in range(n % 3 + 1)
                ]
            assert ids == list(range(1, n % 3 + 2))

        def test_engine_only_sees_what_the_last_test_left(cachesync_engine):
            # It takes no reset: nothing may have deleted the 3 rows of the last test.
            with cachesync_engine.connect() as conn:
                assert count(conn) == 3
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=13)


@pytest.mark.usefixtures("models")
def test_truncate_deletes_rows_written_after_the_test_ended(pytester: pytest.Pytester) -> None:
    # On PostgreSQL the deletions leave at the test's teardown, without waiting. A fixture torn
    # down later still writes: its rows must be gone before the next test all the same.
    pytester.makepyfile(
        """
        import pytest
        from models import items, count

        pytestmark = pytest.mark.cachesync(db_reset="truncate")

        @pytest.fixture
        def late_writer(cachesync_engine):
            yield
            with cachesync_engine.begin() as conn:
                conn.execute(items.insert().values(name="written after the test"))

        @pytest.mark.parametrize("n", range(4))
        def test_starts_empty(late_writer, cachesync, n):
            assert count(cachesync.db) == 0
            with cachesync.engine.begin() as conn:
                conn.execute(items.insert().values(name="the test's own"))
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


@pytest.mark.usefixtures("models")
def test_truncate_a_failed_test_keeps_its_rows_when_the_session_stops(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    # What a developer finds in a kept database after -x stopped the run: the rows of the
    # test that failed, not those of the test before it.
    pytester.makepyfile(
        """
        import pytest
        import sqlalchemy as sa
        from models import items

        @pytest.mark.cachesync(db_reset="truncate")
        @pytest.mark.parametrize("n", range(3))
        def test_writes_then_fails_at_the_second(cachesync, n):
            with cachesync.engine.begin() as conn:
                conn.execute(items.insert().values(name=f"row of test {n}"))
            assert n != 1

        def test_look(cachesync_engine):
            with cachesync_engine.connect() as conn:
                names = conn.execute(sa.select(items.c.name)).scalars().all()
            assert names == ["row of test 1"]
        """
    )
    # The default SQLite file lives in each run's basetemp: name one that outlives the run.
    kept = ["--cachesync-reuse-db"]
    if backend.db_url is None:
        kept.append("--cachesync-db-url=sqlite:///app.db")
    stopped = pytester.runpytest(
        "-p", "no:randomly", "-x", *kept, "--cachesync-keep", "-k", "not look"
    )
    stopped.assert_outcomes(passed=1, failed=1)
    pytester.runpytest(*kept, "--cachesync-keep", "-k", "look").assert_outcomes(passed=1)
    # Without --cachesync-keep a session leaves its kept database without rows.
    stopped = pytester.runpytest("-p", "no:randomly", "-x", *kept, "-k", "not look")
    stopped.assert_outcomes(passed=1, failed=1)
    pytester.runpytest(*kept, "-k", "look").assert_outcomes(failed=1)
    # Without --cachesync-reuse-db the database starts afresh: the look finds nothing.
    pytester.runpytest(*kept[1:], "-k", "look").assert_outcomes(failed=1)


@needs_real_db
@pytest.mark.usefixtures("models")
def test_truncate_a_failed_deletion_errors_the_next_setup_and_the_tables_stay_marked(
    pytester: pytest.Pytester,
) -> None:
    # The deletions of test_1 run on the server after its teardown; a trigger makes them fail.
    # The next test that resets gets the error at its setup, and the rows stay dirty: once the
    # trigger is gone, the test after that starts empty.
    pytester.makepyfile(
        """
        import pytest
        from models import items, count

        pytestmark = pytest.mark.cachesync(db_reset="truncate")

        def test_1_writes_behind_a_trigger(cachesync):
            with cachesync.engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'deletes refused by a trigger'; END $$"
                )
                conn.exec_driver_sql(
                    "CREATE TRIGGER no_delete BEFORE DELETE ON items "
                    "FOR EACH ROW EXECUTE FUNCTION no_delete()"
                )
                conn.execute(items.insert().values(name="guarded"))

        def test_2_setup_reports_the_failed_deletion(cachesync):
            pass

        @pytest.mark.cachesync(reset=False)
        def test_3_drops_the_trigger(cachesync):
            with cachesync.engine.begin() as conn:
                assert count(conn) == 1
                conn.exec_driver_sql("DROP TRIGGER no_delete ON items")
                conn.exec_driver_sql("DROP FUNCTION no_delete()")

        def test_4_starts_empty(cachesync):
            assert count(cachesync.db) == 0
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_2_setup_reports_the_failed_deletion*",
            "*deletes refused by a trigger*",
            "*cachesync: deleting the rows that tests wrote failed*",
        ]
    )


@pytest.mark.usefixtures("models")
def test_rollback_mode_app_session_joins_the_test_transaction(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import sqlalchemy as sa
        from sqlalchemy.orm import Session
        from models import items, count

        @pytest.mark.parametrize("i", range(2))
        def test_app(cachesync, i):
            assert isinstance(cachesync.bind, sa.Connection)
            assert count(cachesync.db) == 0
            app_session = Session(cachesync.bind, join_transaction_mode="create_savepoint")
            app_session.execute(items.insert().values(name="a"))
            app_session.commit()
            app_session.execute(items.insert().values(name="b"))
            app_session.rollback()
            app_session.close()
            assert count(cachesync.db) == 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.usefixtures("models")
def test_marker_chooses_strategy_and_opts_out_of_reset(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from models import items, count

        @pytest.mark.cachesync(db_reset="truncate")
        def test_1_writes(cachesync):
            assert cachesync.db_reset == "truncate"
            cachesync.redis.set(cachesync.key("left"), "1")
            cachesync.db.execute(items.insert().values(name="left"))
            cachesync.db.commit()

        @pytest.mark.cachesync(reset=False, db_reset="truncate")
        def test_2_sees_what_was_left(cachesync):
            assert cachesync.redis.get(cachesync.key("left")) == b"1"
            assert count(cachesync.db) == 1

        def test_3_clean_again(cachesync):
            assert cachesync.db_reset == "rollback"
            assert cachesync.keys() == []
            assert count(cachesync.db) == 0
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('db_reset="wipe"', "cachesync(db_reset='wipe') must be one of 'rollback', 'truncate'"),
        ("colour=1", "@pytest.mark.cachesync(*, reset=True*unexpected keyword argument 'colour'"),
        ("True", "@pytest.mark.cachesync(*, reset=True*: too many positional arguments."),
    ],
)
def test_marker_bad_arguments_are_clear_errors(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cachesync({marker})
        def test_x(cachesync_redis):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_marker_is_registered_with_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.cachesync(*, reset=True, db_reset=None, oracle=None, *):*"]
    )


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines_random(
        [
            "cachesync_redis -- *",
            "*A redis-py client on the test's own keyspace, emptied before the test.",
            "cachesync_engine [[]session scope[]] -- *",
            "*SQLAlchemy Engine on this session's*",
            "cachesync_metadata [[]session scope[]] -- *",
            "cachesync_db -- *",
            "*A SQLAlchemy Session for the test, isolated by the chosen strategy.",
            "cachesync -- *",
            "*Everything a test of a caching app needs, in one object.",
        ]
    )
    # No heading of the plugin's stands over nothing: private fixtures are listed under the
    # module of the public ones they serve.
    lines = result.stdout.lines
    for index, line in enumerate(lines):
        if "fixtures defined from pytest_cachesync" in line:
            following = next((text for text in lines[index + 1 :] if text.strip()), "")
            assert " -- " in following, f"{line.strip()} lists no fixture"


@pytest.mark.usefixtures("models")
def test_facade_reset_empties_both_stores_mid_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from models import items, count

        @pytest.mark.parametrize("mode", ["rollback", "truncate"])
        def test_reset(request, cachesync, mode):
            request.applymarker(pytest.mark.cachesync(db_reset=mode))
            cachesync.redis.set(cachesync.key("a"), 1)
            cachesync.db.execute(items.insert().values(name="a"))
            cachesync.db.commit()
            cachesync.reset()
            assert cachesync.keys() == []
            assert count(cachesync.db) == 0
            cachesync.db.execute(items.insert().values(name="b"))
            cachesync.db.commit()
            assert count(cachesync.db) == 1
            assert "CacheSync" in repr(cachesync)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_default_metadata_is_empty_and_ini_path_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        models="""
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

        class Base(DeclarativeBase):
            pass

        class Spot(Base):
            __tablename__ = "spots"
            id: Mapped[int] = mapped_column(primary_key=True)
        """,
        test_meta="""
        import sqlalchemy as sa

        def test_tables(cachesync_engine, cachesync_metadata):
            names = sorted(sa.inspect(cachesync_engine).get_table_names())
            assert [t.name for t in cachesync_metadata.sorted_tables] == EXPECTED
            assert [n for n in names if n != "cachesync_test_database"] == EXPECTED
        """,
    )
    pytester.syspathinsert()
    pytester.makeconftest("import builtins\nbuiltins.EXPECTED = []")
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makeconftest("import builtins\nbuiltins.EXPECTED = ['spots']")
    pytester.makeini("[pytest]\ncachesync_metadata = models:Base\n")
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ncachesync_metadata = models:Nope\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cachesync_metadata 'models:Nope': 'Nope' not found.*"])


def test_redis_targets_patch_module_level_clients(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        cacheapp="""
        import redis

        redis_client = redis.Redis(host="cache.example.invalid")

        def remember(key, value):
            redis_client.set(key, value)
        """,
        test_app="""
        import cacheapp

        def test_patched(cachesync_redis):
            cacheapp.remember("k", "v")
            assert cachesync_redis.get("k") == b"v"
            assert cacheapp.redis_client is cachesync_redis
        """,
    )
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ncachesync_redis_targets =\n    cacheapp:redis_client\n")
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ncachesync_redis_targets = cacheapp:missing\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cachesync_redis_targets 'cacheapp:missing'*not found*"])


def test_reuse_db_keeps_the_database_and_cleans_it_next_time(
    pytester: pytest.Pytester, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.db_url is None:
        monkeypatch.setenv("CACHESYNC_DB_URL", f"sqlite:///{pytester.path / 'app.db'}")
    pytester.makepyfile(
        models="""
        import sqlalchemy as sa
        metadata = sa.MetaData()
        items = sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True))
        """,
        conftest="""
        import pytest
        from models import metadata

        @pytest.fixture(scope="session")
        def cachesync_metadata():
            return metadata
        """,
        test_reuse="""
        import sqlalchemy as sa
        from models import items

        def test_write(cachesync, request):
            count = sa.select(sa.func.count()).select_from(items)
            assert cachesync.db.execute(count).scalar() == 0
            cachesync.db.execute(items.insert())
            cachesync.db.commit()
            request.config.cache_url = cachesync.engine.url
        """,
    )
    pytester.syspathinsert()
    for _ in range(2):
        pytester.runpytest("--cachesync-reuse-db", "--cachesync-db-reset=truncate").assert_outcomes(
            passed=1
        )
    if backend.db_url is None:
        assert (pytester.path / "test_app.db").exists()
        pytester.runpytest("--cachesync-db-reset=truncate").assert_outcomes(passed=1)
        assert not (pytester.path / "test_app.db").exists()
    else:
        pytester.runpytest("--cachesync-db-reset=truncate").assert_outcomes(passed=1)
