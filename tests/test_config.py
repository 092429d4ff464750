"""Settings: precedence, validation messages naming the setting, workers in YAML, secrets hidden."""

import pytest

from gateway.config import ConfigError, load_settings


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_match_the_seed(tmp_path):
    settings = load_settings(None, {}, environ={}, env_file=None)
    assert (settings.host, settings.port, settings.queue_cache_ttl_seconds, settings.worker_request_timeout,
            settings.mysql_host, settings.mysql_port) == ("127.0.0.1", 8000, 5.0, 30.0, "localhost", 3306)
    assert settings.database_kind == "sqlite" and settings.default_max_queue == 1 and settings.max_retries == 1


def test_precedence_yaml_then_dotenv_then_environment_then_cli(tmp_path):
    config = write(tmp_path / "gateway.yaml", "port: 8001\nworker_request_timeout: 11\nqueue_cache_ttl_seconds: 7\n"
                   "WORKER_AUTH_USERNAME: from-yaml\nlog_level: debug\n")
    dotenv = write(tmp_path / ".env", "GATEWAY_PORT=8002\nWORKER_REQUEST_TIMEOUT=12\n")
    settings = load_settings(config, {"port": "8004"}, environ={"GATEWAY_PORT": "8003"}, env_file=dotenv)
    assert settings.port == 8004
    assert settings.worker_request_timeout == 12.0
    assert settings.queue_cache_ttl_seconds == 7.0
    assert settings.worker_auth_username == "from-yaml"
    assert settings.log_level == "DEBUG"
    assert load_settings(config, {}, environ={"GATEWAY_PORT": "8003"}, env_file=dotenv).port == 8003
    assert load_settings(config, {}, environ={}, env_file=dotenv).port == 8002
    assert load_settings(config, {}, environ={}, env_file=None).port == 8001


@pytest.mark.parametrize("env, name", [
    ({"GATEWAY_PORT": "eighty"}, "port"),
    ({"GATEWAY_PORT": "70000"}, "port"),
    ({"WORKER_REQUEST_TIMEOUT": "-1"}, "worker_request_timeout"),
    ({"QUEUE_CACHE_TTL_SECONDS": "soon"}, "queue_cache_ttl_seconds"),
    ({"REDIS_URL": "http://localhost"}, "redis_url"),
    ({"MYSQL_PORT": "x"}, "mysql_port"),
    ({"GATEWAY_DATABASE": "oracle"}, "database"),
    ({"GATEWAY_TRAY": "maybe"}, "tray"),
])
def test_a_bad_value_names_the_setting(env, name):
    with pytest.raises(ConfigError) as info:
        load_settings(None, {}, environ=env, env_file=None)
    assert name in str(info.value) and "environment" in str(info.value)


def test_yaml_errors_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(write(tmp_path / "a.yaml", "prot: 1\n"), {}, environ={}, env_file=None)
    with pytest.raises(ConfigError, match="workers\\[0\\]"):
        load_settings(write(tmp_path / "b.yaml", "workers:\n  - name: x\n"), {}, environ={}, env_file=None)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "missing.yaml"), {}, environ={}, env_file=None)


def test_workers_and_mysql_switch(tmp_path):
    config = write(tmp_path / "g.yaml", "workers:\n  - http://127.0.0.1:8188\n  - url: http://10.0.0.2:8188\n"
                   "    name: gpu2\n    weight: 2\n")
    settings = load_settings(config, {}, environ={"MYSQL_DATABASE": "comfy"}, env_file=None)
    assert settings.workers == ({"url": "http://127.0.0.1:8188"}, {"url": "http://10.0.0.2:8188", "name": "gpu2",
                                                                    "weight": 2})
    assert settings.database_kind == "mysql"


def test_public_dict_hides_secrets():
    settings = load_settings(None, {}, environ={"WORKER_AUTH_PASSWORD": "pw-123", "MYSQL_PASSWORD": "db-pw",
                                                "REDIS_URL": "redis://:r-pw@localhost:6379/0"}, env_file=None)
    text = repr(settings.public_dict()) + repr(settings) + str(settings)
    assert "pw-123" not in text and "db-pw" not in text and "r-pw" not in text
    assert settings.public_dict()["worker_auth_password_set"] is True
