"""Settings: the operators' variable names, `.env`, and the names derived from an environment."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from mlsys.errors import UnknownEnvironment
from mlsys.settings import Settings, get_settings, parse_quantity

pytestmark = pytest.mark.unit

ENV_NAMES = [
    str(choice)
    for field in Settings.model_fields.values()
    if field.validation_alias is not None
    for choice in field.validation_alias.choices
]


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """No variable of the machine leaks in, and no `.env` but the one a test writes."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MLSYS_ENV_FILE", raising=False)  # the suite's "no .env" (conftest)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_every_field_has_a_variable_name_and_a_description():
    for name, field in Settings.model_fields.items():
        assert field.validation_alias is not None, name
        assert field.description, name
    for expected in (
        "GCP_PROJECT_ID",
        "GCS_BUCKET_MODELS_DEV",
        "GCS_BUCKET_MODELS_STAGING",
        "GCS_BUCKET_MODELS_PROD",
        "MLSYS_HOME",
        "MLSYS_WAREHOUSE",
        "MLSYS_MODEL_STORE",
        "MLSYS_ENVIRONMENTS",
        "MLSYS_API_TOKENS",
        "MLSYS_BATCH_ROWS",
    ):
        assert expected in ENV_NAMES


def test_defaults_are_the_embedded_backends_under_dot_mlsys(tmp_path):
    settings = Settings()
    assert settings.gcp_project_id == "mlsys-local"
    assert settings.environments == ["dev", "staging", "prod"]
    assert settings.home == Path(".mlsys")
    assert settings.warehouse == f"duckdb:///{tmp_path.resolve() / '.mlsys' / 'warehouse.duckdb'}"
    assert settings.model_store == (tmp_path.resolve() / ".mlsys" / "models").as_uri()
    assert settings.api_tokens == []
    assert settings.bucket_for("dev") == "mlsys-models-dev"
    assert settings.bucket_for("staging") == "mlsys-models-staging"
    assert settings.bucket_for("prod") == "mlsys-models-prod"


def test_seed_variable_names_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("GCP_PROJECT_ID", "acme-ml")
    monkeypatch.setenv("GCS_BUCKET_MODELS_DEV", "acme-models-dev")
    monkeypatch.setenv("GCS_BUCKET_MODELS_STAGING", "acme-models-stg")
    monkeypatch.setenv("GCS_BUCKET_MODELS_PROD", "acme-models-prd")
    monkeypatch.setenv("MLSYS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLSYS_WAREHOUSE", "duckdb:///elsewhere/wh.duckdb")
    monkeypatch.setenv("MLSYS_MODEL_STORE", "file:///srv/models")
    monkeypatch.setenv("MLSYS_BATCH_ROWS", "1234")
    settings = Settings()
    assert settings.gcp_project_id == "acme-ml"
    assert settings.bucket_for("dev") == "acme-models-dev"
    assert settings.bucket_for("staging") == "acme-models-stg"
    assert settings.bucket_for("prod") == "acme-models-prd"
    assert settings.home == tmp_path / "home"
    assert settings.staging_dir == tmp_path / "home" / "staging"
    assert settings.warehouse == "duckdb:///elsewhere/wh.duckdb"
    assert settings.model_store == "file:///srv/models"
    assert settings.batch_rows == 1234


def test_mlsys_home_moves_both_embedded_backends(monkeypatch, tmp_path):
    monkeypatch.setenv("MLSYS_HOME", str(tmp_path / "h"))
    settings = Settings()
    assert settings.warehouse == f"duckdb:///{tmp_path / 'h' / 'warehouse.duckdb'}"
    assert settings.model_store == (tmp_path / "h" / "models").as_uri()


def test_comma_lists(monkeypatch):
    monkeypatch.setenv("MLSYS_ENVIRONMENTS", " dev, qa ,,prod ")
    monkeypatch.setenv("MLSYS_API_TOKENS", "tok-one, tok-two,")
    settings = Settings()
    assert settings.environments == ["dev", "qa", "prod"]
    assert [t.get_secret_value() for t in settings.api_tokens] == ["tok-one", "tok-two"]
    assert "tok-one" not in repr(settings)  # secrets stay out of logs


def test_dot_env_in_the_working_directory_is_honoured(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "GCP_PROJECT_ID=from-dotenv\n"
        "GCS_BUCKET_MODELS_DEV=dotenv-models-dev\n"
        "MLSYS_ENVIRONMENTS=dev,sandbox\n"
        "MLSYS_API_TOKENS=a,b\n"
        "UNRELATED_VARIABLE=ignored\n"
    )
    settings = Settings()
    assert settings.gcp_project_id == "from-dotenv"
    assert settings.bucket_for("dev") == "dotenv-models-dev"
    assert settings.environments == ["dev", "sandbox"]
    assert len(settings.api_tokens) == 2
    # The real environment wins over .env.
    monkeypatch.setenv("GCP_PROJECT_ID", "from-env")
    assert Settings().gcp_project_id == "from-env"
    # get_settings() reads the same sources, once.
    assert get_settings().gcp_project_id == "from-env"
    monkeypatch.setenv("GCP_PROJECT_ID", "changed-later")
    assert get_settings().gcp_project_id == "from-env"
    get_settings.cache_clear()
    assert get_settings().gcp_project_id == "changed-later"


def test_keyword_overrides_use_variable_names(tmp_path):
    settings = Settings(_env_file=None, MLSYS_HOME=str(tmp_path), GCP_PROJECT_ID="kw-proj")
    assert settings.home == tmp_path
    assert settings.gcp_project_id == "kw-proj"


def test_check_env_refuses_unknown_and_lists_the_known_ones():
    settings = Settings()
    assert settings.check_env("staging") == "staging"
    for bad in ("qa", "DEV", "", "dev;drop", "../prod"):
        with pytest.raises(UnknownEnvironment) as caught:
            settings.check_env(bad)
        assert "dev, staging, prod" in str(caught.value)
        assert "MLSYS_ENVIRONMENTS" in str(caught.value)
    with pytest.raises(UnknownEnvironment):
        settings.bucket_for("qa")
    with pytest.raises(UnknownEnvironment):
        settings.dataset_for("qa")


def test_extra_environment_gets_default_bucket_and_dataset(monkeypatch):
    monkeypatch.setenv("MLSYS_ENVIRONMENTS", "dev,qa")
    monkeypatch.setenv("BQ_DATASET", "acme")
    settings = Settings()
    assert settings.bucket_for("qa") == "mlsys-models-qa"
    assert settings.dataset_for("qa") == "acme_qa"
    assert settings.dataset_for("dev") == "acme_dev"
    with pytest.raises(UnknownEnvironment):
        settings.bucket_for("prod")  # no longer listed


def test_dataset_for_default():
    settings = Settings()
    assert [settings.dataset_for(e) for e in ("dev", "staging", "prod")] == [
        "mlsys_dev",
        "mlsys_staging",
        "mlsys_prod",
    ]


@pytest.mark.parametrize(
    ("rows", "shards"),
    [(0, 1), (1, 1), (2_000_000, 1), (2_000_001, 2), (10_000_000, 5), (10**9, 64)],
)
def test_auto_shards(rows, shards):
    assert Settings().auto_shards(rows) == shards


def test_auto_shards_follows_its_settings(monkeypatch):
    monkeypatch.setenv("MLSYS_ROWS_PER_SHARD", "100")
    monkeypatch.setenv("MLSYS_MAX_SHARDS", "8")
    settings = Settings()
    assert settings.auto_shards(100) == 1
    assert settings.auto_shards(101) == 2
    assert settings.auto_shards(10_000) == 8


@pytest.mark.parametrize(
    ("name", "value"),
    [("MLSYS_BATCH_ROWS", "0"), ("MLSYS_MAX_SHARDS", "-1"), ("MLSYS_BATCH_ROWS", "many")],
)
def test_invalid_numbers_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings()


def test_the_seed_module_level_names_read_the_same_settings(monkeypatch):
    import mlsys.settings as module

    monkeypatch.setenv("GCP_PROJECT_ID", "acme-ml")
    monkeypatch.setenv("GCS_BUCKET_MODELS_STAGING", "acme-models-staging")
    get_settings.cache_clear()
    from mlsys.settings import GCP_PROJECT_ID, GCP_REGION, GCS_BUCKET_MODELS_DEV

    assert GCP_PROJECT_ID == "acme-ml" == get_settings().gcp_project_id
    assert GCP_REGION == get_settings().gcp_region
    assert GCS_BUCKET_MODELS_DEV == "mlsys-models-dev" == get_settings().bucket_for("dev")
    assert module.GCS_BUCKET_MODELS_STAGING == "acme-models-staging"
    assert module.GCS_BUCKET_MODELS_PROD == get_settings().bucket_for("prod")
    assert "GCS_BUCKET_MODELS_DEV" in dir(module)
    with pytest.raises(ImportError):
        from mlsys.settings import GCS_BUCKET_MODELS_QA  # noqa: F401


def test_rediss_urls_verify_the_server_against_the_ca_they_name():
    url = "rediss://:secret@10.0.0.3:6378/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
    tls = Settings(_env_file=None, REDIS_URL=url).redis_tls()
    assert tls == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_check_hostname": False,
    }
    # No CERT_NONE by default (kombu's own default for a bare rediss:// URL).
    bare = Settings(_env_file=None, REDIS_URL="rediss://h:6378/0").redis_tls()
    assert bare["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert Settings(_env_file=None, REDIS_URL="redis://h:6379/0").redis_tls() is None


def test_celery_broker_and_redbeat_get_the_tls_options():
    from worker.app import celery_config

    url = "rediss://:p@10.0.0.3:6378/0?ssl_ca_certs=/etc/ca.pem"
    config = celery_config(Settings(_env_file=None, REDIS_URL=url))
    assert config["broker_use_ssl"]["ssl_ca_certs"] == "/etc/ca.pem"
    assert config["redbeat_redis_use_ssl"] == config["broker_use_ssl"]


@pytest.mark.parametrize(("threads", "limit"), [(None, 10), ("4", 10), ("16", 16), ("64", 64)])
def test_every_api_thread_can_hold_a_producer_at_once(monkeypatch, threads, limit):
    """Celery's producer pool blocks a sending thread beyond its limit (10 by default), so
    a gunicorn worker's threads (web/gunicorn_conf.py says how many) each get one."""
    from worker.app import celery_config

    if threads is None:
        monkeypatch.delenv("MLSYS_WEB_THREADS", raising=False)
    else:
        monkeypatch.setenv("MLSYS_WEB_THREADS", threads)
    assert celery_config(Settings(_env_file=None))["broker_pool_limit"] == limit


@pytest.mark.parametrize(
    ("memory", "concurrency", "kib"),
    [("4Gi", 2, 1_572_864), ("512Mi", 1, 393_216), ("2G", 4, 366_210)],
)
def test_memory_per_child_is_a_share_of_the_container_limit(memory, concurrency, kib):
    settings = Settings(_env_file=None, MLSYS_CONTAINER_MEMORY=memory)
    assert settings.memory_per_child_kib(concurrency) == kib
    assert kib * concurrency * 1024 < parse_quantity(memory)


def test_a_bad_memory_quantity_is_refused():
    with pytest.raises(ValueError, match="4Gi"):
        parse_quantity("4 gigs")


def test_mlsys_env_file_names_the_dotenv_file_or_none(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("GCP_PROJECT_ID=from-cwd\n")
    (tmp_path / "repo.env").write_text("GCP_PROJECT_ID=from-repo\n")

    monkeypatch.setenv("MLSYS_ENV_FILE", str(tmp_path / "repo.env"))
    assert Settings().gcp_project_id == "from-repo"
    monkeypatch.setenv("MLSYS_ENV_FILE", "")
    assert Settings().gcp_project_id == "mlsys-local"
