"""Production is the default: settings, demo data, password reset, the Docker context (issue 14)."""

import secrets
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.processes import run_fresh_django

ROOT = Path(__file__).resolve().parent.parent.parent
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "billing.example.com",
}


def start(**env: str) -> subprocess.CompletedProcess:
    """A fresh interpreter on config.settings with only the given DJANGO_* variables."""
    script = (
        "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    )
    return run_fresh_django(script, env=env)


def test_debug_is_off_unless_set():
    result = start(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_debug_the_published_dev_key_is_refused():
    result = start(DJANGO_ALLOWED_HOSTS="billing.example.com")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_without_debug_empty_allowed_hosts_are_refused():
    result = start(DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS must be set" in result.stderr


def test_debug_must_be_asked_for():
    result = start(DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_the_deploy_check_has_no_warning_with_the_readme_production_settings():
    env = {
        **PRODUCTION,
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": "sqlite:///:memory:",
        "DJANGO_SSL_REDIRECT": "true",
        "DJANGO_HSTS_SECONDS": "31536000",
    }
    result = run_fresh_django(
        manage=["check", "--deploy", "--fail-level", "WARNING"], env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_demo_data_refuses_production(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setenv("DEMO_PASSWORD", "a-long-private-password-2026")
    with pytest.raises(CommandError, match="--allow-production"):
        call_command("demo_data", stdout=StringIO())
    assert not get_user_model().objects.filter(username="demo-finance").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("password", [None, "demo-pass-2026"])
def test_demo_data_in_production_needs_its_own_password(settings, monkeypatch, password):
    settings.DEBUG = False
    if password is None:
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DEMO_PASSWORD", password)
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        call_command("demo_data", "--allow-production", stdout=StringIO())
    assert not get_user_model().objects.filter(username="demo-finance").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"],
)
def test_password_reset_is_not_routed_without_email(client, path):
    assert client.get(path).status_code == 404


def test_password_reset_is_routed_when_email_is_configured():
    env = {**PRODUCTION, "DJANGO_DEBUG": "true", "EMAIL_URL": "smtp+tls://u:p@smtp.example.com:587"}
    script = (
        "import django; django.setup(); from django.urls import reverse; "
        "from django.conf import settings; "
        "print(reverse('password_reset'), settings.EMAIL_HOST, settings.EMAIL_USE_TLS)"
    )
    result = run_fresh_django(script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/accounts/password_reset/", "smtp.example.com", "True"]


def test_the_docker_context_leaves_out_secrets_and_local_data():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", "private_media/", "db.sqlite3", ".venv/", ".tools/", "test-artifacts/"):
        assert entry in ignored
    assert any("node_modules" in line for line in ignored)
    assert any(line.startswith(".git") for line in ignored)
