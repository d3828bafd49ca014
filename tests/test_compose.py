"""docker-compose.yml, checked without a Docker engine."""
import pytest
import yaml

from helpers import ROOT, schema_errors

COMPOSE = ROOT / "docker-compose.yml"


def service():
    return yaml.safe_load(COMPOSE.read_text())["services"]["postgres"]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """The compose file and a copy with a typo, checked against the Compose spec in one run."""
    broken = tmp_path_factory.mktemp("compose") / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("interval:", "intervall:"))
    return broken, schema_errors("vendor.compose-spec", COMPOSE, broken)


def test_compose_file_is_valid_against_the_compose_spec(verdicts):
    assert verdicts[1][str(COMPOSE)] == []


def test_the_validator_catches_a_typo(verdicts):
    broken, found = verdicts
    assert any("'intervall'" in message for message in found[str(broken)]), found


def test_postgres_is_published_on_localhost_only():
    ports = service()["ports"]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports)


def test_healthcheck_and_named_volume():
    spec = yaml.safe_load(COMPOSE.read_text())
    assert "pg_isready" in " ".join(service()["healthcheck"]["test"])
    volume = service()["volumes"][0].split(":")[0]
    assert volume in spec["volumes"]


def test_same_major_version_as_the_embedded_server():
    from labapp.server import pgserver
    import psycopg2

    with psycopg2.connect(pgserver.server_uri()) as conn:
        major = conn.server_version // 10000
    conn.close()
    assert service()["image"] == f"postgres:{major}"


def test_readme_database_url_matches_the_compose_service():
    env = service()["environment"]
    host_port = service()["ports"][0].split(":")[1]
    url = (f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
           f"@127.0.0.1:{host_port}/{env['POSTGRES_DB']}")
    assert url in (ROOT / "README.md").read_text()
    assert url in COMPOSE.read_text()
