"""Options declared once, in groups (issue 24, item 3): the groups, the old keywords (deprecated for one
release, one table), the CLI flags and the daemon's TOML keys made from the same declarations."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import pumpsync
from pumpsync.config import make_config
from pumpsync.daemon.config import build_config, load_file
from pumpsync.errors import ConfigurationError
from pumpsync.options import GROUPS, OPTION_CLASSES, RENAMED, LegacyOptions, declared, flat_name, grouped
from pumpsync.providers import PROVIDERS
from pumpsync.providers.spec import ClientConfig

ROOT = Path(__file__).resolve().parents[1]
NOWHERE = "ws://127.0.0.1:9/"

# A value each old keyword takes, and the provider that takes it (a provider option: its provider's).
VALUES: dict[str, Any] = {
    "connect_timeout": 5.0, "hello_timeout": 1.0, "ping_interval": 7.0, "pong_timeout": 3.0, "stale_timeout": 20.0,
    "first_connect_timeout": 9.0, "backoff_initial": 0.1, "backoff_max": 2.0, "limited_backoff": 4.0,
    "healthy_after": 3.0, "max_retries": 4, "connections": 2, "queue_size": 500, "dedup_size": 900,
    "max_frame_size": 4096, "auth": "header", "proxy": "http://127.0.0.1:3128", "ca_bundle": None, "since": 7,
    "backfill": False, "rest_url": "http://127.0.0.1:9", "gap_deadline": 5.0, "commitment": "finalized",
    "max_gap_transactions": 50, "silent_trades_after": 30.0, "group": "g", "consumer": "c", "name": None,
    "speed": 2.0,
}  # fmt: skip
PROVIDER_OF = {name: cls.removesuffix("Options").lower() for name, cls in OPTION_CLASSES.items()}


@pytest.fixture(autouse=True)
def _recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recording.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)  # replay's URL below: an empty recording here


def _client(provider: str, **options: Any) -> pumpsync.Client:
    if provider in ("anaxer", "openpump", "pumpportal", "solana"):
        options.setdefault("url", NOWHERE)
    if provider == "redis":
        options.setdefault("url", "redis://127.0.0.1:9/0?stream=s")
    if provider == "replay":
        options.setdefault("url", "file:recording.jsonl")
    return pumpsync.Client(provider, api_key="k", **options)  # type: ignore[arg-type]


def test_the_table_the_typed_dict_and_the_config_agree() -> None:
    """One table of old names: LegacyOptions (what mypy checks), ClientConfig's flat names and
    the declarations all name the same keywords, with the same types."""
    assert set(LegacyOptions.__annotations__) == set(RENAMED)
    flat_reads = {name for name, value in vars(ClientConfig).items() if type(value).__name__ == "_Flat"}
    assert flat_reads == set(RENAMED) - {"race_window", "prefer"}  # Race is the several-sources client's
    for old, (group, field) in RENAMED.items():
        if group == "options":
            cls = PROVIDERS[PROVIDER_OF[old]].options_class
            assert cls.__name__ == OPTION_CLASSES[old] and field in {f.name for f in dataclasses.fields(cls)}
            continue
        declared_field = {f.name: f for f in dataclasses.fields(GROUPS[group])}[field]
        assert flat_name(declared_field) == old
        old_type = LegacyOptions.__annotations__[old].__forward_arg__.replace(" | None", "")
        assert old_type.split("[")[0] in str(declared_field.type) or old_type.startswith("Literal"), (old, old_type)
    assert len(RENAMED) == 31  # every flat keyword of 0.1 but the plain ones (url, api_key, channels...)


def test_client_and_connect_take_about_a_dozen_keywords() -> None:
    import inspect

    for function in (pumpsync.Client.__init__, pumpsync.connect):
        parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
        named = [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]
        assert len(named) == 18, named  # was 42 (provider and 41 keywords)
        for group in (*GROUPS, "options"):
            assert group in named


@pytest.mark.parametrize("old", sorted(set(RENAMED) - {"race_window", "prefer", "ca_bundle", "name"}))
def test_each_old_keyword_works_with_a_warning_naming_the_new_spelling(old: str) -> None:
    provider = PROVIDER_OF.get(old, "anaxer")
    value = VALUES[old]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = _client(provider, **{old: value})
    client.close()
    assert getattr(client.config, old) == value
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in caught]
    group, field = RENAMED[old]
    assert f"{old}= is deprecated" in str(deprecations[0].message) and f"({field}=...)" in str(deprecations[0].message)
    assert deprecations[0].filename == __file__  # at the user's line, not inside pumpsync
    # The new spelling gives the same config, without a warning.
    new = {"options": PROVIDERS[provider].options_class(**{field: value})} if group == "options" else {
        group: GROUPS[group](**{field: value})
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        grouped_client = _client(provider, **new)
    grouped_client.close()
    assert grouped_client.config == client.config


def test_connect_warns_at_the_callers_line_too() -> None:
    with pytest.warns(
        DeprecationWarning, match=r"stale_timeout= is deprecated: use timeouts=pumpsync\.Timeouts"
    ) as got:
        client = pumpsync.connect("openpump", api_key="k", url=NOWHERE, stale_timeout=30.0)
    client.close()
    assert got[0].filename == __file__ and client.config.timeouts.stale == 30.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stale_timout": 3}, r"invalid stale_timout: no such option; did you mean timeouts=pumpsync\.Timeouts\(stale"),
        ({"comitment": "x"}, r"did you mean options=pumpsync\.SolanaOptions\(commitment=\.\.\.\)\?"),
        ({"timeout": 3}, r"did you mean 'timeouts'\?"),
        ({"stale_timeout": 30.0, "timeouts": pumpsync.Timeouts(stale=40)}, "given twice"),
        ({"timeouts": pumpsync.Retries()}, r"is not a pumpsync\.Timeouts"),
        ({"options": pumpsync.SolanaOptions()}, "SolanaOptions are not openpump's"),
        ({"timeouts": pumpsync.Timeouts(stale="x")}, "invalid stale_timeout: 'x' is not a number of seconds"),  # type: ignore[arg-type]
        ({"limits": pumpsync.Limits(queue_size=10**12)}, "invalid queue_size: .* from 1 to 10,000,000"),
        ({"retries": pumpsync.Retries(limit=0)}, "invalid max_retries"),
    ],
)
def test_a_wrong_option_is_one_line_naming_it(options: dict[str, Any], message: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigurationError, match=message) as info:
            _client("openpump", **options)
    assert "\n" not in str(info.value)


def test_the_provider_options_are_typed_and_refused_by_another_provider() -> None:
    config = make_config("solana", options=pumpsync.SolanaOptions(commitment="finalized"))
    assert config.options == pumpsync.SolanaOptions(commitment="finalized", max_gap_transactions=2000)
    assert config.commitment == "finalized" and config.max_gap_transactions == 2000
    assert make_config("openpump", api_key="k").commitment is None  # another provider's: None
    with pytest.raises(ConfigurationError, match="commitment: 'final' is not one of processed, confirmed, finalized"):
        make_config("solana", options=pumpsync.SolanaOptions(commitment="final"))  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigurationError, match="commitment: given twice"):
        _client("solana", commitment="processed", options=pumpsync.SolanaOptions(commitment="finalized"))


def test_flat_options_still_build_a_config_for_the_internal_callers() -> None:
    """Source(...), the daemon and the CLI merge flat options: make_config takes them without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        flat = make_config("anaxer", api_key="k", stale_timeout=20.0, queue_size=10, max_retries=3)
        groups = make_config(
            "anaxer", api_key="k", **grouped({"stale_timeout": 20.0, "queue_size": 10, "max_retries": 3})
        )
    assert flat == groups and flat.timeouts.stale == 20.0 and flat.retries.limit == 3
    # ClientConfig itself takes the flat names (tests and code written before the groups).
    direct = ClientConfig(provider="solana", api_key=None, url=NOWHERE, backoff_initial=0.01, commitment="processed")
    assert direct.backoff_initial == 0.01 and direct.commitment == "processed" and direct.connections == 1
    assert dataclasses.replace(direct, stale_timeout=5.0).timeouts.stale == 5.0


def test_several_sources_take_the_groups_as_every_sources_defaults() -> None:
    client = pumpsync.Client(
        sources=[
            pumpsync.Source("openpump", api_key="a", url=NOWHERE, timeouts=pumpsync.Timeouts(stale=25)),
            pumpsync.Source("anaxer", api_key="b", url=NOWHERE),
        ],
        timeouts=pumpsync.Timeouts(ping_interval=5),
        limits=pumpsync.Limits(queue_size=321),
        race=pumpsync.Race(window=3),
    )
    configs = {name: member.config for name, member in client.members.items()}
    client.close()
    assert configs["openpump"].stale_timeout == 25 and configs["anaxer"].stale_timeout == 60
    assert configs["openpump"].ping_interval == 5 == configs["anaxer"].ping_interval  # the client's, under each
    assert configs["anaxer"].queue_size == 321 and client.race is not None and client.race.window_ms == 3000


def test_the_cli_flags_come_from_the_declarations() -> None:
    from pumpsync.cli import cli

    out = CliRunner().invoke(cli, ["stream", "--help"], terminal_width=200).output
    for group, kind in GROUPS.items():
        if group == "race":
            continue
        for each in declared(kind):
            flag = "--" + flat_name(each).replace("_", "-")
            assert flag in out, flag
    for spec in PROVIDERS.values():
        for each in declared(spec.options_class):
            assert f"--{each.name.replace('_', '-')}" in out
    assert "--commitment [processed|confirmed|finalized]" in out
    assert "Seconds of silence after which a socket counts as dead [60]." in " ".join(out.split())


def test_the_cli_builds_groups_without_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from pumpsync.cli._options import make_client

    params = {"provider": "solana", "url": (NOWHERE,), "stale_timeout": 20.0, "commitment": "processed",
              "backfill": False, "verbose": 0, "sources": (), "channels": ()}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        client = make_client(params)
    client.close()
    assert client.config.stale_timeout == 20.0 and client.config.commitment == "processed"
    assert client.config.backfill is False


def test_the_daemon_file_takes_group_tables_and_the_flat_keys(tmp_path: Path) -> None:
    grouped_file = tmp_path / "grouped.toml"
    grouped_file.write_text(
        'provider = "solana"\n[timeouts]\nstale = 20\n[limits]\nqueue_size = 500\n[options]\ncommitment = "processed"\n'
        "[history]\nbackfill = false\n"
    )
    flat_file = tmp_path / "flat.toml"
    flat_file.write_text('provider = "solana"\nstale_timeout = 20\nqueue_size = 500\ncommitment = "processed"\n'
                         "backfill = false\n")  # fmt: skip
    assert load_file(grouped_file) == load_file(flat_file)
    config = build_config(load_file(grouped_file), {})
    assert config.client["stale_timeout"] == 20.0 and config.client["commitment"] == "processed"
    both = tmp_path / "both.toml"
    both.write_text("stale_timeout = 20\n[timeouts]\nstale = 30\n")
    with pytest.raises(ConfigurationError, match="given twice"):
        load_file(both)
    typo = tmp_path / "typo.toml"
    typo.write_text("[timeouts]\nstael = 30\n")
    with pytest.raises(ConfigurationError, match=r"timeouts\.stael: unknown key; did you mean 'stale'\?"):
        load_file(typo)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[timeouts]\nstale = "soon"\n')
    with pytest.raises(ConfigurationError, match="stale_timeout: must be float"):
        load_file(wrong)


def test_a_source_table_takes_group_tables(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[race]\nwindow = 4\n[[sources]]\nprovider = "openpump"\ntimeouts = { stale = 25 }\n'
        '[[sources]]\nprovider = "solana"\noptions = { commitment = "processed" }\n'
    )
    data = load_file(path)
    assert data["race_window"] == 4.0
    assert [s.options for s in data["sources"]] == [{"stale_timeout": 25.0}, {"commitment": "processed"}]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any level (TYPE_CHECKING blocks and functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_import_cycle_between_the_config_and_the_providers() -> None:
    """config.py imports the providers; no provider module imports config.py, not even for types;
    the declarations (pumpsync.options) import neither."""
    for path in (ROOT / "pumpsync" / "providers").glob("*.py"):
        assert "pumpsync.config" not in _imports(path), path.name
    leaf = {m for m in _imports(ROOT / "pumpsync" / "options.py") if m.startswith("pumpsync")}
    assert leaf <= {"pumpsync._text", "pumpsync.errors"}


def test_the_public_names_are_exported() -> None:
    for name in ("Timeouts", "Retries", "Limits", "Network", "History", "Race", "ProviderOptions", "SolanaOptions",
                 "PumpPortalOptions", "RedisOptions", "ReplayOptions"):  # fmt: skip
        assert name in pumpsync.__all__ and hasattr(pumpsync, name)
        assert dataclasses.is_dataclass(getattr(pumpsync, name))
    with pytest.raises(dataclasses.FrozenInstanceError):
        pumpsync.Timeouts().stale = 1  # type: ignore[misc]
    assert typing.get_type_hints(pumpsync.Timeouts)["stale"] is float


@pytest.mark.timeout(300)
def test_mypy_checks_the_typed_example_and_refuses_typos_in_either_spelling(tmp_path: Path) -> None:
    old = tmp_path / "old_typo.py"
    old.write_text('import pumpsync\npumpsync.Client("openpmp", queue_szie=10, ping_interval="fast")\n')
    new = tmp_path / "new_typo.py"
    new.write_text(
        "import pumpsync\n"
        'pumpsync.Client("openpump", timeouts=pumpsync.Timeouts(stael=20), limits=pumpsync.Limits(queue_size="big"),\n'
        '                options=pumpsync.SolanaOptions(commitment="final"))\n'
    )
    fine = tmp_path / "old_fine.py"
    fine.write_text('import pumpsync\npumpsync.Client("solana", stale_timeout=20.0, commitment="finalized")\n')
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         str(ROOT / "examples" / "typed_bot.py"), str(old), str(new), str(fine)],
        capture_output=True, text=True, cwd=ROOT, timeout=280,
    )  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert not [line for line in errors if "typed_bot.py" in line or "old_fine.py" in line], done.stdout
    for word in ('"queue_szie"', "openpmp", '"ping_interval"', '"stael"', '"queue_size"', "'final'"):
        assert any(word in line for line in errors), (word, done.stdout)


def test_the_daemon_builds_its_client_without_a_warning(tmp_path: Path) -> None:
    """The file's flat keys are not deprecated: the daemon hands Client the groups they make."""
    from pumpsync.daemon.config import client_keywords

    path = tmp_path / "daemon.toml"
    path.write_text(f'provider = "solana"\nurl = "{NOWHERE}"\nstale_timeout = 20\ncommitment = "processed"\n')
    config = build_config(load_file(path), {})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        client = pumpsync.Client(**client_keywords({**config.client, "since": 5}))
    client.close()
    assert client.config.stale_timeout == 20.0 and client.config.commitment == "processed" and client.config.since == 5
