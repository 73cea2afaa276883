from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pricefeed.config import ConfigError, load_settings


def test_defaults_are_the_seeds() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.api_host, settings.api_port) == ("0.0.0.0", 8765, "0.0.0.0", 8080)
    assert settings.pyth_sse_url == ["https://hermes.pyth.network/v2/updates/price/stream"]
    assert settings.log_level == "INFO" and settings.source == ["hermes"]


def test_precedence_cli_then_env_then_dotenv_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pf.toml").write_text('port = 1001\napi-port = 1002\nlog_level = "debug"\nsource = ["sim"]\n'
                                      'sim_interval = 0.5\n')
    (tmp_path / ".env").write_text("PRICEFEED_API_PORT=2002\nPRICEFEED_SIM_INTERVAL=0.25\n")
    monkeypatch.setenv("PRICEFEED_SIM_INTERVAL", "0.125")
    settings = load_settings({"config": str(tmp_path / "pf.toml"), "port": "3001"})
    assert settings.port == 3001  # flag
    assert settings.sim_interval == 0.125  # environment over .env over file
    assert settings.api_port == 2002  # .env over file
    assert settings.log_level == "DEBUG" and settings.source == ["sim"]  # file


def test_lists_from_the_environment_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICEFEED_SOURCE", "sim,hermes")
    assert load_settings().source == ["sim", "hermes"]


@pytest.mark.parametrize(("values", "message"), [
    ({"port": "http"}, "invalid --port 'http': Input should be a valid integer"),
    ({"api_port": "70000"}, "invalid --api-port '70000'"),
    ({"source": ["coinbase"]}, "invalid --source 'coinbase'"),
    ({"log_level": "loud"}, "invalid --log-level 'LOUD'"),
    ({"sim_interval": "0"}, "invalid --sim-interval '0': Input should be greater than 0"),
])
def test_bad_values_name_the_option(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(values)


def test_a_bad_config_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(ConfigError, match="--config"):
        load_settings({"config": str(bad)})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings({"config": str(unknown)})


def test_the_command_stops_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pricefeed", "serve", "--port", "abc"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pricefeed: invalid --port 'abc': Input should be a valid integer, unable to parse string as an integer"]


def test_help_lists_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "pricefeed", "serve", "--help"], capture_output=True, text=True,
                            timeout=30)
    for option in ("--host", "--port", "--api-host", "--api-port", "--pyth-sse-url", "--log-level", "--source",
                   "--db", "--config", "--seed"):
        assert option in result.stdout
