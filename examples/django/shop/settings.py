"""A small Django project that dispatches Foundry jobs after its transactions commit."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["django.contrib.contenttypes", "foundry.contrib.django", "shop"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # SHOP_DATABASE lets a worker started by the tests open the test database.
        "NAME": os.environ.get("SHOP_DATABASE", BASE_DIR / "shop.sqlite3"),
        "TEST": {"NAME": os.environ.get("SHOP_TEST_DATABASE", BASE_DIR / "shop-test.sqlite3")},
    }
}

FOUNDRY = {
    "APP": "shop.jobs:registry",
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "QUEUE_PREFIX": os.environ.get("QUEUE_PREFIX", "shop"),
}

# Foundry logs through the standard logging module: its records follow this configuration.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "recent": {"class": "logging.handlers.BufferingHandler", "capacity": 1000},
    },
    "loggers": {"foundry": {"handlers": ["console", "recent"], "level": "WARNING"}},
}
